//! Validator-set governance (issue 26): keys that must be curve points,
//! operators that change only their own validators, and a schedule that is
//! checked as a whole, whatever delay each change was queued with.

use palisade_runtime::TxError;
use palisade_types::{Action, KeyError, PublicKey};

use crate::chain::*;

/// 32 bytes that are not an acceptable validator key: not a point (the
/// `0x02…` key of the report), the identity (small order), and the identity
/// encoded non-canonically (y = p + 1).
fn bad_keys() -> Vec<PublicKey> {
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut p_plus_one = [0xffu8; 32];
    p_plus_one[0] = 0xee;
    p_plus_one[31] = 0x7f;
    vec![
        PublicKey(not_a_point),
        PublicKey(identity),
        PublicKey(p_plus_one),
    ]
}

#[test]
fn a_validator_key_that_is_not_a_valid_point_is_refused_in_the_mempool_and_in_blocks() {
    let invalid_key = TxError::InvalidValidatorKey {
        key: "",
        reason: KeyError::NotOnCurve,
    }
    .code();
    let mut c = Chain::new();
    for bad in bad_keys() {
        for (consensus_key, node_key) in [(validator_key(9), bad), (bad, key(209).public_key())] {
            let tx = c.tx(
                ALICE,
                Action::AddValidator {
                    consensus_key,
                    node_key,
                    power: 1,
                },
            );
            let checked = c.check(&tx);
            assert!(checked.is_err(), "{bad:?} admitted");
            assert_eq!(checked.map_err(|e| e.code()), Err(invalid_key));
            let r = c.commit(&[tx]).remove(0);
            assert_eq!(r.code, invalid_key, "{bad:?}: {r:?}");
        }
    }
    // Nothing was scheduled: past the delay the set is still the genesis one.
    c.commit(&[]);
    c.commit(&[]);
    let set = c.validators();
    assert_eq!(set.len(), 4);
    for v in set {
        assert!(!bad_keys().contains(&v.node_key));
        assert!(!bad_keys().contains(&v.consensus_key));
    }
}
