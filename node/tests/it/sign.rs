//! Signing on real `seedfed` processes over loopback libp2p, once the key is made: authorized
//! clients (each validator's own key, as in `seedfed-testnet up`) send signed requests to the
//! nodes' `POST /sign`; the ledger allocates each a leaf once; the leaf's holders rebuild it by
//! MPC at the relaying node, which signs and publishes. Every signature is checked by the light
//! client (the checkpoint chain walked from epoch 0's key) and by hbs-lms, and the ledger is
//! audited afterwards: every request has exactly one leaf, every leaf one request and one
//! signature on the request's digest. Unauthorized, replayed and stale requests are refused
//! with the ledger's reason; a validator killed during signing delays leaves it held, it does
//! not stop them.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use seedfed_node::api::{self, ApiClient};
use seedfed_node::chain::{ChainStatus, SignOutcome};
use seedfed_protocol::ledger::{
    chain_digest, message_digest, split_leaf, ClientRequest, LedgerState, SignedRequest,
};
use seedfed_protocol::light_client::Trusted;
use seedfed_protocol::lms::LmsSignature;
use seedfed_protocol::member::MemberId;

/// A request by client `key` for message `n`.
fn request(fed: &Fed, key: &ed25519_dalek::SigningKey, epoch: u64, n: u64) -> SignedRequest {
    request_of(&fed.genesis.chain_id, key, epoch, n)
}

fn request_of(
    chain_id: &str,
    key: &ed25519_dalek::SigningKey,
    epoch: u64,
    n: u64,
) -> SignedRequest {
    ClientRequest {
        client: MemberId(key.verifying_key().to_bytes()),
        digest: message_digest(format!("message {n}").as_bytes()),
        epoch,
        nonce: n,
        issue_to: None,
    }
    .sign(chain_id, key)
}

/// One request to send: through validator `relay` (index into the homes), by client `key`,
/// for message `n`.
type Ask = (usize, ed25519_dalek::SigningKey, u64);

/// The asks for messages `ns`: message `m` by `keys[m % keys.len()]` through
/// `relays[m % relays.len()]`.
fn asks(
    relays: &[usize],
    keys: &[ed25519_dalek::SigningKey],
    ns: std::ops::Range<u64>,
) -> Vec<Ask> {
    ns.map(|m| {
        let j = m as usize;
        (relays[j % relays.len()], keys[j % keys.len()].clone(), m)
    })
    .collect()
}

/// The epoch validator `home` is in now.
async fn epoch_now(home: &std::path::Path) -> u64 {
    node_status(home).await.unwrap().chain.unwrap().epoch
}

/// Sends every ask at once, each signed for its relay's epoch as read just before, and returns
/// the requests as sent and their outcomes, in order. A request refused as stale (an epoch
/// lasts 6 s here: on a loaded machine a request can miss the one after its own) is signed
/// again for the epoch now, at most twice, as a client would do; any other refusal fails.
async fn sign_all(
    homes: Vec<PathBuf>,
    chain_id: String,
    asks: Vec<Ask>,
) -> (Vec<SignedRequest>, Vec<SignOutcome>) {
    let client = ApiClient::new();
    let mut epochs = BTreeMap::new();
    for (relay, _, _) in &asks {
        if !epochs.contains_key(relay) {
            epochs.insert(*relay, epoch_now(&homes[*relay]).await);
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (k, (relay, key, n)) in asks.into_iter().enumerate() {
        let home = homes[relay].clone();
        let addr = api::running_api_addr(&home).unwrap();
        let client = client.clone();
        let chain_id = chain_id.clone();
        let mut epoch = epochs[&relay];
        tasks.spawn(async move {
            for _ in 0..3 {
                let req = request_of(&chain_id, &key, epoch, n);
                match client.sign(addr, &req, Duration::from_secs(240)).await {
                    Ok(o) => return (k, req, o),
                    Err(api::ApiError::Refused { reason, .. })
                        if reason.contains(&format!("request of epoch {epoch} at epoch")) =>
                    {
                        eprintln!("request {k}: {reason}; signed again");
                        epoch = epoch_now(&home).await;
                    }
                    Err(e) => panic!("request {k}: {e}"),
                }
            }
            panic!("request {k}: stale three times");
        });
    }
    let mut out = BTreeMap::new();
    while let Some(j) = tasks.join_next().await {
        let (k, req, o) = j.unwrap();
        out.insert(k, (req, o));
    }
    out.into_values().unzip()
}

/// Stops every process and the bootstrap node; returns the homes, the genesis and the
/// directory guard (keep it while reading the stores).
async fn stop(
    fed: Fed,
) -> (
    Vec<PathBuf>,
    seedfed_node::genesis::Genesis,
    tempfile::TempDir,
) {
    let Fed {
        mut procs,
        boot,
        homes,
        genesis,
        _dir,
        ..
    } = fed;
    procs.clear();
    boot.stop().await;
    (homes, genesis, _dir)
}

/// The light client, walked over node `i`'s checkpoints from epoch 0's key (node `i` reports
/// epoch 0's DKG and checkpoints for the first epochs only: walk early).
async fn light_client(fed: &Fed, i: usize) -> Trusted {
    let c: ChainStatus = node_status(&fed.homes[i]).await.unwrap().chain.unwrap();
    let anchor = c.dkgs.iter().find(|d| d.epoch == 0).unwrap();
    let anchor: [u8; 32] = hex::decode(&anchor.ed25519_group_key)
        .unwrap()
        .try_into()
        .unwrap();
    let mut t = Trusted::new(chain_digest(&fed.genesis.chain_id), anchor).unwrap();
    // The walk and the retired leaves the checkpoint of the key commits to.
    seedfed_node::chain::light_walk(&mut t, &c.checkpoints).unwrap();
    assert!(t.retired.is_some(), "the node serves the retired leaves");
    t
}

/// Every outcome verifies in the light client and in hbs-lms, on its request's digest, with a
/// distinct leaf equal to the signature's.
fn check_outcomes(t: &Trusted, public: &[u8], requests: &[SignedRequest], out: &[SignOutcome]) {
    let mut leaves = BTreeSet::new();
    for (req, o) in requests.iter().zip(out) {
        let sig = hex::decode(&o.signature).unwrap();
        let digest = req.request.digest;
        assert_eq!(o.digest, hex::encode(digest));
        t.verify_signature(public, &digest, &sig).unwrap();
        assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(&digest, &sig, public).is_ok());
        assert_eq!(u64::from(LmsSignature::decode_hss(&sig).unwrap().q), o.leaf);
        assert!(leaves.insert(o.leaf), "leaf {} released twice", o.leaf);
    }
}

/// The ledger audit: every request of `requests` has exactly one leaf, the one its outcome
/// names; every allocated leaf has exactly one request, is not retired, and its published
/// signature verifies on that request's digest.
fn audit_ledger(st: &LedgerState, requests: &[SignedRequest], out: &[SignOutcome]) {
    let public = st.master_public_key().unwrap();
    let retired = st.newest.retired_leaves();
    let mut by_request = BTreeMap::new();
    for (leaf, r) in &st.sign_requests {
        assert!(!retired.contains(leaf));
        assert!(
            by_request.insert((r.client, r.request), *leaf).is_none(),
            "a request with two leaves"
        );
        let sig = LmsSignature::decode_hss(&st.signatures[leaf]).unwrap();
        assert_eq!(u64::from(sig.q), *leaf);
        public.verify(&r.digest, &sig).unwrap();
    }
    for (req, o) in requests.iter().zip(out) {
        let key = (req.request.client, (req.request.epoch, req.request.nonce));
        assert_eq!(by_request.get(&key), Some(&o.leaf));
    }
}

async fn sign_many(n: usize, requests: u64) {
    let fed = Fed::start(&Spec::new(n), &[]).await;
    let all: Vec<usize> = (0..n).collect();
    let c = fed.key_generated(&all).await;
    let t = light_client(&fed, 0).await;
    let keys: Vec<_> = all.iter().map(|i| fed.client_key(*i)).collect();
    let started = std::time::Instant::now();
    let (requests, out) = sign_all(
        fed.homes.clone(),
        fed.genesis.chain_id.clone(),
        asks(&all, &keys, 0..requests),
    )
    .await;
    eprintln!("{} signatures in {:?}", out.len(), started.elapsed());
    let public = hex::decode(c.key.public_key.as_ref().unwrap()).unwrap();
    check_outcomes(&t, &public, &requests, &out);
    let (homes, genesis, _dir) = stop(fed).await;
    for i in [0, n - 1] {
        audit_ledger(&stored_ledger(&homes[i], &genesis), &requests, &out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_sign_200_concurrent_requests_each_with_its_own_leaf() {
    sign_many(4, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_validators_sign_200_concurrent_requests_each_with_its_own_leaf() {
    sign_many(7, 200).await;
}

/// `POST /sign` of `req` at validator `relay`: the HTTP status and the node's reason.
async fn refused(fed: &Fed, relay: usize, req: &SignedRequest) -> (u16, String) {
    let addr = api::running_api_addr(&fed.homes[relay]).unwrap();
    match ApiClient::new()
        .sign(addr, req, Duration::from_secs(60))
        .await
    {
        Err(seedfed_node::api::ApiError::Refused { code, reason, .. }) => (code, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_forged_replayed_stale_and_over_quota_requests_are_refused() {
    let spec = Spec {
        client_quota: 2,
        ..Spec::new(4)
    };
    let fed = Fed::start(&spec, &[]).await;
    let all: Vec<usize> = (0..4).collect();
    let c = fed.key_generated(&all).await;
    let key = fed.client_key(0);
    // A key the genesis does not list.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let (code, why) = refused(&fed, 0, &request(&fed, &stranger, c.epoch, 1)).await;
    assert_eq!(code, 400);
    assert!(why.contains("not authorized"), "{why}");
    // Signed for another federation.
    let other_chain = ClientRequest {
        client: MemberId(key.verifying_key().to_bytes()),
        digest: [1; 32],
        epoch: c.epoch,
        nonce: 1,
        issue_to: None,
    }
    .sign("another-federation", &key);
    let (code, why) = refused(&fed, 1, &other_chain).await;
    assert_eq!(code, 400);
    assert!(why.contains("not signed by client"), "{why}");
    // Of an epoch the ledger no longer (or not yet) accepts.
    let (_, why) = refused(&fed, 0, &request(&fed, &key, c.epoch + 5, 1)).await;
    assert!(why.contains("epoch"), "{why}");
    // Signed once; the same request again, at the same node or another, is a replay.
    let (sent, _) = sign_all(
        fed.homes.clone(),
        fed.genesis.chain_id.clone(),
        vec![(0, key.clone(), 1)],
    )
    .await;
    let first = &sent[0];
    for relay in [0, 2] {
        let (code, why) = refused(&fed, relay, first).await;
        assert_eq!(code, 400);
        assert!(why.contains("already used nonce 1"), "{why}");
    }
    // The quota is 2 per epoch: the second request of the first's epoch passes, the third
    // does not (the epoch is accepted until the next one ends: 12 s at least).
    let epoch = first.request.epoch;
    let addr = api::running_api_addr(&fed.homes[1]).unwrap();
    ApiClient::new()
        .sign(
            addr,
            &request(&fed, &key, epoch, 2),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let (code, why) = refused(&fed, 1, &request(&fed, &key, epoch, 3)).await;
    assert_eq!(code, 400);
    assert!(why.contains("quota of 2"), "{why}");
    // Nothing refused took a leaf.
    let c = node_status(&fed.homes[3]).await.unwrap().chain.unwrap();
    assert_eq!(c.key.leaves_allocated, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sector_owner_killed_during_signing_delays_its_leaves_and_every_request_completes() {
    let n = 5;
    let mut fed = Fed::start_with(&Spec::new(n), &[], ENV_DEAD_PROPOSER).await;
    let all: Vec<usize> = (0..n).collect();
    let c = fed.key_generated(&all).await;
    let t = light_client(&fed, 0).await;
    // The owner of sector 0, where the leaves are allocated, and a holder of them: the relays
    // take the leaves' paths from their replicas of its tree (before, only the owner kept its
    // trees, and its death stalled every leaf of its sectors).
    assert_eq!(c.key.leaves_allocated, 0);
    let owner = &c
        .key
        .sectors
        .iter()
        .find(|s| s.sector == 0)
        .expect("sector 0")
        .owner;
    let victim = (0..n)
        .find(|i| fed.hex(*i) == *owner)
        .expect("a validator owns sector 0");
    let relays: Vec<usize> = (0..n).filter(|i| *i != victim).collect();
    let keys: Vec<_> = relays.iter().map(|i| fed.client_key(*i)).collect();
    // Half the requests are in flight when the victim dies, half come after.
    let chain_id = fed.genesis.chain_id.clone();
    let signing = tokio::spawn(sign_all(
        fed.homes.clone(),
        chain_id.clone(),
        asks(&relays, &keys, 0..20),
    ));
    tokio::time::sleep(Duration::from_millis(150)).await;
    fed.procs[victim] = None; // killed
    let (mut requests, mut out) = signing.await.unwrap();
    let (late, late_out) =
        sign_all(fed.homes.clone(), chain_id, asks(&relays, &keys, 20..40)).await;
    requests.extend(late);
    out.extend(late_out);
    let public = hex::decode(c.key.public_key.as_ref().unwrap()).unwrap();
    check_outcomes(&t, &public, &requests, &out);
    // The victim was in the first quorum of some of these leaves: they were signed by a later
    // quorum of live holders.
    let (homes, genesis, _dir) = stop(fed).await;
    let st = stored_ledger(&homes[relays[0]], &genesis);
    audit_ledger(&st, &requests, &out);
    let victim_id = member(&genesis, victim);
    let layout = st.key.layout(&chain_digest(&st.chain_id), 0).unwrap();
    let delayed = out
        .iter()
        .filter(|o| {
            let record = &st.newest.sectors[&layout.sector_of(o.leaf as u32).unwrap()];
            record
                .basis
                .leaf_holders(o.leaf, st.key.leaf_holders)
                .unwrap()
                .into_iter()
                .filter(|h| record.acked.contains(h))
                .take(usize::from(st.key.leaf_threshold))
                .any(|h| h == victim_id)
        })
        .count();
    assert!(delayed > 0, "the victim was in no first quorum");
    eprintln!(
        "{delayed} of {} leaves had the killed validator in their first quorum",
        out.len()
    );
}

/// 7 validators with 3-of-5 shares (the testnet's shape from 5 validators on), validator 6
/// running `--fault fault`: the federation, the faulty one and the honest ones.
async fn byzantine_fed(fault: &str) -> (Fed, usize, Vec<usize>) {
    let spec = Spec {
        key: seedfed_node::genesis::KeySection {
            leaf_threshold: 3,
            leaf_holders: 5,
            ..Default::default()
        },
        ..Spec::new(7)
    };
    let bad = 6;
    let fed = Fed::start(&spec, &[(bad, &["--fault", fault])]).await;
    (fed, bad, (0..6).collect())
}

/// Node 0's chain status once validator `bad` is the only member convicted, by a signing blame
/// whose reason names `reason`.
async fn only_convicted_by_a_signing_blame(fed: &Fed, bad: usize, reason: &str) -> ChainStatus {
    let after = node_status(&fed.homes[0]).await.unwrap().chain.unwrap();
    let convicted: Vec<_> = after
        .key
        .convictions
        .iter()
        .filter(|c| c.by == "sign-blame")
        .collect();
    assert_eq!(convicted.len(), 1, "{:?}", after.key.convictions);
    assert_eq!(convicted[0].member, fed.hex(bad));
    assert!(convicted[0].reason.contains(reason), "{:?}", convicted[0]);
    after
}

/// 7 validators, 3-of-5 shares (the testnet's shape from 5 validators on), validator 6 runs
/// `fault`; 30 requests through validators 0..6; every request completes, and the faulty
/// validator is the only one convicted, by a signing blame, and evicted.
async fn byzantine_holder(fault: &str, reason: &str) {
    let (fed, bad, honest) = byzantine_fed(fault).await;
    let c = fed.key_generated(&honest).await;
    let t = light_client(&fed, 0).await;
    let keys: Vec<_> = honest.iter().map(|i| fed.client_key(*i)).collect();
    let (requests, out) = sign_all(
        fed.homes.clone(),
        fed.genesis.chain_id.clone(),
        asks(&honest, &keys, 0..30),
    )
    .await;
    let public = hex::decode(c.key.public_key.as_ref().unwrap()).unwrap();
    check_outcomes(&t, &public, &requests, &out);
    let after = only_convicted_by_a_signing_blame(&fed, bad, reason).await;
    assert!(
        after.validators.iter().all(|v| v.id != fed.hex(bad)),
        "the liar is evicted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_sending_wrong_contributions_is_convicted_and_signing_completes() {
    byzantine_holder("bad-contribution", "contribution").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_disputing_every_pair_is_the_only_one_convicted_and_signing_completes() {
    byzantine_holder("dispute-everyone", "mask").await;
}

/// Key issuance with a Byzantine holder (7 validators, 3-of-5, validator 6 sends wrong
/// contributions): `seedfed sign --issue` through every honest validator; a client whose
/// bundle does not combine blames the bad contribution through its relay (`POST /sign/blame`),
/// takes the next attempt's bundle (`GET /sign/bundle/{leaf}`) and signs. Every command
/// succeeds, every signature verifies in hbs-lms, and the bad holder alone is convicted, by a
/// signing blame. Before, the client's command failed ("cannot sign with the issued leaf")
/// and nobody could blame the holder: the ledger judged every blame against the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuance_client_blames_a_wrong_contribution_and_signs_with_the_next_quorum() {
    let (fed, bad, honest) = byzantine_fed("bad-contribution").await;
    let c = fed.key_generated(&honest).await;
    let public = hex::decode(c.key.public_key.as_ref().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Two rounds of one command per honest validator, the commands of a round at once.
    let mut outs = Vec::new();
    for round in 0..2 {
        let runs: Vec<_> = honest
            .iter()
            .map(|&i| {
                let message = dir.path().join(format!("m{round}-{i}"));
                std::fs::write(&message, format!("issued {round} {i}")).unwrap();
                let out = dir.path().join(format!("m{round}-{i}.sig"));
                let cmd = std::process::Command::new(seedfed_bin())
                    .arg("--home")
                    .arg(&fed.homes[i])
                    .args(["sign", "--issue", "--json", "--wait-secs", "120"])
                    .arg("--passphrase-file")
                    .arg(&fed.pass)
                    .arg("--message")
                    .arg(&message)
                    .arg("--out")
                    .arg(&out)
                    .env_remove("RUST_LOG")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                (cmd, message, out)
            })
            .collect();
        for (cmd, message, out) in runs {
            let done = tokio::task::spawn_blocking(move || cmd.wait_with_output())
                .await
                .unwrap()
                .unwrap();
            assert!(
                done.status.success(),
                "{}",
                String::from_utf8_lossy(&done.stderr)
            );
            outs.push((
                message,
                out,
                String::from_utf8_lossy(&done.stderr).into_owned(),
            ));
        }
    }
    for (message, out, _) in &outs {
        let digest = message_digest(&std::fs::read(message).unwrap());
        let sig = std::fs::read(out).unwrap();
        assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(&digest, &sig, &public).is_ok());
    }
    let blamed = outs
        .iter()
        .filter(|(_, _, err)| err.contains("blamed on the ledger"))
        .count();
    assert!(
        blamed > 0,
        "no client met the bad holder: the test proves nothing"
    );
    only_convicted_by_a_signing_blame(&fed, bad, "contribution").await;
    eprintln!("{blamed} of {} clients blamed the bad holder", outs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_issuance_to_clients_end_to_end() {
    use seedfed_protocol::issue::{sign_issued, IssueBundle};
    use seedfed_protocol::reconstruct;
    use x25519_dalek::{PublicKey, StaticSecret};
    let n = 4;
    let fed = Fed::start(&Spec::new(n), &[]).await;
    let all: Vec<usize> = (0..n).collect();
    let c = fed.key_generated(&all).await;
    let t = light_client(&fed, 0).await;
    let public_hss = hex::decode(c.key.public_key.as_ref().unwrap()).unwrap();
    let public = seedfed_protocol::lms::LmsPublicKey::decode_hss(&public_hss).unwrap();
    let client = ApiClient::new();
    // Secrets the test knows, searched for in every node's files at the end.
    let mut known: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("identity key of node {i}"),
                fed.client_key(i).to_bytes().to_vec(),
            )
        })
        .collect();
    // Every validator's key is a client here, and a validator holds shares of many leaves: a
    // client that is also a holder of its leaf is left out of its own quorum (it receives
    // with another key).
    for (m, i) in (0..2 * n).map(|m| (m as u64, m % n)) {
        let key = fed.client_key(i);
        let secret = StaticSecret::from([m as u8 + 1; 32]);
        // The epoch now, as a client reads it (the requests go one after the other, and an
        // epoch lasts only a few seconds here).
        let epoch = node_status(&fed.homes[i])
            .await
            .unwrap()
            .chain
            .unwrap()
            .epoch;
        let req = ClientRequest {
            client: MemberId(key.verifying_key().to_bytes()),
            digest: message_digest(format!("issued {m}").as_bytes()),
            epoch,
            nonce: 1000 + m,
            issue_to: Some(PublicKey::from(&secret).to_bytes()),
        }
        .sign(&fed.genesis.chain_id, &key);
        let relay = (i + 1) % n;
        let addr = api::running_api_addr(&fed.homes[relay]).unwrap();
        let out = client
            .sign(addr, &req, Duration::from_secs(120))
            .await
            .unwrap();
        assert!(
            out.signature.is_empty(),
            "the relay cannot sign an issued leaf"
        );
        let bundle: IssueBundle =
            seedfed_protocol::ledger::decode(&hex::decode(out.bundle.as_ref().unwrap()).unwrap())
                .unwrap();
        assert_eq!(bundle.leaf, out.leaf);
        // Only the client's secret opens it.
        assert!(sign_issued(&bundle, &StaticSecret::from([0xee; 32]), &public).is_err());
        let sig = sign_issued(&bundle, &secret, &public).unwrap();
        // The leaf's seed, as the client rebuilt it: for the search of the nodes' files below.
        let opened: Vec<_> = bundle
            .contributions
            .iter()
            .map(|c| reconstruct::open_contribution(&bundle.session, &secret, c).unwrap())
            .collect();
        let commitment = bundle.commitment.decode().unwrap();
        let seed = reconstruct::combine(&bundle.session, &commitment, &opened)
            .unwrap()
            .lms_seed();
        known.push((
            format!("seed of leaf {}", bundle.leaf),
            seed.expose().to_vec(),
        ));
        t.verify_signature(&public_hss, &req.request.digest, &sig)
            .unwrap();
        assert!(
            hbs_lms::verify::<hbs_lms::Sha256_256>(&req.request.digest, &sig, &public_hss).is_ok()
        );
        // Published through the relay; a wrong signature is refused with the reason.
        let (code, why) = match client.publish(addr, out.leaf, &sig[..sig.len() - 1]).await {
            Err(seedfed_node::api::ApiError::Refused { code, reason, .. }) => (code, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(code, 400, "{why}");
        client.publish(addr, out.leaf, &sig).await.unwrap();
    }
    // The ledger records who received each leaf and every published signature.
    let c = wait_chain(&fed.homes[0], 60, "8 issued signatures", |c| {
        c.key.leaves_signed == 2 * n as u64
    })
    .await;
    assert_eq!(c.key.leaves_allocated, 8);
    let (homes, genesis, _dir) = stop(fed).await;
    // No secret the test knows is in any node's log, store, config or keystore, in any
    // encoding (the issued seeds passed through every relay and holder as masked shares).
    let (finds, files) = secrets::find_secrets(&homes, &known);
    assert!(files > 4 * n, "searched only {files} files");
    assert!(finds.is_empty(), "secrets written out: {finds:#?}");
    // The search finds what it looks for: one key, hex-encoded into a file among the homes.
    let canary = homes[0].join("canary.log");
    std::fs::write(&canary, format!("oops {}", hex::encode(&known[n].1))).unwrap();
    let (finds, _) = secrets::find_secrets(&homes, &known);
    assert_eq!(finds.len(), 1, "{finds:?}");
    assert!(finds[0].contains("(hex)") && finds[0].contains("canary.log"));
    std::fs::remove_file(canary).unwrap();
    let st = stored_ledger(&homes[0], &genesis);
    for (leaf, r) in &st.sign_requests {
        assert!(r.issue_to.is_some());
        assert!(
            st.signatures.contains_key(leaf),
            "leaf {leaf} not published"
        );
    }
}

/// Key rotation across processes: a height-5 key (32 leaves, 4 retired by the audits; LMS has
/// no height 6) whose next key opens once fewer than 75% are left. Requests keep arriving, two
/// at a time, until key 1 has signed several: every request gets a signature (no 503 while a
/// key is missing), key 0's leaves are used to the last, then key 1's; the light client, walked
/// along, verifies each under its own key, and the ledgers agree afterwards. Key 0, spent,
/// leaves no share nor tree behind on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_key_runs_out_while_requests_arrive_and_the_next_key_signs_without_a_gap() {
    let mut spec = Spec::new(4);
    spec.key.tree_height = 5;
    spec.key.sector_bits = 1;
    spec.key.rotate_percent = 75;
    let fed = Fed::start(&spec, &[]).await;
    let all: Vec<usize> = (0..4).collect();
    let c = fed.key_generated(&all).await;
    let mut t = light_client(&fed, 0).await;
    let usable = 32 - c.key.leaves_retired;
    let total = usable + 6;
    let keys: Vec<_> = all.iter().map(|i| fed.client_key(*i)).collect();
    let mut requests = Vec::new();
    let mut outcomes: Vec<SignOutcome> = Vec::new();
    let mut m = 0u64;
    while m < total {
        let wave = asks(&all, &keys, m..(m + 2).min(total));
        m += wave.len() as u64;
        let (sent, out) = sign_all(fed.homes.clone(), fed.genesis.chain_id.clone(), wave).await;
        requests.extend(sent);
        outcomes.extend(out);
        // Walk along, so that no checkpoint scrolls out of what the node serves.
        let status = node_status(&fed.homes[0]).await.unwrap().chain.unwrap();
        seedfed_node::chain::light_walk(&mut t, &status.checkpoints).unwrap();
    }
    // Leaves in order: key 0 to its last usable leaf, then key 1.
    let keys_used: Vec<u32> = outcomes.iter().map(|o| split_leaf(o.leaf).0).collect();
    assert_eq!(keys_used.iter().filter(|k| **k == 0).count() as u64, usable);
    assert!(keys_used.windows(2).all(|w| w[0] <= w[1]), "{keys_used:?}");
    assert_eq!(keys_used.last(), Some(&1));
    assert!(
        !t.needs_retired(),
        "the node serves every key's retired leaves"
    );
    let mut leaves = BTreeSet::new();
    for (req, o) in requests.iter().zip(&outcomes) {
        let sig = hex::decode(&o.signature).unwrap();
        let digest = req.request.digest;
        // The light client finds the key (the signature does not name it): key 1 is in
        // force, key 0 kept from before the rotation.
        let key = t.verify_under_any(&digest, &sig).unwrap();
        let public = key.encode_hss().unwrap();
        let (k, q) = split_leaf(o.leaf);
        assert_eq!(u64::from(LmsSignature::decode_hss(&sig).unwrap().q), q);
        assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(&digest, &sig, &public).is_ok());
        assert_eq!(key.id, lms_key_id(&fed, k));
        assert!(leaves.insert(o.leaf), "leaf {} released twice", o.leaf);
    }
    let (homes, genesis, _dir) = stop(fed).await;
    for i in [0, 3] {
        let st = stored_ledger(&homes[i], &genesis);
        assert!(st.older_keys.contains_key(&0) && st.key_state(1).is_some());
        assert_eq!(st.key_state(0).unwrap().leaves_left(&st.key), 0);
        assert!(st.key_state(1).unwrap().endorsed.is_some());
        for (leaf, r) in &st.sign_requests {
            let (k, q) = split_leaf(*leaf);
            assert!(!st.key_state(k).unwrap().retired_leaves().contains(&q));
            let sig = LmsSignature::decode_hss(&st.signatures[leaf]).unwrap();
            st.key_public(k).unwrap().verify(&r.digest, &sig).unwrap();
        }
        assert_eq!(st.sign_requests.len() as u64, total);
    }
    // Key 0 is spent: every node erased its shares and the trees it kept of key 0's sectors;
    // key 1's are still there.
    let (mut key1_held, mut key1_trees) = (0, 0);
    for home in &homes {
        let st = stored_ledger(home, &genesis);
        assert!(st.key_spent(0) && !st.key_spent(1));
        let store = seedfed_node::chain::storage::ChainStore::new(
            seedfed_node::node::open_store(&home.join("data")).unwrap(),
        );
        let held = store.held_index().unwrap();
        for key in st.keys() {
            for (s, r) in &key.sectors {
                let has_held = held.contains(&(*s, r.commitments_root));
                let has_tree = store.tree(*s, &r.root).unwrap().is_some();
                if key.index == 0 {
                    assert!(
                        !has_held && !has_tree,
                        "{home:?} kept key 0's sector {s} (shares {has_held}, tree {has_tree})"
                    );
                } else {
                    key1_held += usize::from(has_held);
                    key1_trees += usize::from(has_tree);
                }
            }
        }
    }
    assert!(key1_held > 0 && key1_trees > 0, "{key1_held} {key1_trees}");
}

/// The LMS identifier of key `k` of the federation's chain.
fn lms_key_id(fed: &Fed, k: u32) -> [u8; 16] {
    let g = fed.genesis.to_ledger().unwrap();
    g.key.layout(&chain_digest(&g.chain_id), k).unwrap().id
}

/// The checkpoint history: with short epochs the ledger's last 16 checkpoints soon leave out
/// the first ones, so a fresh light client cannot walk `/status` from epoch 0's key; it walks
/// the node's stored history (`GET /checkpoints`, page by page) across every DKG rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_light_client_walks_the_whole_checkpoint_history_from_epoch_0() {
    let mut spec = Spec::new(4);
    spec.epochs = seedfed_protocol::ledger::EpochParams {
        dkg_round1_blocks: 3,
        dkg_complaint_blocks: 4,
        epoch_min_blocks: 6,
        checkpoint_attempt_blocks: 10,
    };
    let fed = Fed::start(&spec, &[]).await;
    // Epoch 0's checkpoint key, read while the node still reports that DKG.
    let c = wait_chain(&fed.homes[0], 120, "epoch 0's DKG", |c| {
        c.dkgs.iter().any(|d| d.epoch == 0)
    })
    .await;
    let anchor = c.dkgs.iter().find(|d| d.epoch == 0).unwrap();
    let anchor: [u8; 32] = hex::decode(&anchor.ed25519_group_key)
        .unwrap()
        .try_into()
        .unwrap();
    let fresh = || Trusted::new(chain_digest(&fed.genesis.chain_id), anchor).unwrap();
    let c = wait_chain(&fed.homes[0], 240, "checkpoint 0 gone from /status", |c| {
        c.checkpoints.first().is_some_and(|cp| cp.seq > 0)
    })
    .await;
    // `/status` alone: the walk from epoch 0's key stops at the first missing checkpoint.
    assert!(seedfed_node::chain::light_walk(&mut fresh(), &c.checkpoints).is_err());
    // The stored history, page by page from 0.
    let addr = api::running_api_addr(&fed.homes[0]).unwrap();
    let client = ApiClient::new();
    let mut served = Vec::new();
    for _ in 0..100 {
        let page = client.checkpoints(addr, served.len() as u64).await.unwrap();
        let page = page.expect("the node serves /checkpoints");
        if page.is_empty() {
            break;
        }
        served.extend(page);
    }
    assert!(served.iter().enumerate().all(|(i, c)| c.seq == i as u64));
    let mut t = fresh();
    let walked = seedfed_node::chain::light_walk(&mut t, &served).unwrap();
    assert_eq!(walked.start, 0);
    assert!(
        walked.end > c.checkpoints[0].seq,
        "walked past what /status serves"
    );
    // The key in force at the end is the one the latest checkpoint names as next.
    let last = served.last().unwrap();
    let cp =
        seedfed_protocol::checkpoint::Checkpoint::from_bytes(&hex::decode(&last.bytes).unwrap())
            .unwrap();
    assert_eq!(t.key, cp.next_key);
    drop(stop(fed).await);
}
