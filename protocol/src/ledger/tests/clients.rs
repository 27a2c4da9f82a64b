//! Authorized clients: who may allocate a leaf, how often, and how validators change the list.

use ed25519_dalek::SigningKey;

use super::fixtures::{client_key, id, signing_ready, CHAIN};
use crate::ledger::{ClientChange, ClientRequest, LedgerError, TxBody};

fn request_by(key: &SigningKey, epoch: u64, nonce: u64) -> TxBody {
    TxBody::SignRequest {
        request: ClientRequest {
            client: id(key),
            digest: [nonce as u8; 32],
            epoch,
            nonce,
            issue_to: None,
        }
        .sign(CHAIN, key),
    }
}

#[test]
fn an_authorized_request_allocates_a_leaf_and_records_client_and_relay() {
    let mut fx = signing_ready();
    fx.apply(1, fx.request([5; 32], 7)).unwrap();
    let r = &fx.st().sign_requests[&0];
    assert_eq!(r.requester, fx.id(1));
    assert_eq!(r.client, id(&client_key()));
    assert_eq!(r.digest, [5; 32]);
    assert_eq!(r.issue_to, None);
}

#[test]
fn unauthorized_forged_stale_replayed_and_over_quota_requests_are_refused() {
    let mut fx = signing_ready();
    let before = fx.st().clone();
    let stranger = SigningKey::from_bytes(&[0x77; 32]);
    let epoch = fx.st().epoch;
    assert_eq!(
        fx.apply(0, request_by(&stranger, epoch, 0)),
        Err(LedgerError::UnauthorizedClient(id(&stranger)))
    );
    // The client's name on a request signed by another key.
    let forged = TxBody::SignRequest {
        request: ClientRequest {
            client: id(&client_key()),
            digest: [1; 32],
            epoch,
            nonce: 0,
            issue_to: None,
        }
        .sign(CHAIN, &stranger),
    };
    assert_eq!(
        fx.apply(0, forged),
        Err(LedgerError::BadClientSignature(id(&client_key())))
    );
    // Signed for another federation.
    let other_chain = TxBody::SignRequest {
        request: ClientRequest {
            client: id(&client_key()),
            digest: [1; 32],
            epoch,
            nonce: 0,
            issue_to: None,
        }
        .sign("another-chain", &client_key()),
    };
    assert_eq!(
        fx.apply(0, other_chain),
        Err(LedgerError::BadClientSignature(id(&client_key())))
    );
    // A relay that is not a validator cannot be the signing service: here a stake-0 member.
    assert_eq!(fx.st(), &before);
    fx.apply(0, fx.request([1; 32], 1)).unwrap();
    assert_eq!(
        fx.apply(2, fx.request([1; 32], 1)),
        Err(LedgerError::ReplayedRequest {
            client: id(&client_key()),
            nonce: 1
        })
    );
    // Up to the quota in this epoch (lowered below the key's 32 leaves).
    let quota = 6;
    fx.ledger
        .state
        .clients
        .get_mut(&id(&client_key()))
        .unwrap()
        .quota = quota;
    for n in 2..=u64::from(quota) {
        fx.apply(0, fx.request([2; 32], n)).unwrap();
    }
    assert_eq!(
        fx.apply(0, fx.request([3; 32], 1000)),
        Err(LedgerError::OverQuota {
            client: id(&client_key()),
            quota
        })
    );
    // The next epoch has a fresh quota; the nonces of the previous one still do not replay,
    // and requests two epochs old are stale.
    fx.ledger.state.epoch += 1;
    assert_eq!(
        fx.apply(0, request_by(&client_key(), epoch, 1)),
        Err(LedgerError::ReplayedRequest {
            client: id(&client_key()),
            nonce: 1
        })
    );
    fx.apply(0, fx.request([4; 32], 1)).unwrap();
    fx.ledger.state.epoch += 1;
    assert_eq!(
        fx.apply(0, request_by(&client_key(), epoch, 5000)),
        Err(LedgerError::StaleRequest {
            epoch,
            current: epoch + 2
        })
    );
    assert_eq!(
        fx.apply(0, request_by(&client_key(), epoch + 5, 5000)),
        Err(LedgerError::StaleRequest {
            epoch: epoch + 5,
            current: epoch + 2
        })
    );
    // Only the current and the previous epoch's nonces are remembered.
    fx.apply(0, fx.request([5; 32], 1)).unwrap();
    let record = &fx.st().clients[&id(&client_key())];
    assert!(record.used.keys().all(|e| *e + 1 >= epoch + 2));
}

#[test]
fn a_relay_without_stake_is_refused() {
    let mut fx = signing_ready();
    let to = fx.id(0);
    let all = fx.st().members[&fx.id(3)].stake;
    fx.apply(3, TxBody::Transfer { to, amount: all }).unwrap();
    assert_eq!(
        fx.apply(3, fx.request([1; 32], 1)),
        Err(LedgerError::NotValidator(fx.id(3)))
    );
}

#[test]
fn a_client_change_applies_once_more_than_two_thirds_of_the_stake_approved_it() {
    let mut fx = signing_ready();
    let newcomer = SigningKey::from_bytes(&[0x99; 32]);
    let authorize = ClientChange::Authorize {
        client: id(&newcomer),
        quota: 3,
    };
    let epoch = fx.st().epoch;
    // 4 validators of equal stake: 2 approvals are 1/2, 3 are 3/4 > 2/3.
    for i in 0..2 {
        fx.apply(
            i,
            TxBody::ClientChange {
                change: authorize.clone(),
            },
        )
        .unwrap();
        assert_eq!(
            fx.apply(0, request_by(&newcomer, epoch, 10 + i as u64)),
            Err(LedgerError::UnauthorizedClient(id(&newcomer)))
        );
    }
    assert_eq!(
        fx.apply(
            1,
            TxBody::ClientChange {
                change: authorize.clone()
            }
        ),
        Err(LedgerError::DuplicateApproval(fx.id(1)))
    );
    fx.apply(
        2,
        TxBody::ClientChange {
            change: authorize.clone(),
        },
    )
    .unwrap();
    assert!(fx.st().changes.is_empty());
    assert_eq!(fx.st().clients[&id(&newcomer)].quota, 3);
    fx.apply(0, request_by(&newcomer, epoch, 1)).unwrap();
    // Revoking takes the same majority; then the client is refused again.
    let revoke = ClientChange::Revoke {
        client: id(&newcomer),
    };
    for i in 1..4 {
        fx.apply(
            i,
            TxBody::ClientChange {
                change: revoke.clone(),
            },
        )
        .unwrap();
    }
    assert!(!fx.st().clients.contains_key(&id(&newcomer)));
    assert_eq!(
        fx.apply(0, request_by(&newcomer, epoch, 2)),
        Err(LedgerError::UnauthorizedClient(id(&newcomer)))
    );
}

#[test]
fn client_changes_are_bounded_per_validator_and_need_a_real_key_and_quota() {
    let mut fx = signing_ready();
    assert!(matches!(
        fx.apply(
            0,
            TxBody::ClientChange {
                change: ClientChange::Authorize {
                    client: id(&SigningKey::from_bytes(&[0x55; 32])),
                    quota: 0
                }
            }
        ),
        Err(LedgerError::BadPayload(_))
    ));
    for n in 0..crate::ledger::MAX_OPEN_CHANGES {
        let client = id(&SigningKey::from_bytes(&[n as u8 + 1; 32]));
        fx.apply(
            0,
            TxBody::ClientChange {
                change: ClientChange::Revoke { client },
            },
        )
        .unwrap();
    }
    let one_more = ClientChange::Revoke {
        client: id(&SigningKey::from_bytes(&[0xee; 32])),
    };
    assert_eq!(
        fx.apply(0, TxBody::ClientChange { change: one_more }),
        Err(LedgerError::TooManyChanges(fx.id(0)))
    );
}
