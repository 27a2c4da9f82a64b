//! Authorized signing clients (`ledger::client`): the genesis list, changes approved by more
//! than 2/3 of the stake, and the checks every `SignRequest` passes before a leaf is allocated
//! (client signature, authorization, epoch, nonce, quota).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::LedgerState;
use crate::ledger::client::{ClientChange, SignedRequest};
use crate::ledger::error::LedgerError;
use crate::member::MemberId;

/// Most client changes one validator may have open (approved, not yet applied) at once; bounds
/// the state a validator can grow with changes that never pass.
pub const MAX_OPEN_CLIENT_CHANGES: usize = 16;

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
        if !self.is_validator(relay) {
            return Err(LedgerError::NotValidator(*relay));
        }
        signed.verify(&self.chain_id)?;
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

    /// `ClientChange`: a validator approves a change; once the approvers still validating hold
    /// more than 2/3 of the stake, it applies and its approvals are dropped.
    pub(super) fn apply_client_change(
        &mut self,
        author: MemberId,
        change: &ClientChange,
    ) -> Result<(), LedgerError> {
        if !self.is_validator(&author) {
            return Err(LedgerError::NotValidator(author));
        }
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
        let open = self
            .client_changes
            .iter()
            .filter(|(c, v)| *c != change && v.contains(&author))
            .count();
        if open >= MAX_OPEN_CLIENT_CHANGES {
            return Err(LedgerError::TooManyClientChanges(author));
        }
        let validators = self.validators();
        let total: u64 = validators.values().sum();
        let approvals = self.client_changes.entry(change.clone()).or_default();
        if !approvals.insert(author) {
            return Err(LedgerError::DuplicateApproval(author));
        }
        let approved: u64 = approvals.iter().filter_map(|m| validators.get(m)).sum();
        if u128::from(approved) * 3 > u128::from(total) * 2 {
            self.client_changes.remove(change);
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
        Ok(())
    }
}
