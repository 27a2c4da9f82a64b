//! The `seedfed` binary: init, keys, `--dump-config` with environment overrides, and clear
//! one-line errors for bad input.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use seedfed_node::config::{Config, LogFormat};
use seedfed_node::genesis::Genesis;

const BIN: &str = env!("CARGO_BIN_EXE_seedfed");

struct Home {
    _dir: tempfile::TempDir,
    home: PathBuf,
    genesis: PathBuf,
    pass: PathBuf,
}

fn setup() -> Home {
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("genesis.toml");
    let g = Genesis {
        chain_id: "cli-test".into(),
        pow_difficulty: 8,
        validators: vec![],
        key: Default::default(),
        epochs: Default::default(),
        clients: vec![],
    };
    std::fs::write(&genesis, g.to_toml()).unwrap();
    let pass = private_file(dir.path(), "pass", "correct horse\n");
    let home = dir.path().join("home");
    Home {
        _dir: dir,
        home,
        genesis,
        pass,
    }
}

/// A file only its owner can read (what passphrase files must be).
fn private_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn seedfed(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("SEEDFED_PASSPHRASE")
        .env_remove("RUST_LOG");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn init(h: &Home, extra: &[&str]) -> Output {
    let mut args = vec![
        "init",
        "--chain",
        h.genesis.to_str().unwrap(),
        "--passphrase-file",
        h.pass.to_str().unwrap(),
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    seedfed(&h.home, &args, &[])
}

/// A failure: non-zero exit, no panic, and one `error:` line, the last on stderr. Any line
/// before it must be a log line (the node had started logging before the failure).
fn assert_clean_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let (last, before) = lines.split_last().expect("no error message");
    assert!(last.starts_with("error: "), "{err}");
    assert!(last.contains(needle), "expected {needle:?} in: {err}");
    for l in before {
        assert!(
            [" INFO ", " WARN ", " DEBUG "]
                .iter()
                .any(|lvl| l.contains(lvl)),
            "unexpected non-log line {l:?} before the error in: {err}"
        );
    }
}

#[test]
fn init_creates_a_private_keystore_and_keys_show_needs_no_passphrase() {
    let h = setup();
    let out = init(&h, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ks = h.home.join("keystore.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let show = seedfed(&h.home, &["keys", "show", "--json"], &[]);
    assert!(show.status.success());
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let peer = v["peer_id"].as_str().unwrap();
    assert!(stdout.contains(peer), "init should print the peer id");
    assert_eq!(v["admission"]["chain_id"], "cli-test");
    // Only public material: no field named like a secret.
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(!text.contains("secret") && !text.contains("ciphertext"));
    let out_file = h.home.join("public.json");
    let ex = seedfed(
        &h.home,
        &["keys", "export-public", "--out", out_file.to_str().unwrap()],
        &[],
    );
    assert!(ex.status.success());
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(exported, v);
    // A second init refuses to overwrite the identity.
    assert_clean_error(&init(&h, &[]), "already exists");
}

#[test]
fn dump_config_reflects_every_key_and_its_env_override() {
    let h = setup();
    assert!(init(&h, &[]).status.success());
    let plain = seedfed(&h.home, &["run", "--dump-config"], &[]);
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let base: Config = toml::from_str(&String::from_utf8_lossy(&plain.stdout)).unwrap();
    assert_eq!(
        base.network.listen,
        vec!["/ip4/127.0.0.1/tcp/0".to_string()]
    );
    assert_eq!(base.api.listen, "127.0.0.1:0");

    let envs: &[(&str, &str)] = &[
        ("SEEDFED__NODE__GENESIS", "/g.toml"),
        ("SEEDFED__NODE__KEYSTORE", "/k.json"),
        ("SEEDFED__NODE__DATA_DIR", "/d"),
        ("SEEDFED__NETWORK__LISTEN", "[\"/ip4/127.0.0.1/tcp/7\"]"),
        ("SEEDFED__NETWORK__BOOTSTRAP", "[\"/ip4/127.0.0.1/tcp/8\"]"),
        ("SEEDFED__NETWORK__ANNOUNCE", "[\"/ip4/203.0.113.7/tcp/9\"]"),
        ("SEEDFED__NETWORK__MAX_CONNECTIONS", "11"),
        ("SEEDFED__NETWORK__RESERVED_VALIDATOR_SLOTS", "5"),
        ("SEEDFED__NETWORK__MAX_CONNECTIONS_PER_IP", "2"),
        ("SEEDFED__NETWORK__MAX_CONNECTIONS_PER_SUBNET", "9"),
        ("SEEDFED__NETWORK__EXEMPT_LOOPBACK", "false"),
        ("SEEDFED__NETWORK__MAX_CONNECTIONS_PER_PEER", "3"),
        ("SEEDFED__NETWORK__MAX_PENDING", "12"),
        ("SEEDFED__NETWORK__MAX_MEMORY_FRACTION", "0.5"),
        ("SEEDFED__NETWORK__GOSSIP_MAX_BYTES", "1000"),
        ("SEEDFED__NETWORK__REQUEST_MAX_BYTES", "2000"),
        ("SEEDFED__NETWORK__RPC_REQUESTS_PER_SEC", "31"),
        ("SEEDFED__NETWORK__RPC_REQUEST_BURST", "32"),
        ("SEEDFED__NETWORK__ADMISSION_TIMEOUT_SECS", "4"),
        ("SEEDFED__NETWORK__DISCOVERY_INTERVAL_SECS", "5"),
        ("SEEDFED__NETWORK__IDLE_TIMEOUT_SECS", "6"),
        ("SEEDFED__NETWORK__BOOTSTRAP_TIMEOUT_SECS", "7"),
        ("SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS", "21"),
        ("SEEDFED__CONSENSUS__PROPOSE_TIMEOUT_MS", "22"),
        ("SEEDFED__CONSENSUS__VOTE_TIMEOUT_MS", "23"),
        ("SEEDFED__CONSENSUS__SYNC_INTERVAL_MS", "24"),
        ("SEEDFED__API__LISTEN", "127.0.0.1:9999"),
        ("SEEDFED__API__ALLOW_REMOTE", "true"),
        ("SEEDFED__API__TOKEN_FILE", "/t"),
        ("SEEDFED__API__ALLOWED_HOSTS", "[\"node.example\"]"),
        ("SEEDFED__LOG__FILTER", "debug"),
        ("SEEDFED__LOG__FORMAT", "json"),
    ];
    let out = seedfed(&h.home, &["run", "--dump-config"], envs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let c: Config = toml::from_str(&text).unwrap();
    assert_eq!(c.node.genesis, PathBuf::from("/g.toml"));
    assert_eq!(c.node.keystore, PathBuf::from("/k.json"));
    assert_eq!(c.node.data_dir, PathBuf::from("/d"));
    assert_eq!(c.network.listen, vec!["/ip4/127.0.0.1/tcp/7".to_string()]);
    assert_eq!(
        c.network.bootstrap,
        vec!["/ip4/127.0.0.1/tcp/8".to_string()]
    );
    assert_eq!(
        c.network.announce,
        vec!["/ip4/203.0.113.7/tcp/9".to_string()]
    );
    assert_eq!(c.network.max_connections, 11);
    assert_eq!(c.network.reserved_validator_slots, 5);
    assert_eq!(c.network.max_connections_per_ip, 2);
    assert_eq!(c.network.max_connections_per_subnet, 9);
    assert!(!c.network.exempt_loopback);
    assert_eq!(c.network.max_connections_per_peer, 3);
    assert_eq!(c.network.max_pending, 12);
    assert_eq!(c.network.max_memory_fraction, 0.5);
    assert_eq!(c.network.gossip_max_bytes, 1000);
    assert_eq!(c.network.request_max_bytes, 2000);
    assert_eq!(c.network.rpc_requests_per_sec, 31);
    assert_eq!(c.network.rpc_request_burst, 32);
    assert_eq!(c.network.admission_timeout_secs, 4);
    assert_eq!(c.network.discovery_interval_secs, 5);
    assert_eq!(c.network.idle_timeout_secs, 6);
    assert_eq!(c.network.bootstrap_timeout_secs, 7);
    assert_eq!(c.consensus.block_interval_ms, 21);
    assert_eq!(c.consensus.propose_timeout_ms, 22);
    assert_eq!(c.consensus.vote_timeout_ms, 23);
    assert_eq!(c.consensus.sync_interval_ms, 24);
    assert_eq!(c.api.listen, "127.0.0.1:9999");
    assert!(c.api.allow_remote);
    assert_eq!(c.api.token_file, Some(PathBuf::from("/t")));
    assert_eq!(c.api.allowed_hosts, vec!["node.example".to_string()]);
    assert_eq!(c.log.filter, "debug");
    assert_eq!(c.log.format, LogFormat::Json);

    // Every key in the dump has an override tested above (a new key must be added here), and
    // every key is documented with its variable in the config.toml that init wrote.
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut dumped = BTreeSet::new();
    for (section, v) in &table {
        for key in v.as_table().unwrap().keys() {
            dumped.insert(format!(
                "SEEDFED__{}__{}",
                section.to_uppercase(),
                key.to_uppercase()
            ));
        }
    }
    let tested: BTreeSet<String> = envs.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(dumped, tested);
    let written = std::fs::read_to_string(h.home.join("config.toml")).unwrap();
    for var in &tested {
        assert!(
            written.contains(var.as_str()),
            "config.toml does not document {var}"
        );
    }
}

#[test]
fn bad_input_gives_one_line_errors() {
    let h = setup();
    assert!(init(&h, &[]).status.success());
    let wrong = private_file(&h.home, "wrong-pass", "nope");
    let run = |pass: &Path, envs: &[(&str, &str)]| {
        seedfed(
            &h.home,
            &["run", "--passphrase-file", pass.to_str().unwrap()],
            envs,
        )
    };
    assert_clean_error(&run(&wrong, &[]), "wrong passphrase");
    // No passphrase source at all (stdin is not a terminal here).
    let out = Command::new(BIN)
        .arg("--home")
        .arg(&h.home)
        .arg("run")
        .env_remove("SEEDFED_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_clean_error(&out, "no passphrase");
    // Unreachable bootstrap on a first start.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let boot = format!(
        "[\"/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\"]"
    );
    assert_clean_error(
        &run(
            &h.pass,
            &[
                ("SEEDFED__NETWORK__BOOTSTRAP", &boot),
                ("SEEDFED__NETWORK__BOOTSTRAP_TIMEOUT_SECS", "2"),
            ],
        ),
        "no bootstrap node reachable",
    );
    // Bad env override value.
    assert_clean_error(
        &run(&h.pass, &[("SEEDFED__NETWORK__MAX_CONNECTIONS", "lots")]),
        "invalid configuration",
    );
    // An announce address no other host can dial.
    assert_clean_error(
        &run(
            &h.pass,
            &[("SEEDFED__NETWORK__ANNOUNCE", "[\"/ip4/0.0.0.0/tcp/4001\"]")],
        ),
        "announce address /ip4/0.0.0.0/tcp/4001",
    );
    // Keystore readable by others.
    let ks = h.home.join("keystore.json");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ks, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_clean_error(&run(&h.pass, &[]), "chmod 600");
    // Corrupt keystore.
    std::fs::write(&ks, "{garbage").unwrap();
    std::fs::set_permissions(&ks, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_clean_error(&run(&h.pass, &[]), "corrupt");
    // Corrupt config.
    std::fs::write(h.home.join("config.toml"), "[network\nlisten = 3").unwrap();
    assert_clean_error(&run(&h.pass, &[]), "invalid configuration");
    // Missing home.
    assert_clean_error(
        &seedfed(&h.home.join("missing"), &["run", "--dump-config"], &[]),
        "run `seedfed init` first",
    );
    // Status with no running node.
    assert_clean_error(&seedfed(&h.home, &["status"], &[]), "no running node");
}

#[test]
fn keys_passphrase_reencrypts_the_keystore_and_leaves_it_intact_on_failure() {
    use seedfed_node::keystore::{self, KeystoreError, Passphrase};
    use std::os::unix::fs::PermissionsExt;
    let h = setup();
    assert!(init(&h, &[]).status.success());
    let ks = h.home.join("keystore.json");
    let before = std::fs::read(&ks).unwrap();
    let public = keystore::load_public(&ks).unwrap();
    let dir = h.pass.parent().unwrap();
    let new = private_file(dir, "new-pass", "battery staple\n");
    let wrong = private_file(dir, "wrong-pass", "nope\n");
    let change = |old: &Path, new: &Path| {
        seedfed(
            &h.home,
            &[
                "keys",
                "passphrase",
                "--passphrase-file",
                old.to_str().unwrap(),
                "--new-passphrase-file",
                new.to_str().unwrap(),
            ],
            &[],
        )
    };
    // Refusals leave the keystore exactly as it was.
    assert_clean_error(&change(&wrong, &new), "wrong passphrase");
    assert_eq!(std::fs::read(&ks).unwrap(), before);
    assert_clean_error(&change(&h.pass, &h.pass), "same as the old");
    assert_eq!(std::fs::read(&ks).unwrap(), before);
    let open_new = private_file(dir, "open-new-pass", "battery staple\n");
    std::fs::set_permissions(&open_new, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_clean_error(&change(&h.pass, &open_new), "chmod 600");
    assert_eq!(std::fs::read(&ks).unwrap(), before);

    let out = change(&h.pass, &new);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(std::fs::read(&ks).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Only the keystore: no temporary file left in the home.
    let stray: Vec<_> = std::fs::read_dir(&h.home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("keystore") && n != "keystore.json")
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    // The same identity, under the new passphrase only.
    assert_eq!(keystore::load_public(&ks).unwrap(), public);
    let (id, _) = keystore::load(&ks, &Passphrase::new("battery staple".into())).unwrap();
    assert_eq!(id.peer_id().to_string(), public.peer_id);
    assert!(matches!(
        keystore::load(&ks, &Passphrase::new("correct horse".into())),
        Err(KeystoreError::WrongPassphrase(_))
    ));
}

/// `keys solve-pow`: a new node joining after a difficulty raise solves the proof at the
/// raised difficulty before its first start; the result is in the file the node reads at start
/// and verifies for this identity at that difficulty. Before: no command could, so such a node
/// was admitted only by bootstrap nodes and never synced.
#[test]
fn keys_solve_pow_keeps_a_proof_at_the_raised_difficulty_for_the_next_start() {
    let h = setup();
    assert!(init(&h, &[]).status.success());
    let pass = h.pass.to_str().unwrap();
    let solve = |bits: &str| {
        seedfed(
            &h.home,
            &[
                "keys",
                "solve-pow",
                "--bits",
                bits,
                "--passphrase-file",
                pass,
            ],
            &[],
        )
    };
    // What the keystore's proof (solved at the genesis difficulty, 8) really meets: often a
    // few bits more, by luck; the raise asked for below is past it.
    let show = seedfed(&h.home, &["keys", "show", "--json"], &[]);
    let public: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let peer: libp2p::PeerId = public["peer_id"].as_str().unwrap().parse().unwrap();
    let x25519: [u8; 32] = hex::decode(public["x25519_public"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let puzzle = seedfed_protocol::admission::Puzzle {
        chain_id: "cli-test".into(),
        peer_id: peer.to_bytes(),
        x25519,
    };
    let met = |nonce: u64| seedfed_protocol::admission::leading_zero_bits(&puzzle.hash(nonce));
    let have = met(public["admission"]["nonce"].as_u64().unwrap());
    assert!(have >= 8);
    let out = solve(&have.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("already meets"));
    let file = h.home.join(seedfed_node::own_proof::PROOF_FILE);
    assert!(!file.exists());
    // A raise past it: solved and saved.
    let raised = have + 2;
    let out = solve(&raised.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["peer_id"], public["peer_id"]);
    assert_eq!(saved["admission"]["chain_id"], "cli-test");
    assert_eq!(saved["admission"]["difficulty"], raised);
    let nonce = saved["admission"]["nonce"].as_u64().unwrap();
    puzzle
        .verify(&seedfed_protocol::admission::Proof { nonce }, raised as u8)
        .unwrap();
    // Asked again at or below it: the saved proof meets it.
    assert!(String::from_utf8_lossy(&solve(&raised.to_string()).stdout).contains("already meets"));
    // Out of range.
    assert_clean_error(&solve("0"), "--bits must be between 1 and");
    assert_clean_error(&solve("65"), "--bits must be between 1 and");
}
