//! Authorized signing clients (`ledger::client`): the genesis list, the values a change may
//! take (approved by more than 2/3 of the stake through `changes`), and the checks every `SignRequest` passes before a leaf is allocated
//! (client signature, authorization, epoch, nonce, quota).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::LedgerState;
use crate::ledger::client::{ClientChange, SignedRequest};
use crate::ledger::codec::encode;
use crate::ledger::error::LedgerError;
use crate::ledger::sig_cache::SigCache;
use crate::member::MemberId;

/// An authorized client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Requests it may make per epoch.
    pub quota: u32,
    /// The nonces it used, by epoch (the current and the previous epoch only).
    pub used: BTreeMap<u64, BTreeSet<u64>>,
}

impl ClientRecord {
    /// A client with `quota` and no request yet.
    pub fn new(quota: u32) -> Self {
        ClientRecord {
            quota,
            used: BTreeMap::new(),
        }
    }
}

impl LedgerState {
    /// Checks a relayed request without changing anything: the relay is a validator (it
    /// becomes the signing service), the client's signature holds, the client is authorized,
    /// the request is of this epoch or the previous one, its nonce is fresh in that epoch and
    /// the client has quota left in it. Public so a relay refuses a request before it relays
    /// it; `SignRequest` also needs a final master root and a leaf left.
    pub fn check_client_request(
        &self,
        relay: &MemberId,
        signed: &SignedRequest,
    ) -> Result<(), LedgerError> {
        self.check_client_request_with(relay, signed, None)
    }

    /// [`LedgerState::check_client_request`], with the client's signature answered from
    /// `sigs` when it passed on the same request before.
    pub fn check_client_request_with(
        &self,
        relay: &MemberId,
        signed: &SignedRequest,
        sigs: Option<&mut SigCache>,
    ) -> Result<(), LedgerError> {
        if !self.is_validator(relay) {
            return Err(LedgerError::NotValidator(*relay));
        }
        match sigs {
            None => signed.verify(&self.chain_id)?,
            Some(cache) => cache.check_once(
                "client request signature",
                &[
                    self.chain_id.as_bytes(),
                    &encode(&signed.request),
                    &signed.signature.0,
                ],
                || signed.verify(&self.chain_id),
            )?,
        }
        let req = &signed.request;
        let record = self
            .clients
            .get(&req.client)
            .ok_or(LedgerError::UnauthorizedClient(req.client))?;
        if req.epoch != self.epoch && req.epoch.saturating_add(1) != self.epoch {
            return Err(LedgerError::StaleRequest {
                epoch: req.epoch,
                current: self.epoch,
            });
        }
        let used = record.used.get(&req.epoch);
        if used.is_some_and(|u| u.contains(&req.nonce)) {
            return Err(LedgerError::ReplayedRequest {
                client: req.client,
                nonce: req.nonce,
            });
        }
        if used.map_or(0, BTreeSet::len) >= record.quota as usize {
            return Err(LedgerError::OverQuota {
                client: req.client,
                quota: record.quota,
            });
        }
        if let Some(x) = &req.issue_to {
            if !crate::seal::x25519_key_is_valid(x) {
                return Err(LedgerError::BadPayload(
                    "key issuance to an invalid X25519 key".into(),
                ));
            }
        }
        Ok(())
    }

    /// Records a checked request's nonce against its epoch, forgetting epochs before the
    /// previous one.
    pub(super) fn use_client_request(&mut self, signed: &SignedRequest) {
        let epoch = self.epoch;
        if let Some(record) = self.clients.get_mut(&signed.request.client) {
            record.used.retain(|e, _| e.saturating_add(1) >= epoch);
            record
                .used
                .entry(signed.request.epoch)
                .or_default()
                .insert(signed.request.nonce);
        }
    }

    /// Refuses a client change whose value is unusable: authorizing a key that is not an
    /// Ed25519 point, or with quota 0 (the approval itself is `changes`).
    pub(super) fn check_client_change(&self, change: &ClientChange) -> Result<(), LedgerError> {
        if let ClientChange::Authorize { client, quota } = change {
            if ed25519_dalek::VerifyingKey::from_bytes(client.as_bytes()).is_err() {
                return Err(LedgerError::BadClientSignature(*client));
            }
            if *quota == 0 {
                return Err(LedgerError::BadPayload(
                    "authorizing a client with quota 0".into(),
                ));
            }
        }
        Ok(())
    }

    /// Applies an approved client change.
    pub(super) fn enact_client_change(&mut self, change: &ClientChange) {
        match change {
            ClientChange::Authorize { client, quota } => {
                self.clients
                    .entry(*client)
                    .and_modify(|r| r.quota = *quota)
                    .or_insert_with(|| ClientRecord::new(*quota));
            }
            ClientChange::Revoke { client } => {
                self.clients.remove(client);
            }
        }
    }
}
