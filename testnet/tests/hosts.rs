//! A federation across hosts: a bootstrap node and 4 validators, each in its own network
//! namespace with its own address on a private bridge (created and removed here), find each
//! other only through the bootstrap node, learn each other's namespace addresses (never a
//! loopback one), decide heights and complete the genesis DKG.
//!
//! The genesis comes from the operator's tool (`seedfed-bootstrap genesis`), the bootstrap node
//! reads its `bootstrap.toml`; validators 0 and 1 announce their address (`--announce`), 2 and 3
//! listen on `0.0.0.0` and announce nothing, so the receivers' loopback filter is what keeps
//! their `127.0.0.1` out of the peer tables. Each API stays on 127.0.0.1 inside its namespace and
//! is read with `ip netns exec`. Needs root (CAP_NET_ADMIN) and `ip`; without them it prints why
//! and returns, unless `SEEDFED_REQUIRE_NETNS` is set (`.ci/run` sets it where it could create
//! and delete a namespace), in which case it fails. Bounded: [`DEADLINE`] for the whole
//! federation, 5 s per command.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Everything from the first start to the last check.
const DEADLINE: Duration = Duration::from_secs(120);
/// The private subnet on the bridge (each run has its own bridge namespace, so runs in
/// parallel do not collide).
const SUBNET: &str = "10.77.0";
/// Validators.
const N: usize = 4;

/// `seedfed` and `seedfed-bootstrap`, next to this package's binary in the target directory
/// (built by the workspace test run).
fn bins() -> (PathBuf, PathBuf) {
    let exe = Path::new(env!("CARGO_BIN_EXE_seedfed-testnet"));
    seedfed_testnet::up::binaries_in(exe.parent().expect("a target directory"))
        .expect("the node binaries, built by the workspace test run")
}

/// Runs `cmd` to completion (at most 5 s: `timeout` kills it) and returns its output.
fn run(cmd: &mut Command) -> Output {
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    Command::new("timeout")
        .arg("5")
        .arg(prog)
        .args(args)
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `cmd`, which must succeed; returns its stdout.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> Output {
    run(Command::new("ip").args(args))
}

/// The test's namespaces; deleting them (on drop, even after a failure) removes their veth
/// ends, the peers' ends and the bridge with them.
struct Namespaces {
    names: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

/// A process killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Processes first: they are stopped before their namespaces go.
struct Hosts {
    procs: Vec<Proc>,
    _ns: Namespaces,
}

/// Creates the hub namespace with a bridge, and one namespace per host (`boot`, `n0`..)
/// wired to it by a veth pair, with address `SUBNET.<10 + i>/24` and `lo` up (for its API).
/// `Err` with the reason when namespaces cannot be created here.
fn make_hosts(tag: &str, hosts: usize) -> Result<Namespaces, String> {
    let hub = format!("{tag}-hub");
    let first = ip(&["netns", "add", &hub]);
    if !first.status.success() {
        return Err(format!(
            "`ip netns add` failed ({}); network namespaces need root",
            String::from_utf8_lossy(&first.stderr).trim()
        ));
    }
    let mut ns = Namespaces {
        names: vec![hub.clone()],
    };
    let sh = |args: &[&str]| {
        let out = ip(args);
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
    sh(&["-n", &hub, "link", "set", "br0", "up"]);
    for i in 0..hosts {
        let name = host_name(tag, i);
        sh(&["netns", "add", &name]);
        ns.names.push(name.clone());
        // Interface names are at most 15 bytes; these live in the hub only.
        let hub_end = format!("v{i}");
        sh(&[
            "-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0", "netns",
            &name,
        ]);
        sh(&["-n", &hub, "link", "set", &hub_end, "master", "br0"]);
        sh(&["-n", &hub, "link", "set", &hub_end, "up"]);
        let addr = format!("{}/24", host_ip(i));
        sh(&["-n", &name, "addr", "add", &addr, "dev", "eth0"]);
        sh(&["-n", &name, "link", "set", "eth0", "up"]);
        sh(&["-n", &name, "link", "set", "lo", "up"]);
    }
    Ok(ns)
}

/// Host 0 is the bootstrap node, host `1 + i` validator `i`.
fn host_name(tag: &str, i: usize) -> String {
    if i == 0 {
        format!("{tag}-boot")
    } else {
        format!("{tag}-n{}", i - 1)
    }
}

fn host_ip(i: usize) -> String {
    format!("{SUBNET}.{}", 10 + i)
}

/// `cmd` run inside namespace `ns`.
fn in_ns(ns: &str, program: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

/// The JSON status of the `seedfed`-family process of `home` running in `ns`, if it answers.
fn status(ns: &str, node_bin: &Path, home: &Path) -> Option<serde_json::Value> {
    let out = run(in_ns(ns, node_bin)
        .arg("--home")
        .arg(home)
        .args(["status", "--json"]));
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Polls `f` every 250 ms until it gives `Some` or the deadline passes.
fn until<T>(
    deadline: Instant,
    what: &str,
    logs: &[PathBuf],
    mut f: impl FnMut() -> Option<T>,
) -> T {
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = logs
                .iter()
                .map(|l| format!("== {}\n{}", l.display(), log_tail(l)))
                .collect();
            panic!("timed out waiting for {what}\n{}", tails.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn spawn(mut cmd: Command, log: &Path, env: &[(&str, String)]) -> Proc {
    let f = std::fs::File::create(log).unwrap();
    cmd.env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f);
    Proc(cmd.spawn().unwrap())
}

#[test]
fn four_validators_on_separate_hosts_meet_through_the_bootstrap_node() {
    let started = Instant::now();
    // Before the hosts, so it is removed after their processes stop.
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("sfh{}", std::process::id());
    let ns = match make_hosts(&tag, 1 + N) {
        Ok(ns) => ns,
        Err(why) => {
            assert!(
                std::env::var_os("SEEDFED_REQUIRE_NETNS").is_none(),
                "SEEDFED_REQUIRE_NETNS is set but network namespaces cannot be created: {why}"
            );
            eprintln!(
                "SKIPPED four_validators_on_separate_hosts_meet_through_the_bootstrap_node: {why}"
            );
            return;
        }
    };
    let mut hosts = Hosts {
        procs: vec![],
        _ns: ns,
    };
    let (node_bin, boot_bin) = bins();
    let d = dir.path();
    let pass = d.join("pass");
    std::fs::write(&pass, "hosts test pass").unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let boot_ns = host_name(&tag, 0);
    let node_ns: Vec<String> = (0..N).map(|i| host_name(&tag, i + 1)).collect();

    // 1. A genesis without validators, to create the validators' homes and keys.
    let g0 = d.join("genesis0.toml");
    ok(Command::new(&boot_bin)
        .args([
            "genesis",
            "--chain-id",
            "hosts-test",
            "--difficulty",
            "8",
            "--out",
        ])
        .arg(&g0));
    let homes: Vec<PathBuf> = (0..N).map(|i| d.join(format!("node{i}"))).collect();
    let mut validators = Vec::new();
    let mut clients = Vec::new();
    for (i, home) in homes.iter().enumerate() {
        let mut init = Command::new(&node_bin);
        init.arg("--home")
            .arg(home)
            .args(["init", "--chain"])
            .arg(&g0)
            .arg("--passphrase-file")
            .arg(&pass)
            .args(["--listen", "/ip4/0.0.0.0/tcp/4001"])
            .args(["--api-listen", "127.0.0.1:9400"]);
        if i < 2 {
            init.args(["--announce", &format!("/ip4/{}/tcp/4001", host_ip(1 + i))]);
        }
        ok(&mut init);
        let keys: serde_json::Value = serde_json::from_str(&ok(Command::new(&node_bin)
            .arg("--home")
            .arg(home)
            .args(["keys", "show", "--json"])))
        .unwrap();
        let peer = keys["peer_id"].as_str().unwrap().to_string();
        let x = keys["x25519_public"].as_str().unwrap().to_string();
        validators.push(format!("{peer}=100={x}"));
        clients.push(format!("{peer}=10"));
    }
    // 2. The real genesis, distributed to every home.
    let genesis = d.join("genesis.toml");
    let mut tool = Command::new(&boot_bin);
    tool.args([
        "genesis",
        "--chain-id",
        "hosts-test",
        "--difficulty",
        "8",
        "--out",
    ])
    .arg(&genesis);
    for v in &validators {
        tool.args(["--validator", v]);
    }
    for c in &clients {
        tool.args(["--client", c]);
    }
    let summary = ok(&mut tool);
    assert!(summary.contains("genesis hash:"), "{summary}");
    for home in &homes {
        std::fs::copy(&genesis, home.join("genesis.toml")).unwrap();
    }

    // 3. The bootstrap node, configured by its bootstrap.toml.
    let boot_home = d.join("bootstrap");
    std::fs::create_dir_all(&boot_home).unwrap();
    std::fs::write(
        boot_home.join("bootstrap.toml"),
        format!(
            "genesis = {:?}\n[network]\nlisten = [\"/ip4/0.0.0.0/tcp/4000\"]\n\
             announce = [\"/ip4/{}/tcp/4000\"]\ndiscovery_interval_secs = 1\n\
             [api]\nlisten = \"127.0.0.1:9300\"\n",
            genesis.display().to_string(),
            host_ip(0)
        ),
    )
    .unwrap();
    let mut logs = vec![d.join("bootstrap.log")];
    let mut cmd = in_ns(&boot_ns, &boot_bin);
    cmd.args(["run", "--home"]).arg(&boot_home);
    hosts.procs.push(spawn(cmd, &logs[0], &[]));
    let deadline = Instant::now() + DEADLINE;
    let boot_id = until(deadline, "the bootstrap node's API", &logs, || {
        let s = status(&boot_ns, &node_bin, &boot_home)?;
        Some(s["network"]["peer_id"].as_str()?.to_string())
    });
    let boot_addr = format!("/ip4/{}/tcp/4000/p2p/{boot_id}", host_ip(0));

    // 4. The validators, each knowing only the bootstrap node's address.
    let env = [
        ("SEEDFED__NETWORK__BOOTSTRAP", format!("[\"{boot_addr}\"]")),
        ("SEEDFED__NETWORK__DISCOVERY_INTERVAL_SECS", "1".into()),
        ("SEEDFED__NETWORK__ADMISSION_TIMEOUT_SECS", "3".into()),
        ("SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS", "50".into()),
        ("SEEDFED__CONSENSUS__SYNC_INTERVAL_MS", "500".into()),
    ];
    for (i, home) in homes.iter().enumerate() {
        let log = d.join(format!("node{i}.log"));
        let mut cmd = in_ns(&node_ns[i], &node_bin);
        cmd.arg("--home")
            .arg(home)
            .args(["run", "--passphrase-file"])
            .arg(&pass);
        hosts.procs.push(spawn(cmd, &log, &env));
        logs.push(log);
    }
    let ids: Vec<String> = validators
        .iter()
        .map(|v| v.split('=').next().unwrap().to_string())
        .collect();

    // 5. Every validator admits the others and holds each at its own namespace address,
    // never at a loopback address.
    for i in 0..N {
        until(
            deadline,
            &format!("validator {i} to know the others"),
            &logs,
            || {
                let s = status(&node_ns[i], &node_bin, &homes[i])?;
                let admitted: BTreeSet<&str> = s["network"]["admitted"]
                    .as_array()?
                    .iter()
                    .filter_map(|p| p["peer_id"].as_str())
                    .collect();
                let peer_addrs = s["network"]["peer_addrs"].as_object()?;
                for (j, id) in ids.iter().enumerate() {
                    if j == i {
                        continue;
                    }
                    let addrs: Vec<&str> = peer_addrs
                        .get(id)?
                        .as_array()?
                        .iter()
                        .filter_map(|a| a.as_str())
                        .collect();
                    let own = format!("/ip4/{}/", host_ip(1 + j));
                    if !admitted.contains(id.as_str()) || !addrs.iter().any(|a| a.starts_with(&own))
                    {
                        return None;
                    }
                }
                for (peer, addrs) in peer_addrs {
                    for a in addrs.as_array()? {
                        let a = a.as_str()?;
                        assert!(
                            !a.contains("/ip4/127.") && !a.contains("/ip6/::1/"),
                            "validator {i} holds peer {peer} at loopback address {a}: {s:#}"
                        );
                    }
                }
                Some(())
            },
        );
    }
    // The announced addresses are what validators 0 and 1 tell their peers.
    for i in 0..2 {
        let s = status(&node_ns[i], &node_bin, &homes[i]).unwrap();
        assert_eq!(
            s["network"]["external_addrs"],
            serde_json::json!([format!("/ip4/{}/tcp/4001", host_ip(1 + i))]),
            "{s:#}"
        );
    }

    // 6. Consensus decides heights across the hosts and the genesis DKG completes with all four.
    for i in 0..N {
        until(
            deadline,
            &format!("validator {i}'s genesis DKG"),
            &logs,
            || {
                let s = status(&node_ns[i], &node_bin, &homes[i])?;
                let c = &s["chain"];
                let done = c["dkgs"]
                    .as_array()?
                    .iter()
                    .any(|d| d["qualified"].as_array().is_some_and(|q| q.len() == N));
                (c["height"].as_u64()? >= 5 && done).then_some(())
            },
        );
    }
    drop(hosts);
    eprintln!(
        "four validators across namespaces: {:.1?}",
        started.elapsed()
    );
}
