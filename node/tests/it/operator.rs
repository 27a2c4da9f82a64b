//! What an operator sees and does on a running federation of real `seedfed` processes: the
//! chain's Prometheus metrics scraped over HTTP from `/metrics`, parsed and checked against
//! `/status`; the Grafana dashboard in `docs/` names only metrics the node exports; and `seedfed
//! tx` transfers stake and exits through the CLI, with clear errors for bad input.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use seedfed_node::api;
use seedfed_node::chain::metrics::{CAUSES, EVIDENCE_KINDS};

/// One sample of the exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A tolerant parser of the Prometheus/OpenMetrics text exposition: `# TYPE` lines give each
/// family's type; every other non-comment line is `name{k="v",...} value [timestamp]`.
fn parse_exposition(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            types.insert(
                it.next().unwrap().to_string(),
                it.next().unwrap().to_string(),
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.find('}') {
            Some(end) => (&line[..=end], line[end + 1..].trim()),
            None => line.split_once(' ').unwrap(),
        };
        let value: f64 = value.split_whitespace().next().unwrap().parse().unwrap();
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.trim_end_matches('}');
                let labels = body
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (types, samples)
}

fn one(samples: &[Sample], name: &str) -> f64 {
    let v: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
    assert_eq!(v.len(), 1, "{name}: {v:?}");
    v[0].value
}

fn labelled(samples: &[Sample], name: &str, label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (s.labels[label].clone(), s.value))
        .collect()
}

async fn scrape(home: &Path) -> (BTreeMap<String, String>, Vec<Sample>) {
    let addr = api::running_api_addr(home).unwrap();
    let (code, text) = api::get_text(addr, "/metrics").await.unwrap();
    assert_eq!(code, 200, "{text}");
    parse_exposition(&text)
}

/// The metric names (`seedfed_…`) a PromQL expression uses.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("seedfed_"))
        .map(str::to_string)
        .collect()
}

/// Every `expr` in a Grafana dashboard, at any depth.
fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

fn seedfed(home: &Path, pass: &Path, args: &[&str]) -> Output {
    Command::new(seedfed_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .arg("--passphrase-file")
        .arg(pass)
        .env_remove("SEEDFED_PASSPHRASE")
        .output()
        .unwrap()
}

fn failed_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "expected {needle:?} in: {err}"
    );
}

fn succeeded(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_dashboard_and_transactions_on_a_running_federation() {
    let fed = Fed::start(&Spec::new(3), &[]).await;
    let home = &fed.homes[0];
    let before = wait_chain(home, 60, "height 5", |c| c.height >= 5).await;
    // Ready: the driver loaded its keys (agent state, held-share index), live, not syncing.
    assert!(before.keys_loaded);
    let api_addr = api::running_api_addr(home).unwrap();
    eventually(30, "/ready to answer 200", || async {
        let (code, _) = api::get_text(api_addr, "/ready").await.unwrap();
        (code == 200).then_some(())
    })
    .await;

    // Peers by role: the two other validators (and the bootstrap node as `other`).
    let (types, samples) = eventually(30, "both other validators as peers", || async {
        let (types, samples) = scrape(home).await;
        let peers = labelled(&samples, "seedfed_peers", "role");
        (peers.get("validator") == Some(&2.0)).then_some((types, samples))
    })
    .await;
    let after = node_status(home).await.unwrap().chain.unwrap();

    // Every chain family is there, with its type.
    for f in seedfed_node::chain::metrics::FAMILIES {
        assert!(types.contains_key(*f), "{f} missing from {types:?}");
    }
    for (f, t) in [
        ("seedfed_chain_height", "gauge"),
        ("seedfed_commit_latency_seconds", "histogram"),
        ("seedfed_sign_latency_seconds", "histogram"),
        ("seedfed_evidence", "counter"),
        ("seedfed_reconstruction_failures", "counter"),
        ("seedfed_key_leaves_left", "gauge"),
    ] {
        assert_eq!(types[f], t, "{f}");
    }
    // The tip matches `/status` around the scrape.
    let height = one(&samples, "seedfed_chain_height");
    assert!(
        (before.height as f64..=after.height as f64).contains(&height),
        "{height} not in {}..={}",
        before.height,
        after.height
    );
    assert!(one(&samples, "seedfed_consensus_round") >= 0.0);
    // Consensus decided heights here: commit latency has samples, its buckets are cumulative
    // and end at the count.
    let count = one(&samples, "seedfed_commit_latency_seconds_count");
    assert!(count >= 1.0, "{count}");
    assert!(one(&samples, "seedfed_commit_latency_seconds_sum") > 0.0);
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == "seedfed_commit_latency_seconds_bucket")
        .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value))
        .collect();
    assert!(buckets
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
    // No sign request yet.
    assert_eq!(one(&samples, "seedfed_sign_latency_seconds_count"), 0.0);
    // The DKG phase is one of the documented values.
    let phase = one(&samples, "seedfed_dkg_phase");
    assert!([0.0, 1.0, 2.0, 3.0].contains(&phase), "{phase}");
    // Leaves per key: one series per key on the ledger, never more than the key has.
    let left = labelled(&samples, "seedfed_key_leaves_left", "key");
    let keys: BTreeSet<String> = after.key.keys.iter().map(|k| k.index.to_string()).collect();
    assert_eq!(left.keys().cloned().collect::<BTreeSet<_>>(), keys);
    assert!(left
        .values()
        .all(|v| *v >= 0.0 && *v <= after.key.leaves_total as f64));
    // Fixed label sets, all zero on an honest federation.
    let evidence = labelled(&samples, "seedfed_evidence_total", "kind");
    assert_eq!(evidence.len(), EVIDENCE_KINDS.len(), "{evidence:?}");
    assert!(evidence.values().all(|v| *v == 0.0), "{evidence:?}");
    let failures = labelled(&samples, "seedfed_reconstruction_failures_total", "cause");
    assert_eq!(failures.len(), CAUSES.len(), "{failures:?}");
    assert!(one(&samples, "seedfed_mempool_transactions") >= 0.0);

    // The dashboard names only metrics this node exports.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/seedfed.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() >= 10, "{} queries", all.len());
    let exported: BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    for e in &all {
        let names = metric_names(e);
        assert!(!names.is_empty(), "query {e:?} names no seedfed metric");
        for n in names {
            assert!(
                exported.contains(n.as_str()),
                "{n} (in {e:?}) is not exported"
            );
        }
    }

    // `seedfed status --watch` without a terminal: progress lines on stderr, nothing on stdout.
    let out = Command::new(seedfed_bin())
        .arg("--home")
        .arg(home)
        .args(["status", "--watch", "--watch-secs", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("height ") && err.contains("sectors"),
        "{err}"
    );

    // `seedfed tx transfer`: stake moves, the result is printed when decided.
    let pass = &fed.pass;
    let to = fed.hex(1);
    let out = seedfed(
        home,
        pass,
        &["tx", "transfer", "--to", &to, "--amount", "7", "--json"],
    );
    let v = succeeded(&out);
    assert_eq!(v["kind"], "transfer");
    assert!(v["height"].as_u64().unwrap() > after.height);
    assert_eq!(v["account"]["stake"], 93);
    assert_eq!(v["recipient"]["stake"], 107);
    // The recipient may be named by its peer id too.
    let peer2 = fed.genesis.validators[2].peer_id.clone();
    let v = succeeded(&seedfed(
        home,
        pass,
        &["tx", "transfer", "--to", &peer2, "--amount", "3", "--json"],
    ));
    assert_eq!(v["account"]["stake"], 90);
    assert_eq!(v["recipient"]["stake"], 103);
    // Every node's ledger agrees.
    let stakes = |c: &seedfed_node::chain::ChainStatus| {
        c.validators
            .iter()
            .map(|v| (v.id.clone(), v.stake))
            .collect::<BTreeMap<_, _>>()
    };
    let want: BTreeMap<String, u64> = [(fed.hex(0), 90), (fed.hex(1), 107), (fed.hex(2), 103)]
        .into_iter()
        .collect();
    wait_chain(&fed.homes[2], 30, "the transfers", |c| stakes(c) == want).await;

    // Bad input: clear errors, and nothing moves.
    failed_with(
        &seedfed(
            home,
            pass,
            &["tx", "transfer", "--to", &to, "--amount", "0"],
        ),
        "--amount must be at least 1",
    );
    failed_with(
        &seedfed(
            home,
            pass,
            &["tx", "transfer", "--to", "bob", "--amount", "1"],
        ),
        "neither a member id",
    );
    failed_with(
        &seedfed(
            home,
            pass,
            &["tx", "transfer", "--to", &"ab".repeat(32), "--amount", "1"],
        ),
        "is not a member of the ledger",
    );
    failed_with(
        &seedfed(
            home,
            pass,
            &["tx", "transfer", "--to", &to, "--amount", "91"],
        ),
        "insufficient stake",
    );
    failed_with(
        &seedfed(
            home,
            pass,
            &["tx", "transfer", "--to", &fed.hex(0), "--amount", "1"],
        ),
        "own identity",
    );
    failed_with(&seedfed(home, pass, &["tx", "exit"]), "--yes");
    let c = node_status(home).await.unwrap().chain.unwrap();
    assert_eq!(stakes(&c), want);

    // `seedfed tx exit`: node 2 leaves; the others go on deciding.
    let v = succeeded(&seedfed(
        &fed.homes[2],
        pass,
        &["tx", "exit", "--yes", "--json"],
    ));
    assert_eq!(v["kind"], "exit");
    assert_eq!(v["account"]["status"], "exited");
    assert_eq!(v["account"]["validator"], false);
    let h = v["height"].as_u64().unwrap();
    let c = wait_chain(home, 30, "blocks after the exit", |c| c.height > h + 3).await;
    assert_eq!(c.validators.len(), 2, "{:?}", c.validators);
}
