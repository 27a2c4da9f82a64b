//! `seedfed verify`: an LMS signature from files alone (with the list of retired leaves next to
//! the key), and after walking a checkpoint chain served by a node's API (here a stub serving a
//! crafted `/status` with the retired leaves), with one-line reasons and a non-zero exit on
//! every rejection — a signature at a retired leaf among them.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ed25519_dalek::{Signer, SigningKey};
use hbs_lms::signature::SignerMut;
use hbs_lms::{HssParameter, LmotsAlgorithm, LmsAlgorithm, Seed, Sha256_256};
use seedfed_node::api::StatusReport;
use seedfed_node::chain::{ChainStatus, CheckpointInfo};
use seedfed_node::genesis::Genesis;
use seedfed_node::network::NetworkStatus;
use seedfed_protocol::checkpoint::{Checkpoint, MasterKey};
use seedfed_protocol::ledger::chain_digest;
use seedfed_protocol::lms::{LmsPublicKey, LmsSignature};
use seedfed_protocol::retired::RetiredLeaves;

const BIN: &str = env!("CARGO_BIN_EXE_seedfed");
const CHAIN: &str = "verify-test";
const MESSAGE: &[u8] = b"release 2.0.0 sha256 feedbeef";
/// The leaves the stub chain's checkpoints say the audit retired (the signature is at leaf 0).
const RETIRED: [u64; 2] = [3, 17];

struct Files {
    dir: tempfile::TempDir,
    pubkey: PathBuf,
    /// `seedfed.pub.retired`: no leaf retired (hbs-lms made the key, no audit ran).
    retired: PathBuf,
    sig: PathBuf,
    message: PathBuf,
    genesis: PathBuf,
    master_key: MasterKey,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// An H5/W4 key made and used by hbs-lms (an independent RFC 8554 implementation), its
/// signature on `MESSAGE`'s digest (what the federation signs), and a genesis for `CHAIN`.
fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let (mut sk, vk) = hbs_lms::keygen::<Sha256_256>(
        &[HssParameter::new(
            LmotsAlgorithm::LmotsW4,
            LmsAlgorithm::LmsH5,
        )],
        &Seed::from([0x2b; 32]),
        None,
    )
    .unwrap();
    let sig = sk
        .try_sign(&seedfed_protocol::ledger::message_digest(MESSAGE))
        .unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let pk = LmsPublicKey::decode_hss(vk.as_slice()).unwrap();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: 8,
        validators: vec![],
        key: Default::default(),
        epochs: Default::default(),
        clients: vec![],
    };
    Files {
        pubkey: write("seedfed.pub", vk.as_slice()),
        retired: write("seedfed.pub.retired", b""),
        sig: write("release.sig", sig.as_ref()),
        message: write("release.tar", MESSAGE),
        genesis: write("genesis.toml", genesis.to_toml().as_bytes()),
        master_key: MasterKey::from(&pk),
        dir,
    }
}

fn seedfed(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Non-zero exit, no panic, the last stderr line `error: ...` containing `needle`.
fn assert_rejected(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(last.starts_with("error: "), "{err}");
    assert!(last.contains(needle), "expected {needle:?} in: {err}");
}

fn files_args<'a>(pubkey: &'a Path, sig: &'a Path, msg: &'a Path) -> Vec<&'a str> {
    vec![
        "verify",
        "--pubkey",
        s(pubkey),
        "--sig",
        s(sig),
        "--message",
        s(msg),
    ]
}

#[test]
fn verify_from_files_accepts_the_signature_and_rejects_every_change() {
    let f = files();
    let home = f.path("home");
    let out = seedfed(&home, &files_args(&f.pubkey, &f.sig, &f.message));
    assert!(assert_ok(&out).contains("signature verifies under LMS root"));
    assert!(
        LmsSignature::decode_hss(&std::fs::read(&f.sig).unwrap())
            .unwrap()
            .q
            == 0
    );

    let other_msg = f.path("other.tar");
    std::fs::write(&other_msg, b"release 2.0.1").unwrap();
    let out = seedfed(&home, &files_args(&f.pubkey, &f.sig, &other_msg));
    assert_rejected(&out, "signature rejected: signature does not verify");

    // A wrong authentication path: the signature's last 32 bytes are the path's top sibling.
    let mut sig = std::fs::read(&f.sig).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    let bad_path = f.path("bad-path.sig");
    std::fs::write(&bad_path, &sig).unwrap();
    let out = seedfed(&home, &files_args(&f.pubkey, &bad_path, &f.message));
    assert_rejected(&out, "signature does not verify under this public key");

    let short = f.path("short.sig");
    std::fs::write(&short, &sig[..100]).unwrap();
    let out = seedfed(&home, &files_args(&f.pubkey, &short, &f.message));
    assert_rejected(&out, "signature rejected: malformed encoding");

    // Another key's file.
    let mut pk = std::fs::read(&f.pubkey).unwrap();
    let last = pk.len() - 1;
    pk[last] ^= 1;
    let other_pk = f.path("other.pub");
    std::fs::write(&other_pk, &pk).unwrap();
    let mut args = files_args(&other_pk, &f.sig, &f.message);
    args.extend(["--retired", s(&f.retired)]);
    let out = seedfed(&home, &args);
    assert_rejected(&out, "signature rejected");

    let out = seedfed(
        &home,
        &files_args(&f.path("missing.pub"), &f.sig, &f.message),
    );
    assert_rejected(&out, "cannot read");
}

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

/// Checkpoint `seq` of `CHAIN` signed by key `signer`, naming key `next` as the next one.
fn checkpoint(seq: u64, signer: u8, next: u8, master_key: MasterKey) -> CheckpointInfo {
    let cp = Checkpoint {
        chain_id: chain_digest(CHAIN),
        seq,
        epoch: seq + 1,
        height: 40 * (seq + 1),
        master_key,
        next_key: key(next).verifying_key().to_bytes(),
        validator_set_hash: [9; 32],
        retired_digest: if master_key.is_none() {
            [0; 32]
        } else {
            RetiredLeaves::new(RETIRED).digest()
        },
    };
    let bytes = cp.to_bytes();
    CheckpointInfo {
        seq,
        epoch: cp.epoch,
        height: cp.height,
        bytes: hex::encode(bytes),
        signature: hex::encode(key(signer).sign(&bytes).to_bytes()),
        group_key: hex::encode(key(signer).verifying_key().to_bytes()),
        key_epoch: u64::from(signer),
        retired_leaves: (!master_key.is_none()).then(|| RETIRED.to_vec()),
    }
}

/// Serves `/status` with these checkpoints on a loopback port, for the test's lifetime.
fn stub_node(checkpoints: Vec<CheckpointInfo>) -> SocketAddr {
    let report = StatusReport {
        version: "test".into(),
        role: "node".into(),
        network: NetworkStatus {
            peer_id: String::new(),
            chain_id: CHAIN.into(),
            listen_addrs: vec![],
            external_addrs: vec![],
            observed_addrs: vec![],
            peer_addrs: Default::default(),
            connected: vec![],
            admitted: vec![],
            routing_table: vec![],
            rejected_total: 0,
        },
        chain: Some(ChainStatus {
            checkpoints,
            ..ChainStatus::default()
        }),
        headline: None,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/status",
                axum::routing::get(move || {
                    let r = report.clone();
                    async move { axum::Json(r) }
                }),
            );
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    addr
}

/// Key 0 signs seq 0 (no master key yet) and the rotation seq 1 to key 1; key 1 signs seq 2
/// with the master key.
fn honest(mk: MasterKey) -> Vec<CheckpointInfo> {
    vec![
        checkpoint(0, 0, 0, MasterKey::NONE),
        checkpoint(1, 0, 1, MasterKey::NONE),
        checkpoint(2, 1, 1, mk),
    ]
}

fn api_args<'a>(f: &'a Files, addr: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "verify",
        "--api",
        addr,
        "--sig",
        s(&f.sig),
        "--message",
        s(&f.message),
        "--genesis",
        s(&f.genesis),
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn verify_walks_the_served_chain_from_epoch_0s_key() {
    let f = files();
    let home = f.path("home");
    let anchor = hex::encode(key(0).verifying_key().to_bytes());
    let addr = stub_node(honest(f.master_key)).to_string();
    let cache = f.path("trusted.json");
    let out = seedfed(
        &home,
        &api_args(
            &f,
            &addr,
            &["--anchor-key", &anchor, "--trusted", s(&cache)],
        ),
    );
    let stdout = assert_ok(&out);
    assert!(
        stdout.contains("vouched for by checkpoints 0..3"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let key1 = hex::encode(key(1).verifying_key().to_bytes());
    assert!(stderr.contains(&format!("key in force {key1}")), "{stderr}");
    // The cache resumes: no anchor needed, nothing new to verify, still verifies.
    let t: seedfed_protocol::light_client::Trusted =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!((t.next_seq, t.key), (3, key(1).verifying_key().to_bytes()));
    let out = seedfed(&home, &api_args(&f, &addr, &["--trusted", s(&cache)]));
    assert_ok(&out);
    // With --pubkey too, the file must be the vouched-for key.
    let out = seedfed(
        &home,
        &api_args(
            &f,
            &addr,
            &["--anchor-key", &anchor, "--pubkey", s(&f.pubkey)],
        ),
    );
    assert_ok(&out);
}

#[test]
fn verify_rejects_a_hostile_server_with_the_reason() {
    let f = files();
    let home = f.path("home");
    let anchor = hex::encode(key(0).verifying_key().to_bytes());
    let run = |cps: Vec<CheckpointInfo>, extra: &[&str]| {
        let addr = stub_node(cps).to_string();
        let mut args = api_args(&f, &addr, &["--anchor-key", &anchor]);
        args.extend_from_slice(extra);
        seedfed(&home, &args)
    };
    // A server's own key signs the chain.
    let forged = vec![checkpoint(0, 7, 7, f.master_key)];
    assert_rejected(
        &run(forged, &[]),
        "checkpoint #0 of the list: checkpoint signature does not verify under the key in force",
    );
    // After the rotation the retired key 0 signs seq 2.
    let mut stale = honest(f.master_key);
    stale[2] = checkpoint(2, 0, 0, f.master_key);
    assert_rejected(
        &run(stale, &[]),
        "checkpoint 2 is signed by the key retired at the last rotation",
    );
    // The rotation left out.
    let mut gap = honest(f.master_key);
    gap.remove(1);
    assert_rejected(&run(gap, &[]), "checkpoint 1 is missing");
    // Honest chain, but no checkpoint carries a master key yet.
    assert_rejected(
        &run(honest(f.master_key)[..2].to_vec(), &[]),
        "no verified checkpoint carries the master key",
    );
    // Honest chain, a public key file that is not the vouched-for key.
    let mut pk = std::fs::read(&f.pubkey).unwrap();
    let last = pk.len() - 1;
    pk[last] ^= 1;
    let other = f.path("other.pub");
    std::fs::write(&other, &pk).unwrap();
    assert_rejected(
        &run(honest(f.master_key), &["--pubkey", s(&other)]),
        "LMS public key's root T[1] differs from the checkpoint's master key",
    );
    // Another chain's genesis.
    let g = f.path("other-genesis.toml");
    let text = std::fs::read_to_string(&f.genesis)
        .unwrap()
        .replace(CHAIN, "another-chain");
    std::fs::write(&g, text).unwrap();
    let addr = stub_node(honest(f.master_key)).to_string();
    let mut args = api_args(&f, &addr, &["--anchor-key", &anchor]);
    let at = args.iter().position(|a| *a == "--genesis").unwrap();
    args[at + 1] = s(&g);
    assert_rejected(&seedfed(&home, &args), "checkpoint is for another chain");
    // No anchor at all.
    let out = seedfed(&home, &api_args(&f, &addr, &[]));
    assert_rejected(&out, "no trust anchor");
}

/// From files: the list next to the key (`seedfed pubkey` writes `NAME.pub.retired`) or
/// `--retired`; a signature at a listed leaf is refused as the forgery it may be; without a
/// list `seedfed verify --pubkey` refuses to decide unless told `--no-retired-check`.
#[test]
fn verify_from_files_refuses_a_signature_at_a_retired_leaf() {
    let f = files();
    let home = f.path("home");
    // The signature is at leaf 0: retire it in the companion file.
    std::fs::write(&f.retired, "0\n5\n").unwrap();
    let out = seedfed(&home, &files_args(&f.pubkey, &f.sig, &f.message));
    assert_rejected(
        &out,
        "signature rejected: signature is at leaf 0, which the key-generation audit retired",
    );
    // An explicit --retired list without leaf 0 takes precedence.
    let other = f.path("other.retired");
    std::fs::write(&other, "1\n2\n").unwrap();
    let mut args = files_args(&f.pubkey, &f.sig, &f.message);
    args.extend(["--retired", s(&other)]);
    let stdout = assert_ok(&seedfed(&home, &args));
    assert!(stdout.contains("not among the 2 retired"), "{stdout}");
    // A list that is not a canonical set is refused, naming the file.
    std::fs::write(&other, "2\n1\n").unwrap();
    assert_rejected(&seedfed(&home, &args), "not strictly increasing");
    // No list at all: refused, unless the check is turned off (with a warning).
    std::fs::remove_file(&f.retired).unwrap();
    assert_rejected(
        &seedfed(&home, &files_args(&f.pubkey, &f.sig, &f.message)),
        "no list of retired leaves",
    );
    let mut args = files_args(&f.pubkey, &f.sig, &f.message);
    args.push("--no-retired-check");
    let out = seedfed(&home, &args);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: --no-retired-check"));
    // A --retired file that does not exist is an error, not a silent skip.
    let mut args = files_args(&f.pubkey, &f.sig, &f.message);
    args.extend(["--retired", s(&f.retired)]);
    assert_rejected(&seedfed(&home, &args), "cannot read");
}

/// Through the checkpoints: the client takes the retired leaves the node serves only if they
/// hash to the digest the checkpoint signs, keeps them in its cache, and refuses a signature at
/// a retired leaf.
#[test]
fn verify_through_the_checkpoints_checks_the_retired_leaves() {
    let f = files();
    let home = f.path("home");
    let anchor = hex::encode(key(0).verifying_key().to_bytes());
    let run = |cps: Vec<CheckpointInfo>, extra: &[&str]| {
        let addr = stub_node(cps).to_string();
        let mut args = api_args(&f, &addr, &["--anchor-key", &anchor]);
        args.extend_from_slice(extra);
        seedfed(&home, &args)
    };
    // A server that leaves a leaf out of the list (or adds one) is caught by the digest.
    let mut tampered = honest(f.master_key);
    tampered[2].retired_leaves = Some(vec![3]);
    assert_rejected(
        &run(tampered, &[]),
        "retired leaves served with checkpoint 2 rejected: the list of 1 retired leaves does not \
         match the digest the checkpoint commits to",
    );
    let mut unsorted = honest(f.master_key);
    unsorted[2].retired_leaves = Some(vec![17, 3]);
    assert_rejected(&run(unsorted, &[]), "not strictly increasing");
    // A server that serves no list: nothing verifies.
    let mut withheld = honest(f.master_key);
    withheld[2].retired_leaves = None;
    assert_rejected(
        &run(withheld, &[]),
        "no verified list of the leaves the audit retired",
    );
    // A chain whose checkpoint retires leaf 0, where the signature is: refused as retired.
    let mut cps = honest(f.master_key);
    let retiring = {
        let bytes = hex::decode(&cps[2].bytes).unwrap();
        let mut cp = Checkpoint::from_bytes(&bytes).unwrap();
        cp.retired_digest = RetiredLeaves::new([0, 17]).digest();
        let bytes = cp.to_bytes();
        CheckpointInfo {
            bytes: hex::encode(bytes),
            signature: hex::encode(key(1).sign(&bytes).to_bytes()),
            retired_leaves: Some(vec![0, 17]),
            ..cps[2].clone()
        }
    };
    cps[2] = retiring;
    let cache = f.path("trusted.json");
    let out = run(cps, &["--trusted", s(&cache)]);
    assert_rejected(
        &out,
        "signature rejected: signature is at leaf 0, which the key-generation audit retired",
    );
    // The cache kept the checked list: resuming with nothing new still refuses.
    let t: seedfed_protocol::light_client::Trusted =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(t.retired, Some(RetiredLeaves::new([0, 17])));
    let addr = stub_node(vec![]).to_string();
    assert_rejected(
        &seedfed(&home, &api_args(&f, &addr, &["--trusted", s(&cache)])),
        "which the key-generation audit retired",
    );
}
