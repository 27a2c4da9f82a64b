//! The sector window: an owner that does not land its sector root within `sector_window`
//! blocks of its assignment loses its unpublished sectors to the next rendezvous choice, is
//! recorded as having missed (not evicted), and owns no sector of the key again; published
//! sectors stay; the window restarts when a sector is reassigned or the holder basis changes.

use super::fixtures::{acks, sectors, Fx, COMMITMENTS_ROOT};
use crate::ledger::{MemberStatus, TxBody};
use crate::member::MemberId;

const WINDOW: u64 = 4;

/// Epoch 1 on `n` validators with a beacon that gives the two sectors different owners (if
/// `distinct`) or the same one, its branch assignment in block 1; the sector window is
/// [`WINDOW`] blocks.
fn assigned(n: u8, distinct: bool) -> Fx {
    let mut fx = Fx::new(n);
    fx.ledger.state.key.sector_window = WINDOW;
    for b in 0u8.. {
        fx.ledger.state.begin_epoch(1, [b; 32]);
        let owners = fx.st().compute_branch_owners().unwrap();
        if (owners[0] != owners[1]) == distinct {
            break;
        }
    }
    let owners = fx.st().compute_branch_owners().unwrap();
    let tx = fx.tx(0, TxBody::BranchAssignment { epoch: 1, owners });
    fx.block(&[], vec![tx]);
    assert_eq!(fx.st().height, 1);
    fx
}

fn index(fx: &Fx, m: &MemberId) -> usize {
    (0..fx.keys.len()).find(|&i| fx.id(i) == *m).unwrap()
}

/// `count` empty blocks signed by `signers`.
fn blocks(fx: &mut Fx, signers: &[usize], count: u64) {
    for _ in 0..count {
        fx.block(signers, vec![]);
    }
}

/// The `SectorRoot` of `sector` by its current owner, acknowledged by every validator.
fn publish(fx: &mut Fx, sector: u32) {
    let owner = fx.st().newest.branch_owners[&sector];
    let root = sectors()[sector as usize].root();
    let acks = acks(fx, sector, owner, (COMMITMENTS_ROOT, root), &[0, 1, 2, 3]);
    let tx = fx.tx(
        index(fx, &owner),
        TxBody::SectorRoot {
            sector,
            root,
            commitments_root: COMMITMENTS_ROOT,
            acks,
        },
    );
    let all = fx.all();
    fx.block(&all, vec![tx]);
}

#[test]
fn an_unpublished_sector_moves_after_the_window_and_a_published_one_stays() {
    let mut fx = assigned(4, true);
    let all = fx.all();
    let (owner0, owner1) = (
        fx.st().newest.branch_owners[&0],
        fx.st().newest.branch_owners[&1],
    );
    // Sector 0 lands within its window (block 2); sector 1 never does.
    publish(&mut fx, 0);
    // The window opened at the assignment's height (1) and includes block 1 + WINDOW.
    blocks(&mut fx, &all, WINDOW - 1);
    assert_eq!(fx.st().height, 1 + WINDOW);
    assert_eq!(fx.st().newest.sector_windows[&1].opened, 1);
    assert_eq!(fx.st().newest.branch_owners[&1], owner1);
    assert!(fx.st().newest.keygen_misses.is_empty());
    blocks(&mut fx, &all, 1);
    let st = fx.st();
    let miss = &st.newest.keygen_misses[&owner1];
    assert_eq!(
        (miss.key, miss.sector, miss.epoch, miss.height),
        (0, 1, 1, 2 + WINDOW)
    );
    // Sector 1 went to the next rendezvous choice, with a new window; sector 0 stayed.
    let next = st.newest.branch_owners[&1];
    assert_ne!(next, owner1);
    assert_eq!(st.newest.sector_windows[&1].owner, next);
    assert_eq!(st.newest.sector_windows[&1].opened, 2 + WINDOW);
    assert_eq!(st.newest.branch_owners[&0], owner0);
    assert_eq!(st.newest.sectors[&0].owner, owner0);
    assert!(!st.newest.sector_windows.contains_key(&0));
    // Missing is not misbehaviour: the owner stays a validator.
    assert_eq!(st.members[&owner1].status, MemberStatus::Active);
    assert!(st.is_validator(&owner1));
    // Its old window is gone: the new owner's sector root lands, the late one's is refused.
    let late = fx.tx(
        index(&fx, &owner1),
        TxBody::SectorRoot {
            sector: 1,
            root: sectors()[1].root(),
            commitments_root: COMMITMENTS_ROOT,
            acks: acks(
                &fx,
                1,
                owner1,
                (COMMITMENTS_ROOT, sectors()[1].root()),
                &[0, 1, 2, 3],
            ),
        },
    );
    assert!(fx.ledger.state.clone().apply_tx(&late).is_err());
    publish(&mut fx, 1);
    assert_eq!(fx.st().newest.sectors[&1].owner, next);
    assert!(fx.st().newest.sector_windows.is_empty());
}

#[test]
fn every_unpublished_sector_of_a_late_owner_moves_and_it_is_never_chosen_again() {
    let mut fx = assigned(4, false);
    let all = fx.all();
    let late = fx.st().newest.branch_owners[&0];
    assert_eq!(fx.st().newest.branch_owners[&1], late);
    blocks(&mut fx, &all, WINDOW + 1);
    let st = fx.st();
    // Both sectors moved (the miss names the first), to owners computed without it.
    assert_eq!(st.newest.keygen_misses[&late].sector, 0);
    assert!(st.newest.branch_owners.values().all(|o| *o != late));
    let computed = st.compute_branch_owners().unwrap();
    assert_eq!(
        st.newest
            .branch_owners
            .values()
            .copied()
            .collect::<Vec<_>>(),
        computed
    );
    // A new epoch: whatever the beacon, the assignment leaves it out, and the ledger checks
    // that the assignment does.
    let mut found_it = false;
    for b in 0u8..32 {
        let mut probe = fx.ledger.state.clone();
        probe.begin_epoch(2, [b; 32]);
        let owners = probe.compute_branch_owners().unwrap();
        assert!(!owners.contains(&late));
        probe.newest.keygen_misses.clear();
        found_it |= probe.compute_branch_owners().unwrap().contains(&late);
    }
    // (Without the miss it would have been chosen for some of those beacons.)
    assert!(found_it);
}

#[test]
fn the_window_restarts_when_the_sector_is_reassigned() {
    let mut fx = assigned(4, true);
    let all = fx.all();
    let first = fx.st().newest.branch_owners[&1];
    publish(&mut fx, 0);
    blocks(&mut fx, &all, WINDOW);
    let moved_at = fx.st().height;
    assert_eq!(moved_at, 2 + WINDOW);
    let second = fx.st().newest.branch_owners[&1];
    assert_ne!(second, first);
    // The second owner gets a whole window from its assignment, not the rest of the first.
    blocks(&mut fx, &all, WINDOW);
    assert_eq!(fx.st().newest.branch_owners[&1], second);
    assert!(!fx.st().newest.keygen_misses.contains_key(&second));
    blocks(&mut fx, &all, 1);
    let st = fx.st();
    assert_eq!(
        st.newest.keygen_misses[&second].height,
        moved_at + WINDOW + 1
    );
    let third = st.newest.branch_owners[&1];
    assert!(third != first && third != second);
}

#[test]
fn the_window_restarts_when_the_holder_basis_changes() {
    let mut fx = assigned(4, true);
    let owner = fx.st().newest.branch_owners[&0];
    let other = fx.st().newest.branch_owners[&1];
    // A validator that owns nothing exits two blocks in: every owner must deal again.
    let exiter = (0..4)
        .find(|&i| fx.id(i) != owner && fx.id(i) != other && i != 0)
        .unwrap();
    let all = fx.all();
    blocks(&mut fx, &all, 1);
    let exit = fx.tx(exiter, TxBody::Exit);
    fx.block(&all, vec![exit]);
    let exited_at = fx.st().height;
    let rest: Vec<usize> = (0..4).filter(|&i| i != exiter).collect();
    // The block after the exit still carries the exiter's precommit of the exit block.
    fx.block(&all, vec![]);
    assert_eq!(fx.st().newest.sector_windows[&0].opened, exited_at);
    let to_close = exited_at + WINDOW - fx.st().height;
    blocks(&mut fx, &rest, to_close);
    assert_eq!(fx.st().newest.branch_owners[&0], owner);
    assert!(fx.st().newest.keygen_misses.is_empty());
    blocks(&mut fx, &rest, 1);
    assert!(fx.st().newest.keygen_misses.contains_key(&owner));
}

#[test]
fn a_new_epoch_assignment_opens_new_windows_and_a_final_key_has_none() {
    let mut fx = assigned(4, true);
    let all = fx.all();
    blocks(&mut fx, &all, 2);
    fx.ledger.state.begin_epoch(2, [0xee; 32]);
    // Between the epoch start and its assignment no key is being generated: no window runs.
    blocks(&mut fx, &all, WINDOW + 2);
    assert!(fx.st().newest.sector_windows.is_empty());
    assert!(fx.st().newest.keygen_misses.is_empty());
    let owners = fx.st().compute_branch_owners().unwrap();
    let tx = fx.tx(0, TxBody::BranchAssignment { epoch: 2, owners });
    fx.block(&all, vec![tx]);
    let at = fx.st().height;
    blocks(&mut fx, &all, 1);
    assert!(fx
        .st()
        .newest
        .sector_windows
        .values()
        .all(|w| w.opened == at));
    publish(&mut fx, 0);
    publish(&mut fx, 1);
    assert!(fx.st().newest.sector_windows.is_empty());
    blocks(&mut fx, &all, WINDOW + 2);
    assert!(fx.st().newest.keygen_misses.is_empty());
}

#[test]
fn a_late_last_validator_keeps_its_sectors() {
    let mut fx = assigned(1, false);
    let only = fx.id(0);
    blocks(&mut fx, &[0], WINDOW + 1);
    let st = fx.st();
    // Nobody else can take them: no miss, the sectors stay, the window starts again.
    assert!(st.newest.keygen_misses.is_empty());
    assert!(st.newest.branch_owners.values().all(|o| *o == only));
    assert!(st
        .newest
        .sector_windows
        .values()
        .all(|w| w.opened == st.height));
}

#[test]
fn the_next_epoch_waits_for_the_open_windows_within_a_cap() {
    let mut fx = assigned(4, true);
    fx.ledger.state.key.sector_window = 100;
    fx.ledger.state.epochs.epoch_min_blocks = 10;
    let all = fx.all();
    blocks(&mut fx, &all, 1);
    let st = fx.st();
    let least = st.epoch_started_at + 10;
    // Both sectors' windows opened at height 1: no new epoch before they close.
    let close = st
        .newest
        .sector_windows
        .values()
        .map(|w| w.opened)
        .max()
        .unwrap()
        + 100
        + 1;
    assert!(close > least);
    assert_eq!(st.next_epoch_height(), close);
    // A window that would keep the epoch open for ever is capped at four windows past the
    // least length.
    let mut st = st.clone();
    for w in st.newest.sector_windows.values_mut() {
        w.opened = 10_000;
    }
    assert_eq!(st.next_epoch_height(), least + 400);
    // Once every sector landed there is no window and the epoch length is the minimum.
    publish(&mut fx, 0);
    publish(&mut fx, 1);
    assert!(fx.st().newest.sector_windows.is_empty());
    assert_eq!(fx.st().next_epoch_height(), fx.st().epoch_started_at + 10);
}
