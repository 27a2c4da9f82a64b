//! The README's main command, end to end: `seedfed-testnet up` (4 validators and a bootstrap
//! node on loopback, the binaries next to it, no nested build) runs admission, consensus, the
//! DKG, key generation with audits and the master root, then signs messages through the nodes
//! and verifies each with the light client; the commands it prints for signing and verifying
//! by hand work; the status page URLs it prints (one per process) serve the page; `down` stops
//! everything. Bounded: `up` gives up after its own timeouts.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const UP: &str = env!("CARGO_BIN_EXE_seedfed-testnet");

fn run(cmd: &mut Command) -> Output {
    // Without `CARGO`, `up` takes the `seedfed` binaries next to it instead of building them.
    let out = cmd.env_remove("CARGO").output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The command line `up` printed after `label`, split into program and arguments, with `FILE`
/// replaced by `file`.
fn printed(stdout: &str, label: &str, file: &Path) -> Command {
    let line = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"));
    let file = file.display().to_string();
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| w.replace("FILE", &file))
        .collect();
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd
}

/// The body of `GET url` (an `http://host:port/` URL) over a plain TCP connection, or the
/// status line if it is not 200.
fn get(url: &str) -> String {
    let host = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix('/'))
        .unwrap_or_else(|| panic!("not an http://host:port/ URL: {url}"));
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "GET {url}: {answer}");
    answer
}

#[test]
fn up_runs_the_whole_flow_and_the_printed_commands_sign_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let tn = dir.path().join("tn");
    let out = run(Command::new(UP).args([
        "up",
        "--nodes",
        "4",
        "--difficulty",
        "8",
        "--dir",
        tn.to_str().unwrap(),
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stop = || run(Command::new(UP).args(["down", "--dir", tn.to_str().unwrap()]));
    let checked = std::panic::catch_unwind(|| {
        assert!(stdout.contains("master root"), "{stdout}");
        // Every process's status page (the bootstrap node's and each validator's), in the
        // table and on one line to open, and each serves the page.
        let pages: Vec<&str> = stdout
            .lines()
            .find_map(|l| {
                l.split_once("status pages (open in a browser; they refresh themselves): ")
            })
            .unwrap_or_else(|| panic!("no status pages line in:\n{stdout}"))
            .1
            .split_whitespace()
            .collect();
        assert_eq!(pages.len(), 5, "{stdout}");
        for url in &pages {
            assert!(url.starts_with("http://127.0.0.1:"), "{url}");
            // The table's fourth column: name, peer id, api, status page.
            assert_eq!(
                stdout
                    .lines()
                    .filter(|l| l.split_whitespace().nth(3) == Some(*url))
                    .count(),
                1,
                "{url} is not in the table:\n{stdout}"
            );
            let page = get(url);
            assert!(
                page.contains("<title>seedfed node</title>"),
                "{url}: {page}"
            );
        }
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.contains("the light client verifies it"))
                .count(),
            4,
            "{stdout}"
        );
        // By hand, as printed.
        let message = dir.path().join("by-hand.txt");
        std::fs::write(&message, b"signed by hand\n").unwrap();
        let sig = dir.path().join("by-hand.txt.sig");
        let mut sign = printed(&stdout, "sign by hand:", &message);
        let signed = run(&mut sign);
        assert!(sig.exists(), "{}", String::from_utf8_lossy(&signed.stdout));
        run(&mut printed(&stdout, "verify by hand:", &message));
        run(&mut printed(
            &stdout,
            "or through the checkpoint chain:",
            &message,
        ));
        // A changed message does not verify.
        std::fs::write(&message, b"signed by hand, then changed\n").unwrap();
        let bad = printed(&stdout, "verify by hand:", &message)
            .output()
            .unwrap();
        assert!(!bad.status.success());
    });
    stop();
    checked.unwrap();
}
