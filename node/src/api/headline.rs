//! The status headline: the few lines that say whether a node is healthy, whether the chain
//! moves, where the DKG is, how long the one-time keys last and how the node is connected.
//! `/status` carries it (the status page shows it at the top) and `seedfed status` prints it
//! first, from this one function, so both say the same thing.

use serde::{Deserialize, Serialize};

use super::StatusReport;
use crate::chain::{ChainStatus, DkgPhase};

/// The headline of a status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headline {
    /// `healthy`, `stalled`, `syncing` or `no chain` (a bootstrap node).
    pub health: String,
    /// Why, in a sentence.
    pub reason: String,
    /// Label and value, in order: `height`, `epoch`, `keys`, `peers`.
    pub items: Vec<(String, String)>,
}

/// The headline of `report` at `now_unix_ms`.
pub fn headline(report: &StatusReport, now_unix_ms: u64) -> Headline {
    let n = &report.network;
    let validators = n.admitted.iter().filter(|p| p.stake > 0).count();
    let peers = format!(
        "{} connected, {} admitted ({} validators), {} refused admission",
        n.connected.len(),
        n.admitted.len(),
        validators,
        n.rejected_total
    );
    let Some(c) = &report.chain else {
        return Headline {
            health: "no chain".into(),
            reason: format!(
                "a {} node: it relays and routes, it keeps no ledger",
                report.role
            ),
            items: vec![("peers".into(), peers)],
        };
    };
    let (health, reason) = match (super::liveness(c, now_unix_ms), c.syncing) {
        (Err(why), _) => ("stalled", why),
        (Ok(()), true) => (
            "syncing",
            "a peer is past our height; catching up".to_string(),
        ),
        (Ok(()), false) => ("healthy", "blocks are being decided".to_string()),
    };
    let age = now_unix_ms.saturating_sub(c.last_block_unix_ms);
    Headline {
        health: health.into(),
        reason,
        items: vec![
            (
                "height".into(),
                format!(
                    "{} (round {}), last block {} ago",
                    c.height,
                    c.round,
                    duration(age)
                ),
            ),
            ("epoch".into(), epoch_line(c)),
            ("keys".into(), keys_line(c)),
            ("peers".into(), peers),
        ],
    }
}

/// `epoch E, ...` with the DKG's phase (from the ledger's windows:
/// [`crate::chain::DkgProgress::phase`]).
fn epoch_line(c: &ChainStatus) -> String {
    let dkg = match (&c.dkg_in_progress, c.dkgs.last()) {
        (Some(d), _) => format!(
            "DKG attempt {} {} ({} of {} commitments, {} complaints)",
            d.attempt,
            phase_words(d.phase),
            d.commitments,
            d.participants,
            d.complaints
        ),
        (None, Some(d)) => format!(
            "DKG of epoch {} done ({}-of-{}, {} excluded)",
            d.epoch,
            d.threshold,
            d.qualified.len(),
            d.excluded.len()
        ),
        (None, None) => "no DKG yet".into(),
    };
    format!("{}, {dkg}", c.epoch)
}

/// What a DKG in `phase` is doing, in words (the status page says the same).
pub fn phase_words(phase: DkgPhase) -> &'static str {
    match phase {
        DkgPhase::Idle => "open",
        DkgPhase::Round1 => "collecting commitments",
        DkgPhase::Complaints => "in its complaint window",
        DkgPhase::Finalizing => "finalising (windows closed)",
    }
}

/// The allocating key's leaves left and projected exhaustion, and the next key's readiness.
fn keys_line(c: &ChainStatus) -> String {
    let k = &c.key;
    let Some(index) = k.allocating else {
        let generating = k.keys.iter().rev().find(|s| s.public_key.is_none());
        return match generating {
            Some(g) => format!(
                "no key signs yet; key {} generating ({} of {} sectors final)",
                g.index, g.sectors_final, k.sectors_total
            ),
            None => "no key can sign: every key is used up".into(),
        };
    };
    let Some(s) = k.keys.iter().find(|s| s.index == index) else {
        return format!("key {index} signs");
    };
    let usage = c.key_usage.iter().find(|u| u.index == index);
    let runs_out = match usage.and_then(|u| u.exhausts_unix_ms.map(|t| (t, u.per_hour))) {
        Some((t, per_hour)) => format!("runs out ~{} at {per_hour}/h", date(t)),
        None => "no recent use, no exhaustion date".into(),
    };
    let next = match k.keys.iter().find(|n| n.index > index) {
        Some(n) if n.public_key.is_some() => format!("next key {} ready", n.index),
        Some(n) => format!(
            "next key {} generating ({} of {} sectors)",
            n.index, n.sectors_final, k.sectors_total
        ),
        None => "no next key yet".into(),
    };
    format!(
        "key {index}: {} of {} leaves left, {runs_out}; {next}",
        s.leaves_left,
        s.leaves_allocated.saturating_add(s.leaves_left)
    )
}

/// The headline as `seedfed status` prints it: `health: ... (reason)`, then one aligned line
/// per item.
pub fn render(h: &Headline) -> String {
    let mut out = format!("{:<16}{} ({})\n", "health:", h.health, h.reason);
    for (label, value) in &h.items {
        out.push_str(&format!("{:<16}{value}\n", format!("{label}:")));
    }
    out
}

/// `45 s`, `3 min 5 s`, `2 h 10 min`, `4 d 3 h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix time in ms (proleptic Gregorian calendar).
pub fn date(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::activity::KeyUsage;
    use crate::chain::{DkgProgress, DkgStatus, KeyInfo, KeySummary};
    use crate::network::{AdmittedPeer, NetworkStatus};

    fn key(index: u32, public: bool, allocated: u64, left: u64) -> KeySummary {
        KeySummary {
            index,
            sectors_final: if public { 8 } else { 3 },
            public_key: public.then(|| "00".into()),
            endorsed: public.then_some(1),
            leaves_allocated: allocated,
            leaves_left: left,
            leaves_retired: 0,
        }
    }

    fn report(chain: Option<ChainStatus>) -> StatusReport {
        let peer = |stake| AdmittedPeer {
            peer_id: "p".into(),
            connected: true,
            stake,
            x25519: String::new(),
            gossip_score: None,
        };
        StatusReport {
            version: "0".into(),
            role: "node".into(),
            network: NetworkStatus {
                peer_id: "me".into(),
                chain_id: "c".into(),
                listen_addrs: vec![],
                connected: vec!["a".into(), "b".into(), "c".into()],
                admitted: vec![peer(5), peer(5), peer(0)],
                routing_table: vec![],
                rejected_total: 1,
                external_addrs: vec![],
                observed_addrs: vec![],
                peer_addrs: Default::default(),
            },
            chain,
            headline: None,
        }
    }

    fn chain() -> ChainStatus {
        ChainStatus {
            height: 120,
            round: 1,
            epoch: 3,
            last_block_unix_ms: 1_000_000 - 2_500,
            liveness_bound_ms: 10_000,
            dkgs: vec![DkgStatus {
                epoch: 3,
                threshold: 2,
                qualified: vec!["a".into(), "b".into(), "c".into()],
                ..DkgStatus::default()
            }],
            key: KeyInfo {
                allocating: Some(0),
                sectors_total: 8,
                keys: vec![key(0, true, 24, 1000), key(1, false, 0, 1024)],
                ..KeyInfo::default()
            },
            key_usage: vec![KeyUsage {
                index: 0,
                per_hour: 40,
                exhausts_unix_ms: Some(1_796_400_000_000),
                ..KeyUsage::default()
            }],
            ..ChainStatus::default()
        }
    }

    fn items(h: &Headline) -> Vec<String> {
        h.items.iter().map(|(l, v)| format!("{l}: {v}")).collect()
    }

    #[test]
    fn the_headline_answers_the_operator_questions() {
        let h = headline(&report(Some(chain())), 1_000_000);
        assert_eq!(h.health, "healthy");
        assert_eq!(
            items(&h),
            [
                "height: 120 (round 1), last block 2 s ago",
                "epoch: 3, DKG of epoch 3 done (2-of-3, 0 excluded)",
                "keys: key 0: 1000 of 1024 leaves left, runs out ~2026-12-04 16:00 UTC at \
                 40/h; next key 1 generating (3 of 8 sectors)",
                "peers: 3 connected, 3 admitted (2 validators), 1 refused admission",
            ]
        );
    }

    #[test]
    fn the_headline_says_stalled_syncing_dkg_and_key_states() {
        let stalled = headline(&report(Some(chain())), 1_000_000 + 20_000);
        assert_eq!(stalled.health, "stalled");
        assert!(
            stalled.reason.contains("no block decided for 22 s"),
            "{}",
            stalled.reason
        );
        let mut c = chain();
        c.syncing = true;
        c.dkg_in_progress = Some(DkgProgress {
            attempt: 1,
            participants: 4,
            commitments: 2,
            complaints: 1,
            phase: DkgPhase::Round1,
            ..DkgProgress::default()
        });
        c.key.keys[1] = key(1, true, 0, 1024);
        c.key_usage.clear();
        let h = headline(&report(Some(c)), 1_000_000);
        assert_eq!(h.health, "syncing");
        let i = items(&h);
        assert_eq!(
            i[1],
            "epoch: 3, DKG attempt 1 collecting commitments (2 of 4 commitments, 1 complaints)"
        );
        assert_eq!(
            i[2],
            "keys: key 0: 1000 of 1024 leaves left, no recent use, no exhaustion date; next key \
             1 ready"
        );
        // A dealer withheld its commitment past the round-1 window: the ledger's windows say
        // where the DKG is, not the count of commitments.
        let mut c = chain();
        c.dkg_in_progress = Some(DkgProgress {
            attempt: 0,
            participants: 4,
            commitments: 3,
            phase: DkgPhase::Complaints,
            ..DkgProgress::default()
        });
        assert_eq!(
            items(&headline(&report(Some(c)), 1_000_000))[1],
            "epoch: 3, DKG attempt 0 in its complaint window (3 of 4 commitments, 0 complaints)"
        );
        let mut c = chain();
        c.key.allocating = None;
        c.key.keys = vec![key(0, false, 0, 0)];
        let h = headline(&report(Some(c)), 1_000_000);
        assert_eq!(
            items(&h)[2],
            "keys: no key signs yet; key 0 generating (3 of 8 sectors final)"
        );
        let b = headline(&report(None), 0);
        assert_eq!(b.health, "no chain");
        assert_eq!(items(&b).len(), 1);
    }

    #[test]
    fn seedfed_status_prints_the_headline_aligned() {
        let h = headline(&report(Some(chain())), 1_000_000);
        let text = render(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "health:         healthy (blocks are being decided)"
        );
        assert_eq!(
            lines[1],
            "height:         120 (round 1), last block 2 s ago"
        );
        assert!(lines[3].starts_with("keys:           key 0: 1000 of 1024 leaves left"));
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn durations_and_dates_read_plainly() {
        assert_eq!(duration(999), "0 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(duration(7_800_000), "2 h 10 min");
        assert_eq!(duration(97_200_000 * 4), "4 d 12 h");
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(date(1_796_400_000_000), "2026-12-04 16:00 UTC");
    }
}
