//! The client side of the local API: [`ApiClient`] (keeps connections open, sends `Host` and
//! the bearer token), the address file a running node leaves in its home, and [`ApiError`],
//! what `seedfed`'s subcommands and the testnet tools report when a node cannot answer.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use seedfed_protocol::ledger::{self, SignedTx};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::blame::BlameEvidence;
use serde::Deserialize;
use thiserror::Error;

use super::{ApiToken, StatusReport, TxBatchVerdict, API_ADDR_FILE};
use crate::chain::{AccountInfo, CheckpointInfo, SignOutcome, TxState};
use crate::config::{Config, CONFIG_FILE};

/// Why the status could not be read.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No address known.
    #[error("no running node found for home {0} (is `seedfed run` running?)")]
    NotRunning(String),
    /// Address file is invalid.
    #[error("invalid API address {0:?}")]
    BadAddress(String),
    /// Connection or protocol failure.
    #[error("cannot reach the node's API at {addr}: {reason}")]
    Unreachable {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The API wants a bearer token this client lacks or has wrong.
    #[error(
        "the node's API at {addr} refused the request: it needs the bearer token of its \
         `[api] token_file` (set `token_file` in this home's config.toml to the same file)"
    )]
    Unauthorized {
        /// The address.
        addr: String,
    },
    /// The home's API token cannot be used.
    #[error("cannot use the API token of this home: {0}")]
    Token(String),
    /// The node refused a submitted transaction or sign request.
    #[error("the node at {addr} refused the request (HTTP {code}): {reason}")]
    Refused {
        /// The address.
        addr: String,
        /// HTTP status.
        code: u16,
        /// The node's reason.
        reason: String,
    },
}

/// The API address of the node running in `home` (from the address file it writes).
pub fn running_api_addr(home: &Path) -> Result<SocketAddr, ApiError> {
    let text = std::fs::read_to_string(home.join(API_ADDR_FILE))
        .map_err(|_| ApiError::NotRunning(home.display().to_string()))?;
    text.trim()
        .parse()
        .map_err(|_| ApiError::BadAddress(text.trim().to_string()))
}

/// An HTTP client for local APIs that keeps connections open between requests. It sends a
/// `Host` naming the address it connects to and, if it has one, the bearer token.
#[derive(Clone, Debug)]
pub struct ApiClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    token: Option<Arc<ApiToken>>,
}

impl Default for ApiClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiClient {
    /// A new client (no connection yet) without a token.
    pub fn new() -> Self {
        ApiClient {
            inner: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
            token: None,
        }
    }

    /// This client, sending `token` with every request.
    pub fn with_token(mut self, token: ApiToken) -> Self {
        self.token = Some(Arc::new(token));
        self
    }

    /// A client for the node of `home`: with the token of its `[api] token_file` if the home's
    /// config sets one (no config: no token).
    pub fn for_home(home: &Path) -> Result<Self, ApiError> {
        if !home.join(CONFIG_FILE).exists() {
            return Ok(Self::new());
        }
        let config = Config::load(home).map_err(|e| ApiError::Token(e.to_string()))?;
        Ok(match &config.api.token_file {
            None => Self::new(),
            Some(f) => Self::new().with_token(
                ApiToken::load(&Config::resolve(home, f))
                    .map_err(|e| ApiError::Token(e.to_string()))?,
            ),
        })
    }

    /// Sends a request (`body` = `None`: GET, else POST) and returns the status and body.
    /// Each step is bounded by 5 s.
    pub async fn request(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), ApiError> {
        self.request_within(addr, path, body, Duration::from_secs(5))
            .await
    }

    /// As [`ApiClient::request`], each step bounded by `limit`.
    pub async fn request_within(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Option<Vec<u8>>,
        limit: Duration,
    ) -> Result<(u16, String), ApiError> {
        let unreachable = |reason: String| ApiError::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let (method, body) = match body {
            None => (hyper::Method::GET, Bytes::new()),
            Some(b) => (hyper::Method::POST, Bytes::from(b)),
        };
        // hyper adds `Host` from the URI: `127.0.0.1:PORT`, `[::1]:PORT` or the address used.
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(body))
            .map_err(|e| unreachable(e.to_string()))?;
        if let Some(token) = &self.token {
            let value = token
                .header_value()
                .ok_or_else(|| unreachable("the API token is not a valid header value".into()))?;
            req.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let resp = tokio::time::timeout(limit, self.inner.request(req))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let code = resp.status().as_u16();
        let body = tokio::time::timeout(limit, resp.into_body().collect())
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok((code, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Submits a signed transaction to `POST /tx`: `Ok` once the node took it into its
    /// mempool.
    pub async fn submit_tx(&self, addr: SocketAddr, tx: &SignedTx) -> Result<(), ApiError> {
        self.post_accepted(addr, "/tx", ledger::encode(tx)).await
    }

    /// POSTs `body` to `path`: `Ok` on 202 (accepted), else the node's refusal.
    async fn post_accepted(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(), ApiError> {
        let (code, reason) = self.request(addr, path, Some(body)).await?;
        if code == 202 {
            return Ok(());
        }
        Err(ApiError::Refused {
            addr: addr.to_string(),
            code,
            reason: reason.trim().to_string(),
        })
    }
}

impl ApiClient {
    /// Submits signed transactions to `POST /txs` (at most
    /// [`MAX_TXS_PER_REQUEST`](super::MAX_TXS_PER_REQUEST)): each one's verdict, once the node
    /// judged them all.
    pub async fn submit_txs(
        &self,
        addr: SocketAddr,
        txs: &[SignedTx],
    ) -> Result<TxBatchVerdict, ApiError> {
        self.post_json(
            addr,
            "/txs",
            ledger::encode(&txs),
            Duration::from_secs(30),
            "transaction verdict",
        )
        .await
    }

    /// `POST path` with `body`, each step bounded by `limit`: the 200 answer as JSON, any
    /// other status refused with the node's reason, a body that does not parse named by `what`.
    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Vec<u8>,
        limit: Duration,
        what: &str,
    ) -> Result<T, ApiError> {
        let (code, body) = self.request_within(addr, path, Some(body), limit).await?;
        if code != 200 {
            return Err(ApiError::Refused {
                addr: addr.to_string(),
                code,
                reason: body.trim().to_string(),
            });
        }
        serde_json::from_str(&body).map_err(|e| ApiError::Unreachable {
            addr: addr.to_string(),
            reason: format!("bad {what}: {e}"),
        })
    }

    /// Reads `GET /account/{id}`: `None` if the ledger has no such member.
    pub async fn account(
        &self,
        addr: SocketAddr,
        member: &MemberId,
    ) -> Result<Option<AccountInfo>, ApiError> {
        let path = format!("/account/{}", hex::encode(member.as_bytes()));
        self.get_json(addr, &path, "account", true).await
    }

    /// Reads `GET /tx/{id}`.
    pub async fn tx_state(&self, addr: SocketAddr, id: &[u8; 32]) -> Result<TxState, ApiError> {
        let path = format!("/tx/{}", hex::encode(id));
        // Without `missing_ok` a 404 is refused, so `None` does not come back.
        self.get_json(addr, &path, "transaction state", false)
            .await?
            .ok_or_else(|| ApiError::Unreachable {
                addr: addr.to_string(),
                reason: "no transaction state".into(),
            })
    }

    /// `GET path` as JSON: `None` on 404 when `missing_ok`, any other status but 200 refused
    /// with the node's reason, a body that does not parse named by `what`.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        addr: SocketAddr,
        path: &str,
        what: &str,
        missing_ok: bool,
    ) -> Result<Option<T>, ApiError> {
        let (code, body) = self.request(addr, path, None).await?;
        match code {
            200 => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| ApiError::Unreachable {
                    addr: addr.to_string(),
                    reason: format!("bad {what} JSON: {e}"),
                }),
            404 if missing_ok => Ok(None),
            _ => Err(ApiError::Refused {
                addr: addr.to_string(),
                code,
                reason: body.trim().to_string(),
            }),
        }
    }
}

impl ApiClient {
    /// Hands a client-signed request to `POST /sign` and waits up to `wait` for the
    /// signature.
    pub async fn sign(
        &self,
        addr: SocketAddr,
        request: &ledger::SignedRequest,
        wait: Duration,
    ) -> Result<SignOutcome, ApiError> {
        let path = format!("/sign?wait_secs={}", wait.as_secs().max(1));
        let limit = wait + Duration::from_secs(5);
        self.post_json(addr, &path, ledger::encode(request), limit, "sign answer")
            .await
    }
}

impl ApiClient {
    /// Hands a blame of a contribution to issued leaf `leaf` to its relay (`POST
    /// /sign/blame`); the members it convicts (hex ids).
    pub async fn blame(
        &self,
        addr: SocketAddr,
        leaf: u64,
        evidence: &BlameEvidence,
    ) -> Result<Vec<String>, ApiError> {
        let body = ledger::encode(&(leaf, evidence));
        let (code, answer) = self.request(addr, "/sign/blame", Some(body)).await?;
        if code != 202 {
            return Err(ApiError::Refused {
                addr: addr.to_string(),
                code,
                reason: answer.trim().to_string(),
            });
        }
        serde_json::from_str(&answer).map_err(|e| ApiError::Unreachable {
            addr: addr.to_string(),
            reason: format!("bad blame answer JSON: {e}"),
        })
    }

    /// The current bundle of issued leaf `leaf` from its relay (`GET /sign/bundle/{leaf}`, hex
    /// of its encoding); `None` while none is ready.
    pub async fn bundle(&self, addr: SocketAddr, leaf: u64) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            bundle: String,
        }
        let path = format!("/sign/bundle/{leaf}");
        let answer: Option<Answer> = self.get_json(addr, &path, "bundle", true).await?;
        Ok(answer.map(|a| a.bundle))
    }

    /// Publishes a signature made with an issued leaf through `POST /sign/publish`.
    pub async fn publish(
        &self,
        addr: SocketAddr,
        leaf: u64,
        signature: &[u8],
    ) -> Result<(), ApiError> {
        let body = ledger::encode(&(leaf, signature.to_vec()));
        self.post_accepted(addr, "/sign/publish", body).await
    }
}

impl ApiClient {
    /// Reads a page of `GET /checkpoints?from=N`; `None` if the node has no such endpoint
    /// (404: an older node, whose `/status` carries only the last few).
    pub async fn checkpoints(
        &self,
        addr: SocketAddr,
        from: u64,
    ) -> Result<Option<Vec<CheckpointInfo>>, ApiError> {
        let path = format!("/checkpoints?from={from}");
        self.get_json(addr, &path, "checkpoints", true).await
    }

    /// The checkpoints the node serves from `from` on: its whole stored history, page by page,
    /// or, from a node without `GET /checkpoints`, the last few in its `/status`. Nothing here
    /// is trusted: a light client's walk verifies every link.
    pub async fn checkpoint_history(
        &self,
        addr: SocketAddr,
        mut from: u64,
    ) -> Result<Vec<CheckpointInfo>, ApiError> {
        let mut served = Vec::new();
        // Each page moves `from` forward, so this ends; the cap bounds a server that never
        // stops.
        for _ in 0..4096 {
            let Some(page) = self.checkpoints(addr, from).await? else {
                let chain = self.status(addr).await?.chain;
                return chain
                    .map(|c| c.checkpoints)
                    .ok_or_else(|| ApiError::Unreachable {
                        addr: addr.to_string(),
                        reason: "the node runs no chain (is it a bootstrap node?)".into(),
                    });
            };
            let Some(last) = page.last().map(|c| c.seq) else {
                break;
            };
            if last < from {
                return Err(ApiError::Unreachable {
                    addr: addr.to_string(),
                    reason: format!("served checkpoints before {from} when asked from {from}"),
                });
            }
            from = last + 1;
            served.extend(page);
        }
        Ok(served)
    }
}

/// GETs a path from a local API and returns the body.
pub async fn get_text(addr: SocketAddr, path: &str) -> Result<(u16, String), ApiError> {
    ApiClient::new().request(addr, path, None).await
}

/// POSTs `body` to a path of a local API and returns the status and body.
pub async fn post_bytes(
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, String), ApiError> {
    ApiClient::new().request(addr, path, Some(body)).await
}

/// Reads `/status` from a local API.
pub async fn fetch_status(addr: SocketAddr) -> Result<StatusReport, ApiError> {
    ApiClient::new().status(addr).await
}

impl ApiClient {
    /// Reads `/status`.
    pub async fn status(&self, addr: SocketAddr) -> Result<StatusReport, ApiError> {
        let (code, body) = self.request(addr, "/status", None).await?;
        if code == 401 {
            return Err(ApiError::Unauthorized {
                addr: addr.to_string(),
            });
        }
        if code != 200 {
            return Err(ApiError::Unreachable {
                addr: addr.to_string(),
                reason: format!(
                    "HTTP {code}: {}",
                    body.trim().chars().take(300).collect::<String>()
                ),
            });
        }
        serde_json::from_str(&body).map_err(|e| ApiError::Unreachable {
            addr: addr.to_string(),
            reason: format!("bad status JSON: {e}"),
        })
    }
}
