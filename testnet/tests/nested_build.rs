//! `up` builds the node binaries with a nested `cargo build` while it runs under `cargo run`;
//! the two must leave each other's artifacts fresh, or every `up` / `down` after the other
//! recompiles ring, rustls, quinn, libp2p and the node (minutes on two cores).
//!
//! This test process inherits from cargo (or nextest) the variables that `cargo run` also sets
//! for the program it runs (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...), so it stands where
//! `seedfed-testnet up` stands. It runs the nested build step, then the build as a user's
//! shell runs it (`cargo run` / `cargo build` with none of those variables), then the nested
//! step again, in the dev profile, and asserts that the last two compile nothing.
//!
//! It is ignored in the ordinary run: it takes the target directory's build lock and may
//! relink `target/debug/seedfed*`, which other tests start meanwhile. `scripts/test.sh` runs it
//! alone before every other test (`--run-ignored only`), where it costs three cargo invocations
//! with fresh artifacts (seconds), plus relinking the binaries once if the test build left
//! them in another profile.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::ffi::OsString;
use std::process::Command;
use std::time::Instant;

use seedfed_testnet::up::{build_command, BUILD_PACKAGES};

/// Variables a user's shell may hold that change what cargo builds or where; everything else
/// is dropped, as it is from the environment of a `cargo run` typed in a terminal.
const SHELL_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "TMPDIR",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_INCREMENTAL",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC",
    "RUSTC_WRAPPER",
];

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Runs `cmd`; returns the `Compiling ...` lines of its stderr (failing on a failed build).
fn compiled(what: &str, mut cmd: Command) -> Vec<String> {
    let started = Instant::now();
    let out = cmd.args(["--color", "never"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed:\n{stderr}");
    let lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Compiling"))
        .map(String::from)
        .collect();
    eprintln!(
        "{what}: {} crates compiled in {:.1}s",
        lines.len(),
        started.elapsed().as_secs_f64()
    );
    lines
}

/// The same build as [`build_command`] with the environment of a user's shell.
fn shell_build() -> Command {
    let mut cmd = Command::new(cargo());
    cmd.env_clear();
    for name in SHELL_ENV {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.args(["build", "--bins"]);
    for p in BUILD_PACKAGES {
        cmd.args(["-p", p]);
    }
    cmd
}

#[test]
#[ignore = "runs cargo on the shared target dir; scripts/test.sh runs it alone, before the others"]
fn nested_and_outer_builds_leave_each_other_fresh() {
    // The test really stands where `up` stands: cargo described this package to it.
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "run this test through cargo or nextest"
    );
    // The first nested build may compile (the test build selects other features).
    compiled("nested build", build_command(&cargo(), false));
    let outer = compiled("outer build", shell_build());
    assert!(
        outer.is_empty(),
        "the build after the nested one recompiled: {outer:?}"
    );
    let again = compiled("nested build again", build_command(&cargo(), false));
    assert!(
        again.is_empty(),
        "the nested build after the outer one recompiled: {again:?}"
    );
}
