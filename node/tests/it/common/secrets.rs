//! A search of a test run's files for secrets the test knows: each secret as raw bytes, hex
//! (either case), base64 (standard and URL-safe, padded or not) and a JSON byte array, in every
//! file under the given roots (logs, sled store files, configs, keystores).

use std::path::{Path, PathBuf};

use base64::Engine;

/// Every way a 32-byte secret could plausibly be written out by mistake.
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let json: Vec<String> = secret.iter().map(|b| b.to_string()).collect();
    vec![
        ("raw", secret.to_vec()),
        ("hex", hex::encode(secret).into_bytes()),
        ("HEX", hex::encode_upper(secret).into_bytes()),
        ("base64", STANDARD.encode(secret).into_bytes()),
        (
            "base64 unpadded",
            STANDARD_NO_PAD.encode(secret).into_bytes(),
        ),
        ("base64url", URL_SAFE.encode(secret).into_bytes()),
        (
            "base64url unpadded",
            URL_SAFE_NO_PAD.encode(secret).into_bytes(),
        ),
        ("json array", json.join(",").into_bytes()),
    ]
}

fn files_under(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Where any of `secrets` (name, bytes) appears in any file under `roots`: one line per find,
/// naming the secret, the encoding and the file. Also returns how many files were read.
pub fn find_secrets(roots: &[PathBuf], secrets: &[(String, Vec<u8>)]) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    for r in roots {
        files_under(r, &mut files);
    }
    let patterns: Vec<(String, &'static str, Vec<u8>)> = secrets
        .iter()
        .flat_map(|(name, s)| {
            encodings(s)
                .into_iter()
                .map(move |(how, p)| (name.clone(), how, p))
        })
        .collect();
    let finders: Vec<_> = patterns
        .iter()
        .map(|(_, _, p)| memchr::memmem::Finder::new(p))
        .collect();
    let mut finds = Vec::new();
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for ((name, how, _), finder) in patterns.iter().zip(&finders) {
            if finder.find(&bytes).is_some() {
                finds.push(format!("{name} ({how}) in {}", f.display()));
            }
        }
    }
    (finds, files.len())
}
