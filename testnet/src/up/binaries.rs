//! The binaries a testnet runs: `seedfed` and `seedfed-bootstrap`, found next to this
//! executable and, when it was started by cargo (`cargo run -p seedfed-testnet -- up`), first
//! brought up to date by a nested `cargo build`.
//!
//! Guarantees: the nested build and the outer `cargo run` leave each other's artifacts fresh,
//! so alternating `up` and `down` with nothing changed compiles nothing. The nested cargo does
//! not inherit the variables that the outer cargo set to describe *this* package
//! ([`PACKAGE_ENV`]): build scripts such as ring's declare `rerun-if-env-changed` on them, and
//! cargo compares those against its own environment, so an inherited `CARGO_PKG_NAME` made the
//! nested build re-run ring's build script (and rebuild ring, rustls, quinn, libp2p, the node)
//! and the next outer `cargo run` re-run it back.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The packages the nested build selects: those whose binaries a testnet runs, and this one,
/// so that the selection's features are those of `cargo run -p seedfed-testnet` too.
pub const BUILD_PACKAGES: [&str; 3] = ["seedfed-node", "seedfed-bootstrap", "seedfed-testnet"];

/// Variables cargo sets for the program it runs (`cargo run`, `cargo test`) that describe that
/// program's package or build; a name ending in `*` is a prefix. Cargo sets its own values of
/// these for every crate and build script it compiles, so a nested cargo needs none of them.
pub const PACKAGE_ENV: &[&str] = &[
    "CARGO_PKG_*",
    "CARGO_MANIFEST_*",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_BIN_EXE_*",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// Whether `name` is one of [`PACKAGE_ENV`].
pub fn is_package_env(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    PACKAGE_ENV.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *p,
    })
}

/// `cargo build --bins -p seedfed-node -p seedfed-bootstrap -p seedfed-testnet [--release]`
/// run by `cargo`, without the inherited [`PACKAGE_ENV`] variables.
pub fn build_command(cargo: &OsStr, release: bool) -> Command {
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--bins"]);
    for p in BUILD_PACKAGES {
        cmd.args(["-p", p]);
    }
    if release {
        cmd.arg("--release");
    }
    for (name, _) in std::env::vars_os() {
        if is_package_env(&name) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Finds `seedfed` and `seedfed-bootstrap` next to this executable, building them first when
/// run through cargo (`CARGO` is set).
pub(super) fn binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().context("cannot locate this executable")?;
    let dir = exe
        .parent()
        .context("executable has no parent directory")?
        .to_path_buf();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut cmd = build_command(&cargo, dir.ends_with("release"));
        eprintln!("building seedfed and seedfed-bootstrap ...");
        let st = cmd.status().context("cannot run cargo build")?;
        if !st.success() {
            bail!("cargo build of the node binaries failed");
        }
    }
    binaries_in(&dir)
}

/// `seedfed` and `seedfed-bootstrap` in `dir` (a target directory's `debug` or `release`), or
/// which one is missing and how to build it.
pub fn binaries_in(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let node = dir.join("seedfed");
    let boot = dir.join("seedfed-bootstrap");
    for b in [&node, &boot] {
        if !b.exists() {
            bail!(
                "{} not found; build it with `cargo build [--release] -p seedfed-node -p seedfed-bootstrap`",
                b.display()
            );
        }
    }
    Ok((node, boot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_env_is_dropped_and_configuration_kept() {
        for v in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_BIN_EXE_seedfed",
            "OUT_DIR",
        ] {
            assert!(is_package_env(OsStr::new(v)), "{v}");
        }
        // What configures cargo itself stays.
        for v in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO_PROFILE_DEV_OPT_LEVEL",
            "RUSTFLAGS",
            "PATH",
        ] {
            assert!(!is_package_env(OsStr::new(v)), "{v}");
        }
    }
}
