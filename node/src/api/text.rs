//! `seedfed status` in its human form: the headline ([`super::headline`], the same lines as the
//! top of the status page), then the node, the network and the chain, with what the page's
//! panels show: validators with their liveness, the epoch and its beacon, the DKG in progress
//! and the completed ones, checkpoints, the federation's keys, the mempool, the recent sign
//! requests (who signed what, with the latency) and the evidence decided on the ledger.
//!
//! Guarantees: a pure function of the report and the time; it prints only what `/status`
//! carries (which holds nothing secret), at most [`TEXT_SIGNS`] sign requests and
//! [`TEXT_DKGS`] completed DKGs, so its length does not grow with the chain.

use std::fmt::Write;

use super::headline;
use super::StatusReport;
use crate::chain::ChainStatus;

/// Recent sign requests printed (the newest; `--json` has all the status keeps).
pub const TEXT_SIGNS: usize = 8;
/// Completed DKGs printed (the newest).
pub const TEXT_DKGS: usize = 4;

/// The text of `report` at `now_unix_ms`, one line per fact, labels aligned.
pub fn render(report: &StatusReport, now_unix_ms: u64) -> String {
    let mut out = headline::render(&headline::headline(report, now_unix_ms));
    out.push('\n');
    let n = &report.network;
    line(&mut out, "peer id", &n.peer_id);
    line(
        &mut out,
        "role",
        format!("{} (seedfed {})", report.role, report.version),
    );
    line(&mut out, "chain", &n.chain_id);
    line(&mut out, "listening on", n.listen_addrs.join(", "));
    line(&mut out, "connected", n.connected.len());
    line(&mut out, "admitted", n.admitted.len());
    line(&mut out, "routing table", n.routing_table.len());
    line(&mut out, "rejected", n.rejected_total);
    if let Some(c) = &report.chain {
        chain(&mut out, c);
    }
    for p in &n.admitted {
        let _ = writeln!(
            out,
            "  {} {} stake={}",
            p.peer_id,
            if p.connected {
                "connected"
            } else {
                "disconnected"
            },
            p.stake
        );
    }
    out
}

/// `label:` padded to 16 columns, then `value`.
fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{:<16}{value}", format!("{label}:"));
}

fn chain(out: &mut String, c: &ChainStatus) {
    line(
        out,
        "ledger",
        format!(
            "height {} (round {}), epoch {}, {} validators{}",
            c.height,
            c.round,
            c.epoch,
            c.validators.len(),
            if c.validator { ", we validate" } else { "" }
        ),
    );
    line(out, "state hash", &c.state_hash);
    line(out, "pow difficulty", format!("{} bits", c.pow_difficulty));
    for (bits, stake) in &c.pow_difficulty_approvals {
        line(
            out,
            "  proposed",
            format!("{bits} bits, approved by stake {stake}"),
        );
    }
    for v in &c.validators {
        let liveness = match v.missed {
            0 => "live".to_string(),
            m => format!(
                "missed {m} in a row (evicted at {})",
                c.eviction_missed_heights
            ),
        };
        let last_vote = v
            .last_vote
            .map_or("no vote seen".to_string(), |h| format!("last vote {h}"));
        line(
            out,
            "validator",
            format!(
                "{} stake {}, {liveness}, {last_vote}{}",
                v.id,
                v.stake,
                if v.id == c.member { " (us)" } else { "" }
            ),
        );
    }
    line(out, "beacon", &c.beacon);
    if let Some(b) = &c.next_beacon {
        line(out, "next beacon", b);
    }
    if let Some(d) = &c.dkg_in_progress {
        line(
            out,
            "DKG",
            format!(
                "epoch {} attempt {} opened at height {}, {}: {} of {} commitments, threshold \
                 {}, {} complaints, {} failed attempts",
                d.epoch,
                d.attempt,
                d.opened_at,
                headline::phase_words(d.phase),
                d.commitments,
                d.participants,
                d.threshold,
                d.complaints,
                d.failed_attempts
            ),
        );
    }
    for d in c.dkgs.iter().rev().take(TEXT_DKGS) {
        let excluded = if d.excluded.is_empty() {
            "nobody excluded".to_string()
        } else {
            let who: Vec<String> = d
                .excluded
                .iter()
                .map(|x| format!("{} ({})", x.member, x.reason))
                .collect();
            format!("excluded {}", who.join(", "))
        };
        line(
            out,
            "DKG done",
            format!(
                "epoch {} attempt {} at height {}: {}-of-{}, {excluded}",
                d.epoch,
                d.attempt,
                d.height,
                d.threshold,
                d.qualified.len()
            ),
        );
    }
    let key_epoch = c
        .checkpoint_key_epoch
        .map_or("no checkpoint key yet".to_string(), |e| {
            format!("signed by the DKG of epoch {e}")
        });
    line(
        out,
        "checkpoints",
        match c.checkpoints.last() {
            Some(k) => format!(
                "{} kept, last #{} at height {} (epoch {}); {key_epoch}",
                c.checkpoints.len(),
                k.seq,
                k.height,
                k.epoch
            ),
            None => format!("none yet; {key_epoch}"),
        },
    );
    if let Some(e) = c.assignment_epoch {
        line(
            out,
            "assignment",
            format!("epoch {e}, {} sectors", c.assignment.len()),
        );
    }
    let k = &c.key;
    line(
        out,
        "key",
        format!(
            "2^{} leaves in {} sectors, {}-of-{} (ack {}); {} of {} sectors final, {} audited \
             ({} leaves each, {} retired); {} of {} leaves allocated; we hold {} sectors",
            k.tree_height,
            k.sectors_total,
            k.leaf_threshold,
            k.leaf_holders,
            k.ack_threshold,
            k.sectors_final,
            k.sectors_total,
            k.sectors_audited,
            k.audit_leaves,
            k.leaves_retired,
            k.leaves_allocated,
            k.leaves_total,
            k.held_sectors
        ),
    );
    for v in &k.convictions {
        line(
            out,
            "convicted",
            format!(
                "{} by {} on sector {} at height {}: {}",
                v.member, v.by, v.sector, v.height, v.reason
            ),
        );
    }
    if let Some(root) = &k.master_root {
        line(out, "master root", root);
    }
    for s in &k.keys {
        let state = match (&s.public_key, s.endorsed) {
            (None, _) => format!("generating ({} sectors final)", s.sectors_final),
            (Some(_), None) => "final, waiting for its checkpoint".to_string(),
            (Some(_), Some(seq)) => format!("endorsed by checkpoint {seq}"),
        };
        line(
            out,
            &format!("key {}", s.index),
            format!(
                "{state}; {} leaves allocated, {} left{}",
                s.leaves_allocated,
                s.leaves_left,
                if k.allocating == Some(s.index) {
                    " (signs now)"
                } else {
                    ""
                }
            ),
        );
    }
    for m in &k.missed {
        line(
            out,
            "missed window",
            format!("{m} (owns no sector of the key)"),
        );
    }
    line(
        out,
        "mempool",
        format!(
            "{} txs, {} bytes, {} refused since start",
            c.mempool, c.mempool_bytes, c.mempool_refused
        ),
    );
    line(
        out,
        "since start",
        format!(
            "{} blocks synced, {} gossip messages dropped",
            c.synced_blocks, c.gossip_dropped
        ),
    );
    if c.recent_signs.is_empty() {
        line(out, "signed", "no sign request seen");
    }
    for s in c.recent_signs.iter().rev().take(TEXT_SIGNS) {
        let outcome = match (s.signed_height, s.latency_ms) {
            (None, _) => "pending".to_string(),
            (Some(h), Some(ms)) => format!("signed at height {h} after {:.1} s", ms as f64 / 1e3),
            (Some(h), None) => format!("signed at height {h}"),
        };
        line(
            out,
            "signed",
            format!(
                "leaf {}:{} for client {} (relayed by {}) at height {}, {outcome}",
                s.key,
                s.leaf & 0xffff_ffff,
                s.client,
                s.requester,
                s.height
            ),
        );
    }
    for e in &c.recent_evidence {
        line(
            out,
            "evidence",
            format!(
                "{} against {} at height {}: {} (submitted by {})",
                e.kind,
                if e.member.is_empty() {
                    "the sector's owner"
                } else {
                    &e.member
                },
                e.height,
                e.reason,
                e.by
            ),
        );
    }
    for e in &c.evictions {
        line(
            out,
            "evicted",
            format!("{} at height {}", e.member, e.height),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status recorded from a four-node testnet for the browser test.
    fn recorded() -> StatusReport {
        serde_json::from_str(include_str!("../../tests/data/status-page.json")).unwrap()
    }

    #[test]
    fn the_text_answers_what_the_page_answers() {
        let r = recorded();
        let c = r.chain.clone().unwrap();
        let text = render(&r, c.last_block_unix_ms + 1_000);
        let lines: Vec<&str> = text.lines().collect();
        // The headline first.
        assert!(lines[0].starts_with("health:"), "{text}");
        let has = |label: &str, part: &str| {
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("{label}:")) && l.contains(part)),
                "no {label}: line with {part:?} in:\n{text}"
            );
        };
        has("beacon", &c.beacon);
        for v in &c.validators {
            has("validator", &format!("{} stake {}", v.id, v.stake));
        }
        let d = c.dkg_in_progress.as_ref().unwrap();
        has(
            "DKG",
            &format!(
                "in its complaint window: {} of {} commitments",
                d.commitments, d.participants
            ),
        );
        let done = c.dkgs.last().unwrap();
        has(
            "DKG done",
            &format!("epoch {} attempt {}", done.epoch, done.attempt),
        );
        let k = c.checkpoints.last().unwrap();
        has(
            "checkpoints",
            &format!("last #{} at height {}", k.seq, k.height),
        );
        has("mempool", &format!("{} txs", c.mempool));
        has("since start", &format!("{} blocks synced", c.synced_blocks));
        has(
            "since start",
            &format!("{} gossip messages dropped", c.gossip_dropped),
        );
        // Who signed what: the newest requests with client, leaf and latency.
        let newest = c.recent_signs.last().unwrap();
        let ms = newest.latency_ms.unwrap();
        has(
            "signed",
            &format!(
                "leaf {}:{} for client {}",
                newest.key,
                newest.leaf & 0xffff_ffff,
                newest.client
            ),
        );
        has("signed", &format!("after {:.1} s", ms as f64 / 1e3));
        let e = &c.recent_evidence[0];
        has(
            "evidence",
            &format!(
                "{} against {} at height {}: {}",
                e.kind, e.member, e.height, e.reason
            ),
        );
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("signed:")).count(),
            c.recent_signs.len().min(TEXT_SIGNS)
        );
    }
}
