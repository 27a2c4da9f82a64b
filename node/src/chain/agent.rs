//! Agent dispatch: drives `seedfed_protocol::agent::Agent` (the epoch cycle's DKG, beacon and
//! checkpoint signing) from the driver: after every decided block, and for every direct
//! message (a DKG round-2 envelope) a peer sends us.
//!
//! Guarantees: the agent's snapshot (its key shares and nonces) is fsynced, on the storage
//! thread, before any duty it produced leaves the node; an unchanged snapshot is not rewritten.
//! Duties become our own transactions ([`Duty::Submit`], through the outbox and mempool) or
//! point-to-point requests ([`Duty::Send`]).

use libp2p::PeerId;
use seedfed_protocol::agent::Duty;
use seedfed_protocol::hash::Domain;
use seedfed_protocol::ledger;
use tracing::debug;

use super::driver::{ChainError, Driver};
use super::wire::{member_of, peer_of, ChainRequest, ChainResponse};

const AGENT_DIGEST: Domain = Domain::new("seedfed-agentsnp");

impl Driver {
    /// Runs the epoch agent on the current ledger: persists its state, then acts on its duties.
    pub(super) async fn agent_step(&mut self) -> Result<(), ChainError> {
        let duties = self
            .agent
            .on_block(self.consensus.ledger(), &mut rand_core::OsRng);
        self.persist_agent().await?;
        self.dispatch(duties);
        Ok(())
    }

    /// A direct message from `peer` for our agent.
    pub(super) async fn on_direct(
        &mut self,
        peer: PeerId,
        payload: &[u8],
    ) -> Result<ChainResponse, ChainError> {
        let Some(from) = member_of(&peer) else {
            return Ok(ChainResponse::Refused(
                "sender is not an Ed25519 identity".into(),
            ));
        };
        match self.agent.on_direct(
            self.consensus.ledger(),
            from,
            payload,
            &mut rand_core::OsRng,
        ) {
            Ok(duties) => {
                self.persist_agent().await?;
                self.dispatch(duties);
                Ok(ChainResponse::Ack)
            }
            Err(e) => {
                debug!(%peer, "direct message refused: {e}");
                Ok(ChainResponse::Refused(e.to_string()))
            }
        }
    }

    /// Makes the agent's state (key shares, nonces, received envelopes) durable before anything
    /// that depends on it leaves the node.
    async fn persist_agent(&mut self) -> Result<(), ChainError> {
        let snapshot = self.agent.snapshot();
        let digest = seedfed_protocol::hash::hash32(AGENT_DIGEST, &[], &[0; 16], &[&snapshot]);
        if self.agent_saved != Some(digest) {
            let key = self.at_rest.clone();
            self.storage
                .call(move |s| s.put_agent(&key, &snapshot))
                .await??;
            self.agent_saved = Some(digest);
        }
        Ok(())
    }

    fn dispatch(&mut self, duties: Vec<Duty>) {
        for d in duties {
            match d {
                Duty::Submit(body) => self.sign_and_publish(body),
                Duty::Send { to, payload } => {
                    let Some(peer) = peer_of(&to) else {
                        continue;
                    };
                    let net = self.network.clone();
                    let req = ledger::encode(&ChainRequest::Direct(payload));
                    tokio::spawn(async move {
                        match net.request(peer, req).await {
                            Ok(bytes) => match ledger::decode::<ChainResponse>(&bytes) {
                                Ok(ChainResponse::Ack) => {}
                                other => debug!(%peer, "direct message not taken: {other:?}"),
                            },
                            Err(e) => debug!(%peer, "direct message failed: {e}"),
                        }
                    });
                }
            }
        }
    }
}
