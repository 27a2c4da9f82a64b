//! The flood test: a local testnet of 4 validators (separate processes, loopback only) is
//! flooded for a bounded time by fresh identities, each admitted with a valid proof of work,
//! that publish malformed and valid-looking-but-invalid gossip on the consensus and
//! transaction topics, send garbage and expensive block requests, and post invalid
//! transactions and unauthorized sign requests to every node's API (`seedfed_testnet::flood`).
//!
//! What it asserts is what noise cannot change (speed is the bench's, `seedfed-bench flood`):
//! every node keeps deciding heights during the flood and after it; every node rejects the
//! flooders' gossip (`seedfed_gossip_rejected`), and each flooder is penalised (negative gossip
//! score) or cut off at every node; the mempools refuse the flooded transactions and no API
//! takes any; every node's peak resident memory stays under [`RSS_BOUND_MIB`]; the flood stops
//! by itself at its deadline and the flooders disconnect. Bounded: every wait has a deadline,
//! the flood [`FLOOD`] and a count cap.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use seedfed_node::api::ApiClient;
use seedfed_testnet::flood::{observe, FloodPlan, Flooders, Target};
use seedfed_testnet::up::{self, UpArgs};

/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(12);
/// Flooding identities.
const FLOODERS: usize = 3;
/// A generous bound on a node's peak resident memory (a debug build of an idle node sits near
/// 50 MiB; the bound is far above any noise and far below a leak under this flood).
const RSS_BOUND_MIB: u64 = 512;

/// `seedfed` and `seedfed-bootstrap`, next to this package's binary in the target directory.
fn bins() -> (PathBuf, PathBuf) {
    let exe = Path::new(env!("CARGO_BIN_EXE_seedfed-testnet"));
    seedfed_testnet::up::binaries_in(exe.parent().expect("a target directory"))
        .expect("the node binaries, built by the workspace test run")
}

/// Every node's height, once all answer (bounded).
async fn heights(client: &ApiClient, apis: &[std::net::SocketAddr]) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut out = Vec::new();
        for api in apis {
            if let Some(c) = client.status(*api).await.ok().and_then(|s| s.chain) {
                out.push(c.height);
            }
        }
        if out.len() == apis.len() {
            return out;
        }
        assert!(Instant::now() < deadline, "the nodes stopped answering");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invalid_traffic_neither_stalls_consensus_nor_grows_memory() {
    let (node_bin, boot_bin) = bins();
    let dir = tempfile::tempdir().unwrap();
    let args = UpArgs {
        timeout: 60,
        ..UpArgs::for_bench(4, dir.path().to_path_buf(), None)
    };
    let net = up::start_with(&args, dir.path(), &node_bin, &boot_bin)
        .await
        .unwrap();
    let client = ApiClient::new();
    let rows: Vec<_> = net.rows.iter().filter(|r| r.name != "bootstrap").collect();
    let apis: Vec<_> = rows.iter().map(|r| r.api).collect();
    // Consensus runs before the flood.
    let deadline = Instant::now() + Duration::from_secs(30);
    while heights(&client, &apis).await.iter().any(|h| *h < 2) {
        assert!(
            Instant::now() < deadline,
            "no heights decided before the flood"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stale_keys = rows
        .iter()
        .map(|r| up::client_key(&net.dir.join(&r.name)).unwrap())
        .collect();
    let targets = rows
        .iter()
        .map(|r| Target {
            name: r.name.clone(),
            api: r.api,
            p2p: r.p2p.parse().unwrap(),
        })
        .collect();
    let plan = FloodPlan {
        chain_id: "seedfed-local".into(),
        difficulty: 8,
        identities: FLOODERS,
        duration: FLOOD,
        gossip_per_s: 50,
        requests_per_s: 50,
        api_per_s: 10,
        max_per_kind: 2_000,
        stale_keys,
        admission_secs: 30,
    };
    let flooders = Flooders::prepare(plan, targets).await.unwrap();
    let ids: Vec<String> = flooders.peer_ids().iter().map(|p| p.to_string()).collect();
    let mut before = Vec::new();
    for api in &apis {
        before.push(observe::node_view(&client, *api, &ids).await.unwrap());
    }

    let started = Instant::now();
    let flood = tokio::spawn(flooders.run());
    // Near the end of the flood: what every node makes of it.
    tokio::time::sleep(FLOOD - Duration::from_secs(2)).await;
    let mut during = Vec::new();
    for api in &apis {
        during.push(
            observe::node_view(&client, *api, &ids)
                .await
                .expect("a node stopped answering during the flood"),
        );
    }
    let report = tokio::time::timeout(FLOOD + Duration::from_secs(20), flood)
        .await
        .expect("the flood did not stop by itself")
        .unwrap();
    let took = started.elapsed();
    println!("flood report: {report:?}");

    // The flood stopped by itself, around its deadline, after sending on every channel.
    assert!(took < FLOOD + Duration::from_secs(15), "{took:?}");
    assert!(report.gossip.sent > 100, "{report:?}");
    assert!(report.requests.sent > 100, "{report:?}");
    assert!(report.api.sent > 20, "{report:?}");
    // No API took a flooded transaction or sign request.
    assert_eq!(report.api.accepted, 0, "{report:?}");

    for (i, (b, d)) in before.iter().zip(&during).enumerate() {
        let name = &rows[i].name;
        println!("{name}: before {b:?}\n{name}: during {d:?}");
        // Consensus kept deciding during the flood (a 200 ms block interval decides dozens
        // of heights in that time; 5 cannot be noise).
        assert!(d.height >= b.height + 5, "{name} stalled: {b:?} -> {d:?}");
        // The flooders' gossip was rejected, and each flooder penalised or cut off.
        assert!(d.gossip_rejected > b.gossip_rejected, "{name}: {d:?}");
        assert_eq!(
            d.flooders_penalised + (FLOODERS - d.flooders_connected.min(FLOODERS)),
            FLOODERS,
            "{name}: a flooder kept a clean score: {d:?}"
        );
        // The mempool refused the flooded transactions.
        assert!(d.mempool_refused > b.mempool_refused, "{name}: {d:?}");
    }

    // Memory stayed bounded on every process.
    for (name, pid) in net.processes() {
        let m = seedfed_testnet::proc_memory::of(*pid).unwrap();
        println!("{name}: {m}");
        assert!(
            m.peak_kib < RSS_BOUND_MIB * 1024,
            "{name}'s peak resident memory {m} is over {RSS_BOUND_MIB} MiB"
        );
    }

    // After the flood: the flooders are gone and consensus goes on.
    let after_flood = heights(&client, &apis).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut connected = 0;
        for api in &apis {
            connected += observe::node_view(&client, *api, &ids)
                .await
                .map_or(0, |v| v.flooders_connected);
        }
        let now = heights(&client, &apis).await;
        if connected == 0 && now.iter().zip(&after_flood).all(|(n, a)| *n >= a + 2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the flood: {connected} flooder connections left, heights {after_flood:?} -> {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    net.check_alive().unwrap();
    net.stop();
}
