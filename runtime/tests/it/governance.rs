//! Validator-set governance (issue 26): keys that must be curve points,
//! operators that change only their own validators, and a schedule that is
//! checked as a whole, whatever delay each change was queued with.

use palisade_runtime::{ChainParams, TxError, ValidatorInfo};
use palisade_types::{Action, KeyError, Keypair, Param, PublicKey, Role};
use proptest::prelude::*;

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

fn set_delay(d: u64) -> Action {
    Action::SetParam {
        param: Param::ValidatorUpdateDelay(d),
    }
}

fn with_delay(d: u64) -> Chain {
    Chain::with_params(ChainParams {
        validator_update_delay: d,
        ..ChainParams::default()
    })
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

#[test]
fn a_node_key_in_use_cannot_be_added_again() {
    let node_key_exists = TxError::NodeKeyExists.code();
    let mut c = Chain::new();
    // Validator 0's node key for a new validator.
    let tx = c.tx(ALICE, add_with_node(9, 0, 1));
    assert!(c.check(&tx).is_err());
    assert_eq!(c.commit(&[tx]).remove(0).code, node_key_exists);
    // Nor one that a pending addition takes.
    assert!(c.run(ALICE, add_with_node(9, 9, 1)).is_success());
    assert_eq!(c.run(ALICE, add_with_node(8, 9, 1)).code, node_key_exists);
    for _ in 0..4 {
        c.commit(&[]);
    }
    let set = c.validators();
    let mut node_keys: Vec<_> = set.iter().map(|v| v.node_key).collect();
    node_keys.sort();
    node_keys.dedup();
    assert_eq!(node_keys.len(), set.len());
}

#[test]
fn the_set_never_grows_past_the_validator_limit() {
    let too_many = TxError::TooManyValidators { max: 0 }.code();
    let v = |i: u16| {
        let mut seed = [7u8; 32];
        seed[..2].copy_from_slice(&i.to_le_bytes());
        Keypair::from_seed(seed).public_key()
    };
    let full: Vec<ValidatorInfo> = (0..1_000u16)
        .map(|i| ValidatorInfo {
            consensus_key: v(i),
            node_key: v(i + 2_000),
            power: 100,
        })
        .collect();
    let mut c = Chain::with_validators(ChainParams::default(), full);
    let tx = c.tx(ALICE, add(9, 1));
    assert!(c.check(&tx).is_err());
    assert_eq!(c.commit(&[tx]).remove(0).code, too_many);
    // Every later block still executes (`commit` panics otherwise).
    for _ in 0..3 {
        c.commit(&[]);
    }
    assert_eq!(c.validators().len(), 1_000);
    // Room is made by a removal that takes effect first.
    assert!(c
        .run(
            ALICE,
            Action::RemoveValidator {
                consensus_key: v(0)
            }
        )
        .is_success());
    c.commit(&[]);
    assert!(c.run(ALICE, add(9, 1)).is_success());
}

/// Changes queued while the delay was longer take effect after ones queued
/// later with a shorter delay; each new change is checked against them.
#[test]
fn a_change_that_breaks_one_queued_with_a_longer_delay_is_refused() {
    let conflict = TxError::ValidatorChangeConflict.code();
    let mut c = with_delay(10);
    assert!(c.run(ALICE, set_power(0, 12)).is_success()); // takes effect at 11
    assert!(c.run(ALICE, add_with_node(9, 9, 1)).is_success()); // at 12
    assert!(c.run(ALICE, set_delay(2)).is_success());
    // Removing validator 0 at 6 would leave the change at 11 without its
    // validator; taking validator 9's node key at 6, the addition at 12
    // with a duplicate.
    let tx = c.tx(ALICE, remove(0));
    assert!(c.check(&tx).is_err());
    assert_eq!(c.commit(&[tx]).remove(0).code, conflict);
    assert_eq!(c.run(ALICE, add_with_node(8, 9, 1)).code, conflict);
    for _ in 0..10 {
        c.commit(&[]);
    }
    let set = c.validators();
    assert_eq!(set.len(), 5);
    assert!(set
        .iter()
        .any(|v| v.consensus_key == validator_key(0) && v.power == 12));
}

/// Issue 26: removals queued one by one, each checked only against the set
/// at its own height, emptied the set; the block that did it failed to
/// execute on every node.
#[test]
fn no_sequence_of_changes_empties_the_set() {
    let mut c = with_delay(10);
    for i in 1..4 {
        c.run(ALICE, remove(i)); // at 11, 12, 13 (or refused)
    }
    assert!(c.run(ALICE, set_delay(2)).is_success());
    c.run(ALICE, remove(0)); // at 7 (or refused)
                             // Every block executes (`commit` panics otherwise) and the set stays.
    for _ in 0..12 {
        c.commit(&[]);
    }
    let set = c.validators();
    assert!(!set.is_empty());
    assert!(palisade_runtime::to_set(&set).is_ok());
}

#[test]
fn changes_within_one_delay_window_move_less_than_a_third() {
    let mut c = Chain::new(); // delay 2, four validators of power 10
    assert!(c.run(ALICE, remove(0)).is_success()); // at 3: 10 of 40
                                                   // Block 2's changes take effect at 4, in the same window of two
                                                   // heights: 10 + 9 of 40 is too much, 10 + 3 is not.
    let big = c.tx(ALICE, set_power(1, 1));
    let small = c.tx_with_nonce(ALICE, big.tx.nonce + 1, set_power(1, 7));
    let r = c.commit(&[big, small]);
    assert_eq!(r[0].code, TxError::ValidatorChangeTooLarge.code(), "{r:?}");
    assert!(r[1].is_success(), "{r:?}");
    // Once the window has passed, the next change is measured alone.
    c.commit(&[]);
    c.commit(&[]);
    assert!(c.run(ALICE, set_power(2, 2)).is_success()); // 8 of 27
}

#[test]
fn the_delay_is_raised_only_when_recent_changes_fit_its_windows() {
    let mut c = with_delay(1);
    assert!(c.run(ALICE, set_power(0, 1)).is_success()); // at 2: 9 of 40
    assert!(c.run(ALICE, set_power(1, 1)).is_success()); // at 3: 9 of 31
                                                         // With a delay of 10, heights 2 and 3 share a window: 18 of 40.
    let r = c.run(ALICE, set_delay(10));
    assert_eq!(r.code, TxError::InvalidParam("").code(), "{r:?}");
    // Lowering never hurts; raising works once the window has passed.
    while c.height.get() < 10 {
        c.commit(&[]);
    }
    assert!(c.run(ALICE, set_delay(10)).is_success(), "at height 11");
}

// Random governance by an admin and two operators, one delay per case:
// whatever is accepted, every block executes, the set stays valid with
// unique node keys, and no window of `delay` heights moves a third.

#[derive(Debug, Clone)]
enum Gov {
    Add {
        who: u8,
        i: u8,
        node: u8,
        power: u64,
    },
    Remove {
        who: u8,
        i: u8,
    },
    Power {
        who: u8,
        i: u8,
        power: u64,
    },
    Delay(u64),
}

fn gov() -> impl Strategy<Value = Gov> {
    let who = prop::sample::select(vec![ALICE, OPERATOR, OP2]);
    prop_oneof![
        (who.clone(), 0u8..12, 0u8..12, 1u64..15).prop_map(|(who, i, node, power)| Gov::Add {
            who,
            i,
            node,
            power
        }),
        (who.clone(), 0u8..12).prop_map(|(who, i)| Gov::Remove { who, i }),
        (who, 0u8..12, 1u64..15).prop_map(|(who, i, power)| Gov::Power { who, i, power }),
        (1u64..6).prop_map(Gov::Delay),
    ]
}

fn power_moved(before: &[ValidatorInfo], after: &[ValidatorInfo]) -> u64 {
    let power = |set: &[ValidatorInfo], k: &PublicKey| {
        set.iter()
            .find(|v| v.consensus_key == *k)
            .map_or(0, |v| v.power)
    };
    let mut keys: Vec<PublicKey> = before
        .iter()
        .chain(after)
        .map(|v| v.consensus_key)
        .collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .map(|k| power(before, k).abs_diff(power(after, k)))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_governance_keeps_the_set_valid(
        delay in 1u64..5,
        change_delay in any::<bool>(),
        blocks in proptest::collection::vec(proptest::collection::vec(gov(), 0..3), 1..25),
    ) {
        let mut c = with_delay(delay);
        c.run(ALICE, Action::GrantRole { account: key(OP2).address(), role: Role::ValidatorOperator });
        // sets[h] is the set that decides height h + 1.
        let mut sets = vec![c.validators()];
        for ops in blocks {
            let mut txs = Vec::new();
            let mut nonces = std::collections::BTreeMap::new();
            for op in ops {
                let (who, action) = match op {
                    Gov::Add { who, i, node, power } => (who, add_with_node(i, node, power)),
                    Gov::Remove { who, i } => (who, remove(i)),
                    Gov::Power { who, i, power } => (who, set_power(i, power)),
                    Gov::Delay(d) if change_delay => (ALICE, set_delay(d)),
                    Gov::Delay(_) => continue,
                };
                let n = nonces.entry(who).or_insert_with(|| c.account(who).nonce);
                txs.push(c.tx_with_nonce(who, *n, action));
                *n += 1;
            }
            let out = c.execute(&txs);
            prop_assert!(out.is_ok(), "block {} fails: {:?}", c.height.get() + 1, out.err());
            c.commit(&txs);
            let set = c.validators();
            prop_assert!(palisade_runtime::to_set(&set).is_ok());
            let mut node_keys: Vec<_> = set.iter().map(|v| v.node_key).collect();
            node_keys.sort();
            node_keys.dedup();
            prop_assert_eq!(node_keys.len(), set.len());
            sets.push(set);
        }
        // With one delay all along, check every window of it.
        if !change_delay {
            for a in 1..sets.len() {
                let total: u64 = sets[a - 1].iter().map(|v| v.power).sum();
                let end = (a + delay as usize - 1).min(sets.len() - 1);
                let moved: u64 = (a..=end).map(|h| power_moved(&sets[h - 1], &sets[h])).sum();
                prop_assert!(moved * 3 < total, "heights {a}..={end} move {moved} of {total}");
            }
        }
    }
}
