//! Validator-set governance (issue 26): keys that must be curve points,
//! operators that change only their own validators, and a schedule that is
//! checked as a whole, whatever delay each change was queued with.

use palisade_runtime::TxError;
use palisade_types::{Action, KeyError, PublicKey, Role};

use crate::chain::*;

/// A second validator operator.
const OP2: u8 = 5;

fn add(i: u8, power: u64) -> Action {
    add_with_node(i, i, power)
}

fn add_with_node(i: u8, node: u8, power: u64) -> Action {
    Action::AddValidator {
        consensus_key: validator_key(i),
        node_key: key(200 + node).public_key(),
        power,
    }
}

fn remove(i: u8) -> Action {
    Action::RemoveValidator {
        consensus_key: validator_key(i),
    }
}

fn set_power(i: u8, power: u64) -> Action {
    Action::SetValidatorPower {
        consensus_key: validator_key(i),
        power,
    }
}

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

#[test]
fn an_operator_changes_only_the_validators_it_added() {
    let not_operator = TxError::NotValidatorOperator.code();
    let mut c = Chain::new();
    let grant = Action::GrantRole {
        account: key(OP2).address(),
        role: Role::ValidatorOperator,
    };
    assert!(c.run(ALICE, grant).is_success());
    assert!(c.run(OPERATOR, add(9, 3)).is_success()); // block 2, effective at 4
    c.commit(&[]);
    assert!(c
        .validators()
        .iter()
        .any(|v| v.consensus_key == validator_key(9)));

    // Another operator may change neither OPERATOR's validator nor a
    // genesis one (genesis validators have no operator): refused in the
    // mempool and in a block.
    for action in [set_power(9, 4), remove(9), set_power(0, 11), remove(0)] {
        let tx = c.tx(OP2, action.clone());
        assert!(c.check(&tx).is_err(), "{action:?} admitted");
        let r = c.commit(&[tx]).remove(0);
        assert_eq!(r.code, not_operator, "{action:?}: {r:?}");
    }
    // Its own operator may, and an admin may change any validator.
    assert!(c.run(OPERATOR, set_power(9, 4)).is_success());
    assert_eq!(c.run(OPERATOR, set_power(0, 11)).code, not_operator);
    assert!(c.run(ALICE, set_power(0, 11)).is_success());
    for _ in 0..3 {
        c.commit(&[]);
    }

    // Removing it forgets its operator: re-added by OP2, it is OP2's.
    assert!(c.run(OPERATOR, remove(9)).is_success());
    for _ in 0..3 {
        c.commit(&[]);
    }
    assert!(c.run(OP2, add(9, 2)).is_success());
    for _ in 0..3 {
        c.commit(&[]);
    }
    assert_eq!(c.run(OPERATOR, set_power(9, 1)).code, not_operator);
    assert!(c.run(OP2, set_power(9, 1)).is_success());
}
