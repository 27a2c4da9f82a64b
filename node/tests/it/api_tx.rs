//! `POST /tx` on the local API: a malformed body is refused with 400 and a transaction over its
//! kind's size cap with 413, and neither reaches the chain driver; a well-formed transaction is
//! handed to the driver unchanged and the driver's verdict becomes the answer (202, or its
//! reason: 503 for a full mempool, 429 for an author at its quota, 400 otherwise); without a
//! chain the route answers 503.

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

#[tokio::test]
async fn post_tx_forwards_to_the_driver_and_reports_its_verdict() {
    let (tx, mut rx) = mpsc::channel::<Submission>(4);
    // A stand-in driver: accepts nonce 0, finds its pool full for nonce 1 and the author at
    // its quota for nonce 2, calls everything else stale; records what it got.
    let (seen_tx, mut seen) = mpsc::channel::<SignedTx>(16);
    tokio::spawn(async move {
        while let Some(sub) = rx.recv().await {
            let Submission::Tx(sub) = sub else {
                panic!("a sign request reached the stand-in driver");
            };
            let verdict = match sub.tx.tx.nonce {
                0 => Ok(()),
                1 => Err(TxRejected::Full(Full::Bytes(1 << 20))),
                2 => Err(TxRejected::Full(Full::AuthorTxs(16))),
                got => Err(TxRejected::StaleNonce { got, next: 7 }),
            };
            seen_tx.send(sub.tx).await.unwrap();
            let _ = sub.reply.send(verdict);
        }
    });
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
    assert_eq!(seen.recv().await.unwrap(), signed(0));

    // Refused by the driver: 400 with its reason.
    match client.submit_tx(addr, &signed(3)).await {
        Err(ApiError::Refused { code, reason, .. }) => {
            assert_eq!(code, 400);
            assert!(reason.contains("stale nonce 3"), "{reason}");
            assert!(reason.contains("next nonce is 7"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(seen.recv().await.unwrap().tx.nonce, 3);

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
    assert_eq!(seen.recv().await.unwrap().tx.nonce, 1);
    assert_eq!(seen.recv().await.unwrap().tx.nonce, 2);

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
async fn post_tx_without_a_chain_is_unavailable() {
    let addr = serve(None).await;
    let (code, body) = api::post_bytes(addr, "/tx", ledger::encode(&signed(0)))
        .await
        .unwrap();
    assert_eq!(code, 503, "{body}");
}
