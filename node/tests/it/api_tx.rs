//! `POST /tx` on the local API: a malformed body is refused with 400 and a transaction over its
//! kind's size cap with 413, and neither reaches the chain driver; a well-formed transaction is
//! handed to the driver unchanged and the driver's verdict becomes the answer (202, or its
//! reason: 503 for a full mempool, 429 for an author at its quota, 409 for a nonce the node's
//! own transaction holds, 400 otherwise); without a chain the route answers 503. `POST /txs`
//! hands many to the driver in one submission and answers each one's verdict by index.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;

use seedfed_node::api::{self, ApiClient, ApiError, ApiState};
use seedfed_node::chain::mempool::{Full, PAYLOAD_TX_CAP};
use seedfed_node::chain::{Submission, TxRejected};
use seedfed_protocol::ledger::{self, SignedTx, Tx, TxBody};
use seedfed_protocol::member::MemberId;
use tokio::sync::mpsc;

fn signed_body(nonce: u64, body: TxBody) -> SignedTx {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    Tx {
        author: MemberId(key.verifying_key().to_bytes()),
        nonce,
        body,
    }
    .sign(common::CHAIN, &key)
}

fn signed(nonce: u64) -> SignedTx {
    let to = ed25519_dalek::SigningKey::from_bytes(&[4u8; 32]);
    signed_body(
        nonce,
        TxBody::Transfer {
            to: MemberId(to.verifying_key().to_bytes()),
            amount: 1,
        },
    )
}

async fn serve(submit: Option<mpsc::Sender<Submission>>) -> SocketAddr {
    let (network, _events) = common::spawn(common::config(true, vec![]));
    let state = ApiState {
        network,
        registry: Arc::new(prometheus_client::registry::Registry::default()),
        role: "node",
        chain: None,
        submit,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, api::router(state, api::Access::loopback()))
            .await
            .unwrap();
    });
    addr
}

/// A stand-in driver: accepts nonce 0, finds its pool full for nonce 1, the author at its
/// quota for nonce 2 and nonce 5 taken by its own transaction, calls everything else stale;
/// passes on each submission it got.
fn stand_in_driver() -> (mpsc::Sender<Submission>, mpsc::Receiver<Vec<SignedTx>>) {
    let (tx, mut rx) = mpsc::channel::<Submission>(4);
    let (seen_tx, seen) = mpsc::channel::<Vec<SignedTx>>(16);
    tokio::spawn(async move {
        while let Some(sub) = rx.recv().await {
            let Submission::Tx(sub) = sub else {
                panic!("a sign request reached the stand-in driver");
            };
            let verdicts = sub
                .txs
                .iter()
                .map(|t| match t.tx.nonce {
                    0 => Ok(()),
                    1 => Err(TxRejected::Full(Full::Bytes(1 << 20))),
                    2 => Err(TxRejected::Full(Full::AuthorTxs(16))),
                    5 => Err(TxRejected::NonceTaken { nonce: 5, next: 6 }),
                    got => Err(TxRejected::StaleNonce { got, next: 7 }),
                })
                .collect();
            seen_tx.send(sub.txs).await.unwrap();
            let _ = sub.reply.send(verdicts);
        }
    });
    (tx, seen)
}

#[tokio::test]
async fn post_tx_forwards_to_the_driver_and_reports_its_verdict() {
    let (tx, mut seen) = stand_in_driver();
    let addr = serve(Some(tx)).await;
    let client = ApiClient::new();

    // Malformed: refused by the API itself.
    let (code, body) = client
        .request(addr, "/tx", Some(b"not a transaction".to_vec()))
        .await
        .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("malformed transaction"), "{body}");
    let mut bytes = ledger::encode(&signed(0));
    bytes.truncate(bytes.len() - 1);
    let (code, _) = api::post_bytes(addr, "/tx", bytes).await.unwrap();
    assert_eq!(code, 400);
    assert!(
        seen.try_recv().is_err(),
        "malformed bodies reached the driver"
    );

    // Accepted by the driver: 202, and the driver got exactly what we sent.
    client.submit_tx(addr, &signed(0)).await.unwrap();
    assert_eq!(seen.recv().await.unwrap(), vec![signed(0)]);

    // Refused by the driver: 400 with its reason.
    match client.submit_tx(addr, &signed(3)).await {
        Err(ApiError::Refused { code, reason, .. }) => {
            assert_eq!(code, 400);
            assert!(reason.contains("stale nonce 3"), "{reason}");
            assert!(reason.contains("next nonce is 7"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(seen.recv().await.unwrap()[0].tx.nonce, 3);

    // A nonce the node's own pending transaction holds: 409, naming the next free one.
    match client.submit_tx(addr, &signed(5)).await {
        Err(ApiError::Refused { code, reason, .. }) => {
            assert_eq!(code, 409);
            assert!(reason.contains("own pending transaction"), "{reason}");
            assert!(reason.contains("sign for nonce 6"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(seen.recv().await.unwrap()[0].tx.nonce, 5);

    // A full mempool is 503 (try later), an author at its quota 429, both with the reason.
    match client.submit_tx(addr, &signed(1)).await {
        Err(ApiError::Refused { code, reason, .. }) => {
            assert_eq!(code, 503);
            assert!(reason.contains("mempool full"), "{reason}");
            assert!(reason.contains("bytes"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match client.submit_tx(addr, &signed(2)).await {
        Err(ApiError::Refused { code, reason, .. }) => {
            assert_eq!(code, 429);
            assert!(
                reason.contains("the author has its limit of 16"),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(seen.recv().await.unwrap()[0].tx.nonce, 1);
    assert_eq!(seen.recv().await.unwrap()[0].tx.nonce, 2);

    // Over its kind's size cap: 413 from the API itself, the driver never sees it.
    let big = signed_body(
        0,
        TxBody::SignaturePublish {
            leaf: 0,
            signature: vec![5; PAYLOAD_TX_CAP],
        },
    );
    match client.submit_tx(addr, &big).await {
        Err(ApiError::Refused { code, reason, .. }) => {
            assert_eq!(code, 413);
            assert!(
                reason.contains("SignaturePublish transaction of"),
                "{reason}"
            );
            assert!(reason.contains("cap"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        seen.try_recv().is_err(),
        "an oversized transaction reached the driver"
    );

    // GET is not a submission.
    let (code, _) = client.request(addr, "/tx", None).await.unwrap();
    assert_eq!(code, 405);
}

#[tokio::test]
async fn post_txs_hands_a_batch_to_the_driver_at_once_and_answers_each_by_index() {
    let (tx, mut seen) = stand_in_driver();
    let addr = serve(Some(tx)).await;
    let client = ApiClient::new();
    let big = signed_body(
        0,
        TxBody::SignaturePublish {
            leaf: 0,
            signature: vec![5; PAYLOAD_TX_CAP],
        },
    );
    // Before: no such route; every transaction took its own request.
    let batch = vec![signed(0), signed(3), big, signed(0), signed(5)];
    let verdict = client.submit_txs(addr, &batch).await.unwrap();
    // One submission to the driver, without the oversized one.
    let got = seen.recv().await.unwrap();
    assert_eq!(got, vec![signed(0), signed(3), signed(0), signed(5)]);
    assert!(seen.try_recv().is_err(), "one submission per request");
    assert_eq!(verdict.accepted, 2);
    let refused: Vec<(usize, u16)> = verdict.refused.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(refused, vec![(1, 400), (2, 413), (4, 409)]);
    assert!(verdict.refused[0].reason.contains("stale nonce 3"));
    assert!(verdict.refused[1].reason.contains("cap"));

    // Malformed, empty and overfull batches are refused whole, before the driver.
    let (code, body) = client
        .request(addr, "/txs", Some(b"junk".to_vec()))
        .await
        .unwrap();
    assert_eq!(code, 400, "{body}");
    for n in [0, api::MAX_TXS_PER_REQUEST + 1] {
        match client.submit_txs(addr, &vec![signed(0); n]).await {
            Err(ApiError::Refused { code, reason, .. }) => {
                assert_eq!(code, 400);
                assert!(reason.contains(&format!("{n} transactions")), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(seen.try_recv().is_err());
}

#[tokio::test]
async fn post_tx_without_a_chain_is_unavailable() {
    let addr = serve(None).await;
    let (code, body) = api::post_bytes(addr, "/tx", ledger::encode(&signed(0)))
        .await
        .unwrap();
    assert_eq!(code, 503, "{body}");
}
