//! What a flooder sends to the nodes' local HTTP API: transaction batches (`POST /txs`) with
//! garbage signatures, with stale nonces (validators' own keys, nonces the ledger already
//! used), signed properly by a non-member, or bytes that are no batch at all; and sign
//! requests (`POST /sign`) from a client the ledger never authorized.
//!
//! Guarantees: nothing sent here can change a ledger: a stale-nonce batch is built only from
//! nonces below the ledger's next one for its author as the node reports it (an author with
//! none used yet gets nothing; a nonce only pending in a mempool would replace the pending
//! transaction, so it is never used), and every other batch is refused by any honest node. Every call is bounded
//! by the API client's 5 s per step (the sign requests wait at most 1 s).

use std::net::SocketAddr;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use seedfed_node::api::ApiClient;
use seedfed_protocol::ledger::{
    self, message_digest, ClientRequest, Signature64, SignedTx, Tx, TxBody,
};
use seedfed_protocol::member::MemberId;

use super::BATCH;

/// The kinds of flooded API calls, in the order a flooder cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKind {
    /// `POST /txs`: transfers in validators' names with garbage signatures.
    BadSignatureTxs,
    /// `POST /txs`: transfers signed by a validator's key at nonces it already used.
    StaleNonceTxs,
    /// `POST /txs`: transfers the flooder signed, though it is no member.
    NonMemberTxs,
    /// `POST /txs` with random bytes.
    MalformedBody,
    /// `POST /sign` from a client the ledger does not know.
    UnauthorizedSign,
}

impl ApiKind {
    /// Every kind, in cycle order.
    pub const ALL: [ApiKind; 5] = [
        ApiKind::BadSignatureTxs,
        ApiKind::StaleNonceTxs,
        ApiKind::NonMemberTxs,
        ApiKind::MalformedBody,
        ApiKind::UnauthorizedSign,
    ];
}

/// What an API call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiOutcome {
    /// The node took something (a flooded transaction or request it should have refused).
    Accepted,
    /// Refused, as it should be.
    Refused,
    /// Nothing to send (no stale nonce exists yet).
    Skipped,
    /// No answer (timeout, connection refused).
    Failed,
}

/// What the calls are built from.
pub struct ApiContext<'a> {
    /// The chain id.
    pub chain_id: &'a str,
    /// The validators (at least one).
    pub validators: &'a [MemberId],
    /// Validators' keys, for stale nonces (may be empty: those calls are skipped).
    pub stale_keys: &'a [ed25519_dalek::SigningKey],
    /// The flooder's own key.
    pub key: &'a ed25519_dalek::SigningKey,
}

fn garbage_signature(seq: u64) -> Signature64 {
    let mut s = [0u8; 64];
    OsRng.fill_bytes(&mut s);
    s[..8].copy_from_slice(&seq.to_le_bytes());
    Signature64(s)
}

/// Posts `txs` as one batch; `Accepted` if the node took any of them.
async fn post_txs(client: &ApiClient, api: SocketAddr, txs: &[SignedTx]) -> ApiOutcome {
    match client.submit_txs(api, txs).await {
        Ok(v) if v.accepted > 0 => ApiOutcome::Accepted,
        Ok(_) => ApiOutcome::Refused,
        Err(seedfed_node::api::ApiError::Refused { .. }) => ApiOutcome::Refused,
        Err(_) => ApiOutcome::Failed,
    }
}

/// Makes flooded API call `seq` of `kind` to the node at `api`.
pub async fn call(
    client: &ApiClient,
    api: SocketAddr,
    kind: ApiKind,
    seq: u64,
    cx: &ApiContext<'_>,
) -> ApiOutcome {
    let me = MemberId(cx.key.verifying_key().to_bytes());
    let validator = cx.validators[(seq as usize) % cx.validators.len().max(1)];
    match kind {
        ApiKind::BadSignatureTxs => {
            let txs = super::forged_transfers(validator, me, seq, garbage_signature(seq));
            post_txs(client, api, &txs).await
        }
        ApiKind::StaleNonceTxs => {
            if cx.stale_keys.is_empty() {
                return ApiOutcome::Skipped;
            }
            let key = &cx.stale_keys[(seq as usize) % cx.stale_keys.len()];
            let author = MemberId(key.verifying_key().to_bytes());
            // The ledger's next nonce, not the mempool's: a transaction at a nonce that is
            // only pending replaces the pending one (its author's right), so only nonces the
            // ledger already used are stale. The ledger's nonce only grows, so they stay so.
            let used = match client.account(api, &author).await {
                Ok(Some(a)) => a.nonce,
                Ok(None) => return ApiOutcome::Skipped,
                Err(_) => return ApiOutcome::Failed,
            };
            let txs: Vec<SignedTx> = (0..used.min(BATCH))
                .map(|nonce| {
                    Tx {
                        author,
                        nonce,
                        body: TxBody::Transfer {
                            to: validator,
                            amount: 1 + seq,
                        },
                    }
                    .sign(cx.chain_id, key)
                })
                .collect();
            if txs.is_empty() {
                return ApiOutcome::Skipped;
            }
            post_txs(client, api, &txs).await
        }
        ApiKind::NonMemberTxs => {
            let txs = super::non_member_transfers(cx.key, cx.chain_id, validator, seq);
            post_txs(client, api, &txs).await
        }
        ApiKind::MalformedBody => {
            let mut body = vec![0u8; 512];
            OsRng.fill_bytes(&mut body);
            match client.request(api, "/txs", Some(body)).await {
                Ok((200, _)) => ApiOutcome::Accepted,
                Ok(_) => ApiOutcome::Refused,
                Err(_) => ApiOutcome::Failed,
            }
        }
        ApiKind::UnauthorizedSign => {
            let request = ClientRequest {
                client: me,
                digest: message_digest(&seq.to_le_bytes()),
                epoch: 0,
                nonce: seq,
                issue_to: None,
            }
            .sign(cx.chain_id, cx.key);
            match client
                .request_within(
                    api,
                    "/sign?wait_secs=1",
                    Some(ledger::encode(&request)),
                    Duration::from_secs(5),
                )
                .await
            {
                Ok((200, _)) => ApiOutcome::Accepted,
                Ok(_) => ApiOutcome::Refused,
                Err(_) => ApiOutcome::Failed,
            }
        }
    }
}
