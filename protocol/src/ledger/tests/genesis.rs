//! Genesis checks.

use super::fixtures::genesis;
use crate::ledger::{GenesisError, Ledger, LedgerState};

#[test]
fn genesis_checks() {
    let mut g = genesis(4);
    assert!(Ledger::from_genesis(&g).is_ok());
    g.validators[1].id = g.validators[0].id;
    assert_eq!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::DuplicateValidator(g.validators[0].id))
    );
    let mut g = genesis(2);
    for v in &mut g.validators {
        v.stake = 0;
    }
    assert_eq!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::NoValidators)
    );
    let mut g = genesis(2);
    g.key.leaf_threshold = 4;
    assert!(matches!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::BadKeyParams(_))
    ));
    // p must be below h (5), and h an RFC 8554 height.
    let mut g = genesis(2);
    g.key.sector_bits = 5;
    assert!(matches!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::BadKeyParams(_))
    ));
    let mut g = genesis(2);
    g.key.sector_bits = 4;
    assert!(LedgerState::from_genesis(&g).is_ok());
    let mut g = genesis(2);
    g.key.tree_height = 6;
    assert!(matches!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::BadKeyParams(_))
    ));
    let mut g = genesis(2);
    g.validators[0].stake = u64::MAX;
    assert_eq!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::StakeOverflow)
    );
}
