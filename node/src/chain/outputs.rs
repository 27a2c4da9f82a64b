//! Acting on consensus outputs: messages to publish, timers to schedule or cancel, blocks to
//! build, WAL entries to persist, decided blocks to commit, misbehaviour to report.
//!
//! Guarantees: outputs are acted on in order; every WAL entry is fsynced, with the others
//! buffered before it in one batch, before any later output leaves the node (a broadcast) or
//! commits (a decision) ([`Output::needs_durable_wal`]); a decided block, its certificate and
//! the new tip state are committed atomically, on the storage thread, before the next height's
//! messages go out. Entries wait in memory until then: most record what the node received,
//! and writing each as it came cost an fsync per received vote (2n per height at n
//! validators), the largest part of an idle validator's storage thread.

use seedfed_protocol::consensus::{CommitCertificate, ConsensusMessage, Output, WalEntry};
use seedfed_protocol::ledger::{Block, Evidence, TxBody};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::driver::{ChainError, Driver};
use super::storage::DecidedRecord;
use super::wire::{consensus_gossip, CONSENSUS_TOPIC};

impl Driver {
    /// Acts on consensus outputs in order; WAL entries are made durable together before the
    /// first output that leaves the node or commits ([`WalBuffer::due_before`]).
    pub(super) async fn act(&mut self, outputs: Vec<Output>) -> Result<(), ChainError> {
        for o in outputs {
            if let Output::PersistWal(e) = o {
                self.wal.push(e);
                continue;
            }
            let due = self.wal.due_before(&o);
            self.persist_wal(due).await?;
            match o {
                Output::PersistWal(_) => {}
                Output::Broadcast(m) => {
                    match &m {
                        ConsensusMessage::Proposal(p) => {
                            self.commits
                                .proposal_seen(p.height, p.round, Instant::now());
                        }
                        ConsensusMessage::Vote(v) => self.own_votes.record(&self.me, v),
                        _ => {}
                    }
                    if let Err(e) = self
                        .network
                        .publish(CONSENSUS_TOPIC, consensus_gossip(&m))
                        .await
                    {
                        debug!("consensus publish: {e}");
                    }
                }
                Output::ScheduleTimer { timer, after } => {
                    self.timers.schedule(timer, Instant::now() + after);
                }
                Output::CancelTimer(t) => self.timers.cancel(t),
                Output::CancelAllTimers => self.timers.cancel_consensus(),
                Output::BuildBlock { height, round } => {
                    let at = (self.last_decided + self.config.block_interval).max(Instant::now());
                    self.timers.build_at(height, round, at);
                }
                Output::Decided { block, certificate } => {
                    self.on_decided(&block, &certificate).await?;
                }
                Output::Equivocation { a, b } => {
                    warn!(validator = %a.validator, height = a.height, "equivocation seen");
                    self.evidence.push((
                        a.validator,
                        Evidence::Equivocation {
                            a: Box::new(a),
                            b: Box::new(b),
                        },
                    ));
                }
                Output::InvalidProposal { proposer, reason } => {
                    warn!(%proposer, %reason, "invalid block proposed");
                }
            }
        }
        Ok(())
    }

    /// Appends WAL entries in one fsynced batch, on the storage thread.
    async fn persist_wal(&mut self, entries: Vec<WalEntry>) -> Result<(), ChainError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.storage.call(move |s| s.append_wal(&entries)).await??;
        Ok(())
    }

    /// `block` was decided: it is committed with its certificate and the new tip state, then
    /// the metrics, the mempool, our own transactions, the evidence we hold, the gossip view,
    /// the agent and the status follow the new tip.
    async fn on_decided(
        &mut self,
        block: &Block,
        certificate: &CommitCertificate,
    ) -> Result<(), ChainError> {
        let record = DecidedRecord::new(block, certificate, self.consensus.ledger());
        self.storage.call(move |s| s.commit(&record)).await??;
        self.state_hash = block.state_hash;
        self.last_decided = Instant::now();
        if let Some(sample) = self.commits.decided(
            block.height,
            certificate.round,
            block.txs.len(),
            self.last_decided,
        ) {
            self.metrics.commit_latency_us(sample.latency_us);
        }
        for tx in &block.txs {
            self.metrics.decided_tx(&tx.tx.body);
        }
        let chain_id = &self.consensus.ledger().state.chain_id;
        self.tx_watch.decided(block, |t| t.tx.digest(chain_id));
        let state = &self.consensus.ledger().state;
        let evidence = self.activity.block_applied(
            block,
            state,
            super::status::unix_ms(std::time::SystemTime::now()),
        );
        for e in &evidence {
            warn!(
                kind = %e.kind,
                member = %e.member,
                by = %e.by,
                height = e.height,
                reason = %e.reason,
                "evidence decided"
            );
        }
        let facts = super::milestones::facts(state);
        for m in super::milestones::milestones(&self.facts, &facts) {
            info!(height = block.height, "{m}");
        }
        self.facts = facts;
        self.timers.cancel_build();
        if !block.txs.is_empty() {
            info!(height = block.height, txs = block.txs.len(), "decided");
        } else {
            debug!(height = block.height, "decided");
        }
        self.fill_own();
        let (ledger, checks) = self.consensus.ledger_and_checks();
        let pruned = self.mempool.prune(&ledger.state, checks);
        for (author, nonce, why) in &pruned.failed {
            self.tx_watch.dropped(author, *nonce, why);
            debug!(%author, nonce, reason = %why, "dropping a transaction that no longer applies");
        }
        if pruned.behind > 0 {
            debug!(
                count = pruned.behind,
                "dropped transactions behind ones that no longer apply"
            );
        }
        let evidence = std::mem::take(&mut self.evidence);
        for (member, ev) in evidence {
            if self.consensus.ledger().state.is_validator(&member) {
                self.sign_and_publish(TxBody::Evict {
                    member,
                    evidence: ev,
                });
            }
        }
        self.restore_own();
        self.refresh_view();
        self.settle_sign_waiters(block);
        let st = &self.consensus.ledger().state;
        if st.sign_requests.len() == st.signatures.len() {
            self.signing_cache.clear();
        }
        self.agent_step().await?;
        self.publish_status();
        Ok(())
    }
}

/// WAL entries not yet on disk, in the order consensus produced them.
#[derive(Debug, Default)]
pub(super) struct WalBuffer(Vec<WalEntry>);

impl WalBuffer {
    /// Buffers an entry.
    pub(super) fn push(&mut self, entry: WalEntry) {
        self.0.push(entry);
    }

    /// The entries to make durable before acting on `output`: every buffered one if it
    /// [needs them](Output::needs_durable_wal), else none.
    pub(super) fn due_before(&mut self, output: &Output) -> Vec<WalEntry> {
        if output.needs_durable_wal() {
            std::mem::take(&mut self.0)
        } else {
            Vec::new()
        }
    }
}
