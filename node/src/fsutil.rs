//! Crash-safe small-file writes, and reads of secret files that refuse unsafe ones.
//!
//! A file is written to a temporary sibling, flushed with `fsync`, renamed over the target and
//! the directory is synced, so a reader sees either the old or the new content, never a torn
//! write. Secret files are created with mode 0600 from the start (never briefly world-readable).
//! A secret file (keystore, passphrase file, API token) is read only if it is a regular file,
//! not a symbolic link, owned by the user running us and inaccessible to group and others; the
//! checks are made on the file actually opened (`O_NOFOLLOW`, then `fstat`), so swapping the
//! path between check and read does not help, and the bytes read are zeroized on drop.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use thiserror::Error;
use zeroize::Zeroizing;

/// Largest secret file read (they are a few hundred bytes).
pub const MAX_PRIVATE_FILE: u64 = 1 << 20;

/// Why a secret file was not read.
#[derive(Debug, Error)]
pub enum PrivateFileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The path is a symbolic link.
    #[error(
        "{path} is a symbolic link; a secret file must be the file itself (point the setting or \
         option at the link's target)"
    )]
    Symlink {
        /// The file.
        path: String,
    },
    /// A directory, device, FIFO or socket, or too large.
    #[error("{path} is not a regular file of at most {MAX_PRIVATE_FILE} bytes")]
    NotAFile {
        /// The file.
        path: String,
    },
    /// Owned by another user.
    #[error(
        "{path} is owned by uid {owner}, not by the user running seedfed (uid {euid}); run \
         `chown {euid} {path}` or run seedfed as its owner"
    )]
    Owner {
        /// The file.
        path: String,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        euid: u32,
    },
    /// Group or others have access.
    #[error("{path} is accessible by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
}

/// Reads a secret file after checking it is a regular file (not a symlink), owned by our
/// effective user and with no access for group or others.
pub fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, PrivateFileError> {
    let p = || path.display().to_string();
    let io = |source| PrivateFileError::Io { path: p(), source };
    // A clear error for a symlink; the open below refuses one swapped in meanwhile.
    if fs::symlink_metadata(path)
        .map_err(io)?
        .file_type()
        .is_symlink()
    {
        return Err(PrivateFileError::Symlink { path: p() });
    }
    // O_NONBLOCK: a FIFO swapped in must not block the open; it is refused below.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => PrivateFileError::Symlink { path: p() },
            _ => io(e),
        })?;
    let meta = file.metadata().map_err(io)?;
    check_private(path, &meta, nix::unistd::geteuid().as_raw())?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    (&mut file)
        .take(MAX_PRIVATE_FILE)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// The checks of [`read_private`] on an opened file's metadata.
fn check_private(path: &Path, meta: &fs::Metadata, euid: u32) -> Result<(), PrivateFileError> {
    let p = || path.display().to_string();
    if !meta.file_type().is_file() || meta.len() > MAX_PRIVATE_FILE {
        return Err(PrivateFileError::NotAFile { path: p() });
    }
    if meta.uid() != euid {
        return Err(PrivateFileError::Owner {
            path: p(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError::Permissions { path: p(), mode });
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically with the given Unix mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // `mode` is filtered by the umask on creation; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(&read_private(&p).unwrap()[..], b"two");
        write_atomic(&p, b"three", 0o644).unwrap();
        assert!(matches!(
            read_private(&p),
            Err(PrivateFileError::Permissions { mode: 0o644, .. })
        ));
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_secret_file_must_be_a_private_regular_file_of_ours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        write_atomic(&p, b"s3cret", 0o600).unwrap();
        let meta = fs::metadata(&p).unwrap();
        let me = meta.uid();
        assert!(check_private(&p, &meta, me).is_ok());
        let err = check_private(&p, &meta, me.wrapping_add(1)).unwrap_err();
        assert!(matches!(err, PrivateFileError::Owner { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(matches!(
            read_private(&link),
            Err(PrivateFileError::Symlink { .. })
        ));
        assert!(matches!(
            read_private(dir.path()),
            Err(PrivateFileError::NotAFile { .. })
        ));
        assert!(matches!(
            read_private(&dir.path().join("missing")),
            Err(PrivateFileError::Io { .. })
        ));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(&fifo)
            .status();
        if made.is_ok_and(|s| s.success()) {
            // Refused without blocking on the open.
            assert!(matches!(
                read_private(&fifo),
                Err(PrivateFileError::NotAFile { .. })
            ));
        }
    }
}
