//! The node's local HTTP API: `/status` (JSON), `/metrics` (Prometheus text from the one
//! registry shared with libp2p's metrics), `/health` (liveness: a recent block) and `/ready`
//! (keys loaded, live, not syncing), and `POST /tx` to submit a signed transaction (202 once it
//! is in the mempool and gossiped; 413, 429, 503 or 400 with the reason). Every request first
//! passes [`access::guard`]: loopback only by default, `Host` checked against DNS rebinding, and
//! a bearer token when `[api] token_file` is set; `seedfed status` and [`ApiClient`] read it.
//! `GET /` is the status page ([`page`]), which needs no token (it holds no data; it asks for
//! the token when `/status` wants one); [`text`] is `seedfed status`'s human form of a status.
//! [`client`] is the other end. Endpoints in detail: `docs/operator-guide.md`.

pub mod access;
pub mod client;
pub mod headline;
pub mod page;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper::body::Bytes;
use prometheus_client::registry::Registry;
use seedfed_protocol::ledger::{self, SignedTx};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::blame::BlameEvidence;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::chain::mempool::{self, Full as PoolFull};
use crate::chain::{
    AccountQuery, BlameSubmission, BundleQuery, ChainStatus, CheckpointsQuery, PublishSubmission,
    SignRefused, SignSubmission, Submission, TxQuery, TxRejected, TxSubmission,
};
use crate::network::{NetworkHandle, NetworkStatus};

pub use access::{Access, AccessError, ApiToken};
pub use client::{fetch_status, get_text, post_bytes, running_api_addr, ApiClient, ApiError};

/// File in the home directory holding the API's actual bound address while the node runs.
pub const API_ADDR_FILE: &str = "api.addr";

/// What `/status` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Software version.
    pub version: String,
    /// `node` or `bootstrap`.
    pub role: String,
    /// The network's view.
    pub network: NetworkStatus,
    /// The chain (absent on a bootstrap node or without validators in the genesis).
    #[serde(default)]
    pub chain: Option<ChainStatus>,
    /// The headline ([`headline::headline`]) at the time of the answer.
    #[serde(default)]
    pub headline: Option<headline::Headline>,
}

/// Shared state of the API server.
#[derive(Clone)]
pub struct ApiState {
    /// The network.
    pub network: NetworkHandle,
    /// Metrics registry.
    pub registry: Arc<Registry>,
    /// `node` or `bootstrap`.
    pub role: &'static str,
    /// The chain driver's status, if one runs.
    pub chain: Option<watch::Receiver<ChainStatus>>,
    /// Where `POST /tx` and `POST /sign` hand their requests to the chain driver, if one runs.
    pub submit: Option<mpsc::Sender<Submission>>,
}

/// Largest `POST /tx` body accepted (the gossip message cap).
pub const MAX_TX_BODY: usize = 1 << 20;
/// Largest `POST /txs` body accepted.
pub const MAX_TXS_BODY: usize = 4 << 20;
/// Most transactions in one `POST /txs` (as many as one `tx` gossip message carries).
pub const MAX_TXS_PER_REQUEST: usize = crate::chain::wire::MAX_GOSSIP_TXS;

/// The API's routes, behind the access check `access` ([`access::guard`]).
pub fn router(state: ApiState, access: Access) -> Router {
    Router::new()
        .route("/", get(page::serve))
        .route("/status", get(status))
        .route("/sign", post(sign))
        .route("/sign/publish", post(publish))
        .route("/sign/blame", post(blame))
        .route("/sign/bundle/{leaf}", get(bundle))
        .route("/checkpoints", get(checkpoints))
        .route("/account/{id}", get(account))
        .route("/tx/{id}", get(tx_state))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route(
            "/tx",
            post(submit_tx).layer(DefaultBodyLimit::max(MAX_TX_BODY)),
        )
        .route(
            "/txs",
            post(submit_txs).layer(DefaultBodyLimit::max(MAX_TXS_BODY)),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
}

async fn status(State(s): State<ApiState>) -> Result<Json<StatusReport>, StatusCode> {
    let network = s
        .network
        .status()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let mut report = StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        role: s.role.to_string(),
        network,
        chain: s.chain.as_ref().map(|c| c.borrow().clone()),
        headline: None,
    };
    let now = crate::chain::unix_ms(std::time::SystemTime::now());
    report.headline = Some(headline::headline(&report, now));
    Ok(Json(report))
}

async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "metrics encoding failed".to_string(),
        ),
    }
}

/// `/health`: liveness. 200 while the network task runs and, on a node with a chain, a block
/// was decided within the chain's liveness bound; 503 with the reason otherwise.
async fn health(State(s): State<ApiState>) -> (StatusCode, String) {
    probe(&s, liveness).await
}

/// `/ready`: readiness ([`readiness`]): keys loaded, live, and not syncing toward a peer that is
/// ahead; 503 with the reason otherwise.
async fn ready(State(s): State<ApiState>) -> (StatusCode, String) {
    probe(&s, readiness).await
}

async fn probe(
    s: &ApiState,
    check: fn(&ChainStatus, u64) -> Result<(), String>,
) -> (StatusCode, String) {
    if s.network.status().await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "network stopped\n".into());
    }
    let Some(chain) = &s.chain else {
        return (StatusCode::OK, "ok\n".into());
    };
    let now = crate::chain::unix_ms(std::time::SystemTime::now());
    match check(&chain.borrow(), now) {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

/// Whether the chain is live at `now_unix_ms`: its last block is within its liveness bound.
pub fn liveness(chain: &ChainStatus, now_unix_ms: u64) -> Result<(), String> {
    let age = now_unix_ms.saturating_sub(chain.last_block_unix_ms);
    if age > chain.liveness_bound_ms {
        return Err(format!(
            "no block decided for {} s (bound {} s)",
            age / 1000,
            chain.liveness_bound_ms / 1000
        ));
    }
    Ok(())
}

/// Whether the node is ready at `now_unix_ms`: its keys loaded, live and not syncing.
pub fn readiness(chain: &ChainStatus, now_unix_ms: u64) -> Result<(), String> {
    if !chain.keys_loaded {
        return Err(
            "keys not loaded: the chain driver has not loaded its key shares yet".to_string(),
        );
    }
    liveness(chain, now_unix_ms)?;
    if chain.syncing {
        return Err(format!(
            "syncing: a peer is past our height {}",
            chain.height
        ));
    }
    Ok(())
}

/// A handler's answer: the status and a text or JSON body.
type Answer = (StatusCode, String);

fn driver_stopped() -> Answer {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the chain driver stopped\n".into(),
    )
}

/// The chain driver's submission queue, or the 503 a node without a chain answers.
fn chain_queue(s: &ApiState) -> Result<&mpsc::Sender<Submission>, Answer> {
    s.submit.as_ref().ok_or_else(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node runs no chain\n".into(),
        )
    })
}

/// Sends the driver the submission `make` builds around a reply channel; returns where its
/// answer will come (a dropped reply means the driver stopped).
async fn ask<T>(
    submit: &mpsc::Sender<Submission>,
    make: impl FnOnce(oneshot::Sender<T>) -> Submission,
) -> Result<oneshot::Receiver<T>, Answer> {
    let (reply, answer) = oneshot::channel();
    submit
        .send(make(reply))
        .await
        .map_err(|_| driver_stopped())?;
    Ok(answer)
}

async fn submit_tx(State(s): State<ApiState>, body: Bytes) -> Answer {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let tx = match ledger::decode::<SignedTx>(&body) {
        Ok(tx) => tx,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("malformed transaction: {e}\n"),
            )
        }
    };
    if let Err(e) = mempool::check_size(&tx.tx.body, body.len()) {
        return refused(&e);
    }
    let make = |reply| {
        Submission::Tx(TxSubmission {
            txs: vec![tx],
            reply,
        })
    };
    let verdict = match ask(submit, make).await {
        Ok(v) => v,
        Err(a) => return a,
    };
    match verdict.await.map(|v| v.into_iter().next()) {
        Ok(Some(Ok(()))) => (StatusCode::ACCEPTED, "accepted\n".into()),
        Ok(Some(Err(e))) => refused(&e),
        Ok(None) | Err(_) => driver_stopped(),
    }
}

/// The answer to `POST /txs`: how many were accepted, and each refused one with its index in
/// the request, the status `POST /tx` would have given it and the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBatchVerdict {
    /// Transactions taken into the mempool (and gossiped together).
    pub accepted: usize,
    /// The others, in request order.
    pub refused: Vec<TxBatchRefusal>,
}

/// One refused transaction of a `POST /txs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBatchRefusal {
    /// Its index in the request.
    pub index: usize,
    /// What `POST /tx` would have answered.
    pub code: u16,
    /// Why.
    pub reason: String,
}

/// `POST /txs`: many signed transactions in one request (body:
/// `ledger::encode(&Vec<SignedTx>)`, 1 to [`MAX_TXS_PER_REQUEST`]), each checked as `POST /tx`
/// checks one; the accepted ones travel together in as few gossip messages as fit. 200 with a
/// JSON [`TxBatchVerdict`] once the driver has judged every one; 400 if the body is malformed
/// or holds no or too many transactions.
async fn submit_txs(State(s): State<ApiState>, body: Bytes) -> Answer {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let txs = match ledger::decode::<Vec<SignedTx>>(&body) {
        Ok(txs) => txs,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("malformed transactions: {e}\n"),
            )
        }
    };
    if txs.is_empty() || txs.len() > MAX_TXS_PER_REQUEST {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "{} transactions in one request (1 to {MAX_TXS_PER_REQUEST})\n",
                txs.len()
            ),
        );
    }
    // Sizes first: an oversized one is refused here, the rest go on.
    let mut verdict = TxBatchVerdict::default();
    let mut sized = Vec::with_capacity(txs.len());
    let mut index = Vec::with_capacity(txs.len());
    for (i, tx) in txs.into_iter().enumerate() {
        match mempool::check_size(&tx.tx.body, ledger::encode(&tx).len()) {
            Ok(()) => {
                sized.push(tx);
                index.push(i);
            }
            Err(e) => verdict.refused.push(refusal(i, &e)),
        }
    }
    if !sized.is_empty() {
        let make = |reply| Submission::Tx(TxSubmission { txs: sized, reply });
        let answer = match ask(submit, make).await {
            Ok(a) => a,
            Err(a) => return a,
        };
        let Ok(verdicts) = answer.await else {
            return driver_stopped();
        };
        for (i, v) in index.into_iter().zip(verdicts) {
            match v {
                Ok(()) => verdict.accepted += 1,
                Err(e) => verdict.refused.push(refusal(i, &e)),
            }
        }
        verdict.refused.sort_by_key(|r| r.index);
    }
    match serde_json::to_string(&verdict) {
        Ok(json) => (StatusCode::OK, json),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

fn refusal(index: usize, e: &TxRejected) -> TxBatchRefusal {
    let (code, reason) = refused(e);
    TxBatchRefusal {
        index,
        code: code.as_u16(),
        reason: reason.trim_end().to_string(),
    }
}

/// How long `POST /sign` waits for the signature unless the query says `?wait_secs=N`.
pub const SIGN_WAIT: Duration = Duration::from_secs(300);

/// `POST /sign?wait_secs=N`: a client-signed request (`ledger::SignedRequest`, canonical
/// encoding) to relay; answers with the published signature (200, JSON
/// [`SignOutcome`](crate::chain::SignOutcome)) or why not: 400 (malformed, or the ledger refuses
/// it, with the reason), 409 (already waiting here), 429 (too many waiting), 503 (no chain, or
/// no key can sign now: try later), 504 (not signed within the wait; the request stays relayed
/// and its signature still lands on the ledger).
async fn sign(
    State(s): State<ApiState>,
    query: axum::extract::Query<SignQuery>,
    body: Bytes,
) -> (StatusCode, String) {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let request = match ledger::decode::<ledger::SignedRequest>(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("malformed sign request: {e}\n"),
            )
        }
    };
    let wait = query
        .wait_secs
        .map_or(SIGN_WAIT, |w| Duration::from_secs(w.min(3600)));
    let make = |reply| Submission::Sign(SignSubmission { request, reply });
    let answer = match ask(submit, make).await {
        Ok(a) => a,
        Err(a) => return a,
    };
    match tokio::time::timeout(wait, answer).await {
        Ok(Ok(Ok(outcome))) => (
            StatusCode::OK,
            serde_json::to_string(&outcome).unwrap_or_default(),
        ),
        Ok(Ok(Err(e))) => {
            let code = match e {
                SignRefused::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
                SignRefused::Duplicate => StatusCode::CONFLICT,
                SignRefused::Ledger(_) => StatusCode::BAD_REQUEST,
                SignRefused::NoKey(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (code, format!("{e}\n"))
        }
        Ok(Err(_)) => driver_stopped(),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "not signed within {} s; the request stays relayed\n",
                wait.as_secs()
            ),
        ),
    }
}

/// `POST /sign/publish`: a signature a client made with an issued leaf (body: the canonical
/// encoding of `(leaf, signature)`), checked as the ledger will and published by this node:
/// 202, or 400 with the reason.
async fn publish(State(s): State<ApiState>, body: Bytes) -> Answer {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let (leaf, signature) = match ledger::decode::<(u64, Vec<u8>)>(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed body: {e}\n")),
    };
    let make = |reply| {
        Submission::Publish(PublishSubmission {
            leaf,
            signature,
            reply,
        })
    };
    match ask(submit, make).await {
        Err(a) => a,
        Ok(answer) => match answer.await {
            Ok(Ok(())) => (StatusCode::ACCEPTED, "published\n".into()),
            Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
            Err(_) => driver_stopped(),
        },
    }
}

/// `POST /sign/blame`: a key issuance client's evidence against a contribution in its bundle
/// (body: the canonical encoding of `(leaf, BlameEvidence)`, from `issue::blame_issued`),
/// judged as the ledger will and submitted by this node, the leaf's relay: 202 with the
/// members it convicts (JSON list of hex ids), or 400 with the reason.
async fn blame(State(s): State<ApiState>, body: Bytes) -> Answer {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let (leaf, evidence) = match ledger::decode::<(u64, BlameEvidence)>(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed body: {e}\n")),
    };
    let make = |reply| {
        Submission::Blame(BlameSubmission {
            leaf,
            evidence: Box::new(evidence),
            reply,
        })
    };
    match ask(submit, make).await {
        Err(a) => a,
        Ok(answer) => match answer.await {
            Ok(Ok(convicted)) => (
                StatusCode::ACCEPTED,
                serde_json::to_string(&convicted).unwrap_or_default(),
            ),
            Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
            Err(_) => driver_stopped(),
        },
    }
}

/// `GET /sign/bundle/{leaf}`: the current attempt's bundle of a leaf issued to a client
/// through this node (JSON `{"leaf", "bundle"}`, the bundle's canonical encoding in hex); 404
/// while none is ready (contributions missing, or an attempt whose members dispute their
/// masks: the next attempt's comes), 400 if the leaf is not one this node relays for issuance.
async fn bundle(
    State(s): State<ApiState>,
    axum::extract::Path(leaf): axum::extract::Path<u64>,
) -> Answer {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let make = |reply| Submission::Bundle(BundleQuery { leaf, reply });
    match ask(submit, make).await {
        Err(a) => a,
        Ok(answer) => match answer.await {
            Ok(Ok(Some(b))) => (
                StatusCode::OK,
                serde_json::json!({ "leaf": leaf, "bundle": hex::encode(ledger::encode(&b)) })
                    .to_string(),
            ),
            Ok(Ok(None)) => (
                StatusCode::NOT_FOUND,
                format!("no bundle of leaf {leaf} ready yet\n"),
            ),
            Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
            Err(_) => driver_stopped(),
        },
    }
}

/// The query of `GET /checkpoints`.
#[derive(Debug, Deserialize)]
struct CheckpointsParams {
    from: Option<u64>,
}

/// `GET /checkpoints?from=N`: the signed checkpoints this node stored, from sequence number
/// `N` (default 0), at most 256 (page on from the last one's `seq + 1`), each with the retired
/// leaves of the key it names (JSON list of `CheckpointInfo`). `/status` carries only the
/// ledger's last few; a light client walks the whole chain through this. 503 without a chain.
async fn checkpoints(
    State(s): State<ApiState>,
    query: axum::extract::Query<CheckpointsParams>,
) -> (StatusCode, String) {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let from = query.from.unwrap_or(0);
    let make = |reply| Submission::Checkpoints(CheckpointsQuery { from, reply });
    match ask(submit, make).await {
        Err(a) => a,
        Ok(answer) => match answer.await {
            Ok(Ok(list)) => (
                StatusCode::OK,
                serde_json::to_string(&list).unwrap_or_default(),
            ),
            Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            Err(_) => driver_stopped(),
        },
    }
}

/// A member named by its hex Ed25519 key (64 digits) or its libp2p peer id.
pub fn parse_member(s: &str) -> Result<MemberId, String> {
    let s = s.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).map_err(|e| e.to_string())?;
        return Ok(MemberId(b));
    }
    let peer: libp2p::PeerId = s
        .parse()
        .map_err(|_| format!("{s:?} is neither a member id (64 hex digits) nor a peer id"))?;
    crate::chain::member_of(&peer).ok_or_else(|| format!("peer id {s} is not an Ed25519 identity"))
}

/// `GET /account/{id}` (`id`: hex member id or peer id): the account's status, stake, ledger
/// nonce and the nonce its next transaction should carry (JSON [`AccountInfo`]); 400 for a
/// malformed id, 404 for no such member, 503 without a chain.
async fn account(
    State(s): State<ApiState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> (StatusCode, String) {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let member = match parse_member(&id) {
        Ok(m) => m,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let make = |reply| Submission::Account(AccountQuery { member, reply });
    match ask(submit, make).await {
        Err(a) => a,
        Ok(answer) => match answer.await {
            Ok(Some(info)) => (
                StatusCode::OK,
                serde_json::to_string(&info).unwrap_or_default(),
            ),
            Ok(None) => (
                StatusCode::NOT_FOUND,
                format!(
                    "{} is not a member of the ledger\n",
                    hex::encode(member.as_bytes())
                ),
            ),
            Err(_) => driver_stopped(),
        },
    }
}

/// `GET /tx/{id}` (`id`: the transaction's digest, 64 hex digits): where a transaction
/// submitted through this node stands (JSON [`TxState`]: `pending`, `decided` with its height,
/// `dropped` with the ledger's reason, `replaced`, or `unknown`); 400 for a malformed id.
async fn tx_state(
    State(s): State<ApiState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> (StatusCode, String) {
    let submit = match chain_queue(&s) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let mut digest = [0u8; 32];
    if hex::decode_to_slice(id.trim(), &mut digest).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            "a transaction id is 64 hex digits\n".into(),
        );
    }
    let make = |reply| Submission::TxState(TxQuery { id: digest, reply });
    match ask(submit, make).await {
        Err(a) => a,
        Ok(answer) => match answer.await {
            Ok(state) => (
                StatusCode::OK,
                serde_json::to_string(&state).unwrap_or_default(),
            ),
            Err(_) => driver_stopped(),
        },
    }
}

/// The query of `POST /sign`.
#[derive(Debug, Deserialize)]
struct SignQuery {
    wait_secs: Option<u64>,
}

/// The answer to a refused transaction: its reason, with a status that says whether sending
/// it again can help (429 and 503: later; 413 and 400: not as it is).
fn refused(e: &TxRejected) -> (StatusCode, String) {
    let code = match e {
        TxRejected::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        TxRejected::Full(PoolFull::AuthorTxs(_) | PoolFull::AuthorBytes(_)) => {
            StatusCode::TOO_MANY_REQUESTS
        }
        TxRejected::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
        TxRejected::NonceTaken { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    (code, format!("{e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(last_block_unix_ms: u64, syncing: bool) -> ChainStatus {
        ChainStatus {
            height: 7,
            last_block_unix_ms,
            liveness_bound_ms: 30_000,
            syncing,
            keys_loaded: true,
            ..ChainStatus::default()
        }
    }

    #[test]
    fn health_means_a_recent_block_and_ready_means_keys_loaded_and_not_syncing() {
        // Before: `/health` answered 200 whenever the network task ran, stalled chain or not.
        let now = 1_000_000;
        assert_eq!(liveness(&chain(now - 29_000, false), now), Ok(()));
        let stalled = liveness(&chain(now - 31_000, false), now).unwrap_err();
        assert!(stalled.contains("no block decided for 31 s"), "{stalled}");
        assert_eq!(readiness(&chain(now - 1_000, false), now), Ok(()));
        let syncing = readiness(&chain(now - 1_000, true), now).unwrap_err();
        assert!(syncing.contains("syncing"), "{syncing}");
        // Live and syncing is healthy but not ready; stalled is neither.
        assert_eq!(liveness(&chain(now - 1_000, true), now), Ok(()));
        assert!(readiness(&chain(now - 31_000, false), now).is_err());
        // Live and synced but the driver has not loaded its keys (the status before its
        // first): not ready.
        let mut loading = chain(now - 1_000, false);
        loading.keys_loaded = false;
        let keys = readiness(&loading, now).unwrap_err();
        assert!(keys.contains("keys not loaded"), "{keys}");
        assert!(readiness(&ChainStatus::default(), now).is_err());
        // A clock that went backwards is no stall.
        assert_eq!(liveness(&chain(now + 5_000, false), now), Ok(()));
    }
}
