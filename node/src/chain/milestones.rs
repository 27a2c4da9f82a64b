//! The milestones an operator reads at INFO: a new epoch, a finished DKG (with whom it
//! excluded and why), a signed checkpoint, a key generation started, a key final, endorsed, or
//! taking over signing (rotation). The driver takes the ledger's [`Facts`] after every block it
//! applies and logs the lines [`milestones`] finds between the previous facts and these.
//!
//! Guarantees: a few fields per block, no per-vote or per-message work: [`facts`] reads the
//! ledger's current epoch, newest DKG result, last checkpoint and its keys (bounded by the
//! keys the ledger holds); [`milestones`] is pure, so the same facts always give the same lines.

use seedfed_protocol::ledger::LedgerState;

/// The ledger facts whose changes are milestones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The epoch.
    pub epoch: u64,
    /// The epoch's beacon (hex).
    pub beacon: String,
    /// The newest completed DKG.
    pub dkg: Option<DkgFact>,
    /// The last checkpoint: sequence number, epoch, height.
    pub checkpoint: Option<(u64, u64, u64)>,
    /// Each key: index, final (its public key known), the checkpoint that endorsed it.
    pub keys: Vec<(u32, bool, Option<u64>)>,
    /// The key sign requests allocate from.
    pub allocating: Option<u32>,
}

/// A completed DKG.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DkgFact {
    /// Its epoch.
    pub epoch: u64,
    /// The attempt that completed.
    pub attempt: u32,
    /// Its threshold.
    pub threshold: u16,
    /// Key holders.
    pub qualified: usize,
    /// The excluded members (hex) with the reason.
    pub excluded: Vec<(String, String)>,
}

/// The facts of `s`.
pub fn facts(s: &LedgerState) -> Facts {
    Facts {
        epoch: s.epoch,
        beacon: hex::encode(s.beacon),
        dkg: s.dkg_results.values().last().map(|r| DkgFact {
            epoch: r.epoch,
            attempt: r.attempt,
            threshold: r.threshold,
            qualified: r.qualified.len(),
            excluded: r
                .excluded
                .iter()
                .map(|(m, why)| (hex::encode(m.as_bytes()), format!("{why:?}")))
                .collect(),
        }),
        checkpoint: s
            .checkpoints
            .last()
            .map(|c| (c.seq, c.body.epoch, c.body.height)),
        keys: s
            .keys()
            .map(|k| (k.index, s.key_public(k.index).is_some(), k.endorsed))
            .collect(),
        allocating: s.allocating_key(),
    }
}

/// The milestones from `before` to `after`, in the order they read best (epoch, DKG,
/// checkpoint, keys).
pub fn milestones(before: &Facts, after: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    if after.epoch != before.epoch {
        out.push(format!(
            "epoch {} started (beacon {})",
            after.epoch, after.beacon
        ));
    }
    if let Some(DkgFact {
        epoch,
        attempt,
        threshold,
        qualified,
        excluded,
    }) = &after.dkg
    {
        if before.dkg.as_ref().map(|d| (d.epoch, d.attempt)) != Some((*epoch, *attempt)) {
            let excluded = if excluded.is_empty() {
                "nobody excluded".to_string()
            } else {
                let who: Vec<String> = excluded
                    .iter()
                    .map(|(m, why)| format!("{m} ({why})"))
                    .collect();
                format!("excluded {}", who.join(", "))
            };
            out.push(format!(
                "DKG of epoch {epoch} finished (attempt {attempt}): {threshold}-of-{qualified}, \
                 {excluded}"
            ));
        }
    }
    if let Some((seq, epoch, height)) = after.checkpoint {
        if before.checkpoint.map(|c| c.0) != Some(seq) {
            out.push(format!(
                "checkpoint #{seq} signed (epoch {epoch}, height {height})"
            ));
        }
    }
    for &(index, fin, endorsed) in &after.keys {
        let old = before.keys.iter().find(|k| k.0 == index);
        if old.is_none() && !fin {
            out.push(format!("key {index}: generation started"));
        }
        if fin && !old.is_some_and(|k| k.1) {
            out.push(format!(
                "key {index} final: its master root is on the ledger"
            ));
        }
        if let Some(seq) = endorsed {
            if old.and_then(|k| k.2).is_none() {
                out.push(format!("key {index} endorsed by checkpoint #{seq}"));
            }
        }
    }
    match (before.allocating, after.allocating) {
        (a, b) if a == b => {}
        (Some(a), Some(b)) => out.push(format!("key rotation: key {b} signs now, after key {a}")),
        (None, Some(b)) => out.push(format!("key {b} signs now")),
        (Some(a), None) => out.push(format!(
            "no key can sign now: key {a} is used up and no next key is endorsed"
        )),
        (None, None) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis_facts() -> Facts {
        Facts {
            epoch: 0,
            beacon: "00".into(),
            keys: vec![(0, false, None)],
            ..Facts::default()
        }
    }

    #[test]
    fn nothing_changed_is_no_milestone() {
        let f = genesis_facts();
        assert!(milestones(&f, &f).is_empty());
    }

    #[test]
    fn epoch_dkg_checkpoint_and_key_milestones_read_plainly() {
        let before = genesis_facts();
        let after = Facts {
            epoch: 1,
            beacon: "ab".into(),
            dkg: Some(DkgFact {
                epoch: 0,
                attempt: 1,
                threshold: 3,
                qualified: 4,
                excluded: vec![("ee".into(), "Absent".into())],
            }),
            checkpoint: Some((0, 1, 30)),
            keys: vec![(0, true, Some(0)), (1, false, None)],
            allocating: Some(0),
        };
        assert_eq!(
            milestones(&before, &after),
            [
                "epoch 1 started (beacon ab)",
                "DKG of epoch 0 finished (attempt 1): 3-of-4, excluded ee (Absent)",
                "checkpoint #0 signed (epoch 1, height 30)",
                "key 0 final: its master root is on the ledger",
                "key 0 endorsed by checkpoint #0",
                "key 1: generation started",
                "key 0 signs now",
            ]
        );
        // The same facts again: nothing new. A rotation, then exhaustion.
        assert!(milestones(&after, &after).is_empty());
        let rotated = Facts {
            keys: vec![(0, true, Some(0)), (1, true, Some(1))],
            checkpoint: Some((1, 1, 60)),
            allocating: Some(1),
            ..after.clone()
        };
        assert_eq!(
            milestones(&after, &rotated),
            [
                "checkpoint #1 signed (epoch 1, height 60)",
                "key 1 final: its master root is on the ledger",
                "key 1 endorsed by checkpoint #1",
                "key rotation: key 1 signs now, after key 0",
            ]
        );
        let exhausted = Facts {
            allocating: None,
            ..rotated.clone()
        };
        assert_eq!(
            milestones(&rotated, &exhausted),
            ["no key can sign now: key 1 is used up and no next key is endorsed"]
        );
    }

    #[test]
    fn the_facts_of_a_genesis_ledger() {
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let me = crate::chain::wire::member_of(&kp.public().to_peer_id()).unwrap();
        let g = crate::chain::test_genesis::genesis("facts", &[(me, 1)], 10);
        let ledger = seedfed_protocol::ledger::Ledger::from_genesis(&g).unwrap();
        let f = facts(&ledger.state);
        assert_eq!(f.epoch, 0);
        assert_eq!((f.dkg, f.checkpoint, f.allocating), (None, None, None));
        assert_eq!(f.keys, [(0, false, None)]);
    }
}
