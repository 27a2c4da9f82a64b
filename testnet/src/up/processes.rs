//! The testnet's child processes: started in their own process groups with their output in
//! `<dir>/<name>.log`, recorded as `name pid` lines in `<dir>/pids`, and stopped together.
//!
//! Guarantees: a [`Group`] stops every process it started when it is dropped unless it was
//! disarmed (so a failed or interrupted `up` leaves nothing running); stopping is SIGTERM, then
//! SIGKILL after a grace period, and reaps our own children.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// Pid file inside the testnet directory: one `name pid` per line.
pub const PIDS_FILE: &str = "pids";

/// How long stopped processes get to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// Started processes; stopped on drop unless disarmed.
pub(super) struct Group {
    dir: PathBuf,
    procs: Vec<(String, u32)>,
    armed: bool,
}

impl Group {
    /// An empty, armed group writing its pid file and logs in `dir`.
    pub(super) fn new(dir: &Path) -> Self {
        Group {
            dir: dir.to_path_buf(),
            procs: vec![],
            armed: true,
        }
    }

    /// The started processes: (name, pid), in start order.
    pub(super) fn procs(&self) -> &[(String, u32)] {
        &self.procs
    }

    /// Starts `cmd` as `name` in its own process group, stdin closed, stdout and stderr to
    /// `<dir>/<name>.log`, and records it in the pid file.
    pub(super) fn spawn(&mut self, name: &str, mut cmd: Command) -> anyhow::Result<u32> {
        let log = self.dir.join(format!("{name}.log"));
        let out =
            fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.procs.push((name.to_string(), child.id()));
        self.write_pids()?;
        Ok(child.id())
    }

    /// Fails naming the first started process that is no longer running, and its log.
    pub(super) fn check_alive(&self) -> anyhow::Result<()> {
        for (name, pid) in &self.procs {
            if !alive(*pid) {
                anyhow::bail!(
                    "{name} exited; see {}",
                    self.dir.join(format!("{name}.log")).display()
                );
            }
        }
        Ok(())
    }

    /// Leaves the processes running when the group is dropped (`down` stops them later).
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }

    fn write_pids(&self) -> anyhow::Result<()> {
        let text: String = self
            .procs
            .iter()
            .map(|(n, p)| format!("{n} {p}\n"))
            .collect();
        fs::write(self.dir.join(PIDS_FILE), text).context("cannot write pid file")
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.armed {
            eprintln!("stopping the processes started so far ...");
            stop_all(&self.procs);
            let _ = fs::remove_file(self.dir.join(PIDS_FILE));
        }
    }
}

/// Whether a process with this pid exists.
pub(super) fn alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|p| kill(Pid::from_raw(p), None::<Signal>).is_ok())
}

/// Reaps those of `pids` that are our own exited children, so they do not linger as zombies
/// (a no-op for processes started by another invocation).
fn reap(pids: &[i32]) {
    for p in pids {
        let _ = waitpid(Pid::from_raw(*p), Some(WaitPidFlag::WNOHANG));
    }
}

/// SIGTERM everything, wait up to [`GRACE`], then SIGKILL what is left.
pub(super) fn stop_all(procs: &[(String, u32)]) {
    let pids: Vec<i32> = procs
        .iter()
        .filter_map(|(_, p)| i32::try_from(*p).ok())
        .collect();
    for p in &pids {
        let _ = kill(Pid::from_raw(*p), Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p as u32)) {
        reap(&pids);
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &pids {
        if alive(*p as u32) {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
    }
    reap(&pids);
}

/// The processes recorded in `<dir>/pids` (none if there is no such file).
pub(super) fn read_pids(dir: &Path) -> Vec<(String, u32)> {
    fs::read_to_string(dir.join(PIDS_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (n, p) = l.split_once(' ')?;
            Some((n.to_string(), p.trim().parse().ok()?))
        })
        .collect()
}

/// Whether `dir` holds a testnet some of whose processes still run.
pub(super) fn running_in(dir: &Path) -> bool {
    read_pids(dir).iter().any(|(_, p)| alive(*p))
}
