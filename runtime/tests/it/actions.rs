//! One or more tests per action and per admission rule.

use palisade_runtime::{
    get_with_proof, smt, BlockError, ChainParams, NonceRule, Signatures, StateStore, TxError,
    MAX_NONCE_GAP,
};
use palisade_types::{Action, BoundedBytes, ChainId, Height, Param, Role, Transaction};

use crate::chain::*;

fn transfer(to: u8, amount: u128) -> Action {
    Action::Transfer {
        to: key(to).address(),
        amount,
    }
}

fn put(ns: &[u8], k: &[u8], v: &[u8]) -> Action {
    Action::Put {
        namespace: BoundedBytes::new(ns.to_vec()).unwrap(),
        key: BoundedBytes::new(k.to_vec()).unwrap(),
        value: BoundedBytes::new(v.to_vec()).unwrap(),
    }
}

fn delete(ns: &[u8], k: &[u8]) -> Action {
    Action::Delete {
        namespace: BoundedBytes::new(ns.to_vec()).unwrap(),
        key: BoundedBytes::new(k.to_vec()).unwrap(),
    }
}

#[test]
fn transfer_moves_funds_and_uses_the_nonce() {
    let mut c = Chain::new();
    let r = c.run(ALICE, transfer(BOB, 250));
    assert!(r.is_success(), "{r:?}");
    assert_eq!(c.account(ALICE).balance, 1_000_000 - 250);
    assert_eq!(c.account(ALICE).nonce, 1);
    assert_eq!(c.account(BOB).balance, 1_250);
    assert_eq!(r.events[0].kind, "transfer");
}

#[test]
fn transfer_to_a_new_address_creates_it() {
    let mut c = Chain::new();
    let r = c.run(BOB, transfer(77, 10));
    assert!(r.is_success());
    assert_eq!(c.account(77).balance, 10);
    assert_eq!(c.account(77).roles, 0);
}

#[test]
fn transfer_failures_change_nothing_but_the_nonce() {
    let mut c = Chain::new();
    let before_root = c.root;
    let r = c.run(BOB, transfer(ALICE, 1_001));
    assert_eq!(
        r.code,
        TxError::InsufficientFunds {
            balance: 0,
            needed: 0
        }
        .code()
    );
    assert_eq!(c.account(BOB).balance, 1_000);
    assert_eq!(c.account(BOB).nonce, 1);
    assert_ne!(c.root, before_root, "the nonce moved");
    let r = c.run(BOB, transfer(ALICE, 0));
    assert_eq!(r.code, TxError::ZeroAmount.code());
    // Self-transfer is allowed and a no-op on the balance.
    let r = c.run(BOB, transfer(BOB, 5));
    assert!(r.is_success());
    assert_eq!(c.account(BOB).balance, 1_000);
}

#[test]
fn transfer_needs_the_member_role() {
    let mut c = Chain::new();
    // The operator holds a role (so it is admissible) but not `member`.
    let r = c.run(OPERATOR, transfer(BOB, 0));
    assert_eq!(r.code, TxError::Unauthorized("member").code());
    assert_eq!(
        c.check(&c.tx(OPERATOR, transfer(BOB, 1))),
        Err(TxError::Unauthorized("member"))
    );
}

/// The mempool tries a native action out before admitting it: for each
/// of these actions and three signers holding different roles, it refuses
/// exactly the transactions that execution fails, with the same error
/// (unauthorized ones, and ones failing for funds, another's namespace or
/// a missing key).
#[test]
fn the_mempool_refuses_exactly_what_execution_fails() {
    let mut c = Chain::new();
    assert!(c.run(BOB, put(b"bobs", b"k", b"v")).is_success());
    let actions = [
        transfer(BOB, 1),
        transfer(BOB, 1 << 100),
        Action::Burn { amount: 1 },
        Action::Mint {
            to: key(BOB).address(),
            amount: 1,
        },
        put(b"shared", b"k", b"v"),
        delete(b"nobody", b"k"),
        delete(b"bobs", b"absent"),
        Action::GrantRole {
            account: key(CAROL).address(),
            role: Role::Member,
        },
        Action::RevokeRole {
            account: key(BOB).address(),
            role: Role::Minter,
        },
    ];
    let (mut refused, mut admitted) = (0, 0);
    for signer in [ALICE, BOB, OPERATOR] {
        for action in &actions {
            let tx = c.tx(signer, action.clone());
            let receipt = &c
                .execute(std::slice::from_ref(&tx))
                .expect("executes")
                .receipts[0];
            match c.check(&tx) {
                Ok(()) => {
                    admitted += 1;
                    assert!(receipt.is_success(), "{signer} {action:?}: {receipt:?}");
                }
                Err(e) => {
                    refused += 1;
                    assert_eq!(receipt.code, e.code(), "{signer} {action:?}");
                    assert_eq!(receipt.error, e.to_string(), "{signer} {action:?}");
                }
            }
        }
    }
    assert!(
        refused >= 8 && admitted >= 8,
        "{refused} refused, {admitted} admitted"
    );
}

#[test]
fn account_without_role_is_refused_at_mempool_and_at_execution() {
    let c = Chain::new();
    let tx = c.tx(CAROL, transfer(BOB, 1));
    assert_eq!(c.check(&tx), Err(TxError::UnknownSigner));
    // A Byzantine proposer that sneaks it in gains nothing: execution
    // refuses it, and it changes nothing.
    assert_eq!(c.refused(&[tx], 0), TxError::UnknownSigner);
    let stranger = c.tx(99, transfer(BOB, 1));
    assert_eq!(c.check(&stranger), Err(TxError::UnknownSigner));
}

#[test]
fn mint_and_burn() {
    let mut c = Chain::new();
    assert!(c
        .run(
            ALICE,
            Action::Mint {
                to: key(BOB).address(),
                amount: 50
            }
        )
        .is_success());
    assert_eq!(c.account(BOB).balance, 1_050);
    let r = c.run(
        BOB,
        Action::Mint {
            to: key(BOB).address(),
            amount: 50,
        },
    );
    assert_eq!(r.code, TxError::Unauthorized("minter").code());
    assert!(c.run(BOB, Action::Burn { amount: 50 }).is_success());
    assert_eq!(c.account(BOB).balance, 1_000);
    let r = c.run(BOB, Action::Burn { amount: 5_000 });
    assert_eq!(
        r.code,
        TxError::InsufficientFunds {
            balance: 0,
            needed: 0
        }
        .code()
    );
    let r = c.run(
        ALICE,
        Action::Mint {
            to: key(BOB).address(),
            amount: u128::MAX,
        },
    );
    assert_eq!(r.code, TxError::Overflow.code());
}

#[test]
fn put_get_delete_with_namespace_ownership() {
    let mut c = Chain::new();
    assert!(c.run(BOB, put(b"app", b"k", b"v1")).is_success());
    let key = palisade_runtime::state::keys::data(b"app", b"k");
    assert_eq!(c.store.get(&key).unwrap(), Some(b"v1".to_vec()));
    // Alice does not own "app".
    let r = c.run(ALICE, put(b"app", b"k", b"evil"));
    assert_eq!(r.code, TxError::NamespaceOwned.code());
    assert_eq!(c.store.get(&key).unwrap(), Some(b"v1".to_vec()));
    let r = c.run(ALICE, delete(b"app", b"k"));
    assert_eq!(r.code, TxError::NamespaceOwned.code());
    assert!(c.run(BOB, put(b"app", b"k", b"v2")).is_success());
    assert!(c.run(BOB, delete(b"app", b"k")).is_success());
    assert_eq!(c.store.get(&key).unwrap(), None);
    let r = c.run(BOB, delete(b"app", b"k"));
    assert_eq!(r.code, TxError::KeyNotFound.code());
    let r = c.run(BOB, put(b"", b"k", b"v"));
    assert_eq!(r.code, TxError::EmptyNamespace.code());
}

#[test]
fn value_size_follows_the_chain_parameter() {
    let mut c = Chain::with_params(ChainParams {
        max_value_bytes: 8,
        ..ChainParams::default()
    });
    assert!(c.run(BOB, put(b"ns", b"k", b"12345678")).is_success());
    let r = c.run(BOB, put(b"ns", b"k", b"123456789"));
    assert_eq!(r.code, TxError::ValueTooLarge { size: 0, max: 0 }.code());
}

#[test]
fn grant_and_revoke_roles() {
    let mut c = Chain::new();
    assert!(c
        .run(
            ALICE,
            Action::GrantRole {
                account: key(CAROL).address(),
                role: Role::Member
            }
        )
        .is_success());
    assert!(c.account(CAROL).has(Role::Member));
    // Carol may now transact.
    assert!(c.run(CAROL, transfer(BOB, 1)).is_success());
    let r = c.run(
        BOB,
        Action::GrantRole {
            account: key(BOB).address(),
            role: Role::Admin,
        },
    );
    assert_eq!(r.code, TxError::Unauthorized("admin").code());
    assert!(c
        .run(
            ALICE,
            Action::RevokeRole {
                account: key(CAROL).address(),
                role: Role::Member
            }
        )
        .is_success());
    assert_eq!(
        c.check(&c.tx(CAROL, transfer(BOB, 1))),
        Err(TxError::UnknownSigner)
    );
}

#[test]
fn the_last_admin_cannot_be_removed() {
    let mut c = Chain::new();
    let r = c.run(
        ALICE,
        Action::RevokeRole {
            account: key(ALICE).address(),
            role: Role::Admin,
        },
    );
    assert_eq!(r.code, TxError::LastAdmin.code());
    assert!(c.account(ALICE).has(Role::Admin));
    assert!(c
        .run(
            ALICE,
            Action::GrantRole {
                account: key(BOB).address(),
                role: Role::Admin
            }
        )
        .is_success());
    assert!(c
        .run(
            ALICE,
            Action::RevokeRole {
                account: key(ALICE).address(),
                role: Role::Admin
            }
        )
        .is_success());
    assert!(!c.account(ALICE).has(Role::Admin));
}

#[test]
fn validator_changes_take_effect_after_the_delay() {
    let mut c = Chain::new();
    let new = validator_key(9);
    let r = c.run(
        OPERATOR,
        Action::AddValidator {
            consensus_key: new,
            node_key: key(209).public_key(),
            power: 5,
        },
    );
    assert!(r.is_success(), "{r:?}");
    // Block 1 scheduled it for height 1 + 2 = 3: block 2's next set has it.
    let out = c.execute(&[]).unwrap(); // block 2
    assert_eq!(out.next_validator_set.power_of(&new), 5);
    c.commit(&[]);
    // The operator that added it may change its power.
    let r = c.run(
        OPERATOR,
        Action::SetValidatorPower {
            consensus_key: new,
            power: 8,
        },
    );
    assert!(r.is_success(), "{r:?}");
    let r = c.run(BOB, Action::RemoveValidator { consensus_key: new });
    assert_eq!(r.code, TxError::Unauthorized("validator_operator").code());
}

#[test]
fn validator_changes_are_bounded_per_step() {
    let mut c = Chain::new();
    // Total power 40: a change of 14 (>= 40/3) in one step is refused.
    let r = c.run(
        ALICE,
        Action::AddValidator {
            consensus_key: validator_key(9),
            node_key: key(209).public_key(),
            power: 14,
        },
    );
    assert_eq!(r.code, TxError::ValidatorChangeTooLarge.code());
    // 13 is fine, but a second change due at the same height that brings
    // the sum to a third is not.
    let k9 = validator_key(9);
    let a = c.tx(
        ALICE,
        Action::AddValidator {
            consensus_key: k9,
            node_key: key(209).public_key(),
            power: 13,
        },
    );
    let b = c.tx_with_nonce(
        ALICE,
        c.account(ALICE).nonce + 1,
        Action::RemoveValidator {
            consensus_key: validator_key(0),
        },
    );
    let receipts = c.commit(&[a, b]);
    assert!(receipts[0].is_success());
    assert_eq!(receipts[1].code, TxError::ValidatorChangeTooLarge.code());
    // Unknown and duplicate validators.
    let r = c.run(
        ALICE,
        Action::RemoveValidator {
            consensus_key: validator_key(42),
        },
    );
    assert_eq!(r.code, TxError::ValidatorNotFound.code());
    let r = c.run(
        ALICE,
        Action::AddValidator {
            consensus_key: validator_key(1),
            node_key: key(201).public_key(),
            power: 1,
        },
    );
    assert_eq!(r.code, TxError::ValidatorExists.code());
    let r = c.run(
        ALICE,
        Action::SetValidatorPower {
            consensus_key: validator_key(1),
            power: 0,
        },
    );
    assert_eq!(r.code, TxError::InvalidPower { max: 0 }.code());
}

#[test]
fn set_param_is_admin_only_and_validated() {
    let mut c = Chain::new();
    assert!(c
        .run(
            ALICE,
            Action::SetParam {
                param: Param::MaxValueBytes(4)
            }
        )
        .is_success());
    let r = c.run(BOB, put(b"ns", b"k", b"12345"));
    assert_eq!(r.code, TxError::ValueTooLarge { size: 0, max: 0 }.code());
    let r = c.run(
        BOB,
        Action::SetParam {
            param: Param::MaxValueBytes(100),
        },
    );
    assert_eq!(r.code, TxError::Unauthorized("admin").code());
    let r = c.run(
        ALICE,
        Action::SetParam {
            param: Param::ValidatorUpdateDelay(0),
        },
    );
    assert_eq!(r.code, TxError::InvalidParam("").code());
    let r = c.run(
        ALICE,
        Action::SetParam {
            param: Param::MaxBlockTxs(0),
        },
    );
    assert_eq!(r.code, TxError::InvalidParam("").code());
}

/// An admin can always raise a lowered limit again: every governance
/// transaction fits the smallest `max_tx_bytes`, which fits the smallest
/// `max_block_bytes`.
#[test]
fn every_governance_tx_fits_the_smallest_limits() {
    use palisade_runtime::{MIN_MAX_BLOCK_BYTES, MIN_MAX_TX_BYTES};
    let chain_id = ChainId::new("c".repeat(palisade_types::limits::MAX_CHAIN_ID_LEN)).unwrap();
    let k = validator_key(0);
    let who = key(OPERATOR).address();
    let actions = [
        Action::AddValidator {
            consensus_key: k,
            node_key: k,
            power: u64::MAX,
        },
        Action::RemoveValidator { consensus_key: k },
        Action::SetValidatorPower {
            consensus_key: k,
            power: u64::MAX,
        },
        Action::GrantRole {
            account: who,
            role: Role::ValidatorOperator,
        },
        Action::RevokeRole {
            account: who,
            role: Role::ValidatorOperator,
        },
        Action::SetParam {
            param: Param::ValidatorUpdateDelay(u64::MAX),
        },
    ];
    let largest = actions
        .into_iter()
        .map(|action| {
            Transaction {
                chain_id: chain_id.clone(),
                nonce: u64::MAX,
                signer: key(ALICE).address(),
                action,
            }
            .sign(&key(ALICE))
            .encoded_len()
        })
        .max()
        .unwrap();
    assert_eq!(largest, 231, "update the note on MIN_MAX_TX_BYTES");
    assert!(largest <= MIN_MAX_TX_BYTES as usize);
    // Valid together: the smallest block holds the largest transaction.
    let lowest = ChainParams {
        max_tx_bytes: MIN_MAX_TX_BYTES,
        max_block_bytes: MIN_MAX_BLOCK_BYTES,
        ..ChainParams::default()
    };
    assert!(lowest.validate().is_ok());
}

#[test]
fn nonces_are_strict_in_blocks_and_windowed_in_the_mempool() {
    let mut c = Chain::new();
    let skip = c.tx_with_nonce(BOB, 1, transfer(ALICE, 1));
    assert_eq!(
        c.refused(std::slice::from_ref(&skip), 0),
        TxError::BadNonce {
            expected: 0,
            got: 1
        }
    );
    // The mempool keeps it for later.
    assert_eq!(c.check(&skip), Ok(()));
    let far = c.tx_with_nonce(BOB, MAX_NONCE_GAP + 1, transfer(ALICE, 1));
    assert!(matches!(
        c.check(&far),
        Err(TxError::NonceTooFarAhead { .. })
    ));
    // Replay: the same transaction twice.
    let t = c.tx(BOB, transfer(ALICE, 1));
    c.commit(std::slice::from_ref(&t));
    assert!(matches!(
        c.check(&t),
        Err(TxError::BadNonce {
            expected: 1,
            got: 0
        })
    ));
    assert_eq!(
        c.refused(std::slice::from_ref(&t), 0),
        TxError::BadNonce {
            expected: 1,
            got: 0
        }
    );
    // The same tx twice in one block.
    let t2 = c.tx(BOB, transfer(ALICE, 1));
    assert!(matches!(
        c.execute(&[t2.clone(), t2]),
        Err(BlockError::DuplicateTx(_))
    ));
    // In order within one block.
    let a = c.tx_with_nonce(BOB, 1, transfer(ALICE, 1));
    let b = c.tx_with_nonce(BOB, 2, transfer(ALICE, 1));
    assert!(c.execute(&[a, b]).is_ok());
}

#[test]
fn wrong_chain_bad_signature_and_size_are_inadmissible() {
    let c = Chain::new();
    let k = key(BOB);
    let other = Transaction {
        chain_id: ChainId::new("other-chain").unwrap(),
        nonce: 0,
        signer: k.address(),
        action: transfer(ALICE, 1),
    }
    .sign(&k);
    assert!(matches!(c.check(&other), Err(TxError::WrongChainId { .. })));
    let mut forged = c.tx(BOB, transfer(ALICE, 1));
    forged.tx.action = transfer(ALICE, 999);
    assert_eq!(c.check(&forged), Err(TxError::BadSignature));
    assert!(matches!(
        c.execute(&[forged]),
        Err(BlockError::InadmissibleTx {
            error: TxError::BadSignature,
            ..
        })
    ));
    let small = Chain::with_params(ChainParams {
        max_tx_bytes: 256,
        ..ChainParams::default()
    });
    let big = small.tx(BOB, put(b"ns", b"k", &[0u8; 300]));
    assert!(matches!(small.check(&big), Err(TxError::TooLarge { .. })));
}

#[test]
fn block_limits() {
    let c = Chain::with_params(ChainParams {
        max_block_txs: 1,
        ..ChainParams::default()
    });
    let a = c.tx_with_nonce(BOB, 0, transfer(ALICE, 1));
    let b = c.tx_with_nonce(BOB, 1, transfer(ALICE, 1));
    assert!(matches!(
        c.execute(&[a, b]),
        Err(BlockError::TooManyTxs { count: 2, max: 1 })
    ));
}

#[test]
fn signatures_verified_elsewhere_are_not_rechecked() {
    let c = Chain::new();
    let mut forged = c.tx(BOB, transfer(ALICE, 1));
    forged.signature.0[0] ^= 1;
    let out =
        c.rt.execute_block(&c.store, c.root, Height(1), &[forged], Signatures::Verified);
    assert!(out.is_ok(), "the caller vouched for the signature");
    let _ = NonceRule::Exact;
}

#[test]
fn state_reads_come_with_proofs() {
    let mut c = Chain::new();
    c.run(BOB, put(b"app", b"k", b"v"));
    let key = palisade_runtime::state::keys::data(b"app", b"k");
    let (v, proof) = get_with_proof(&c.store, c.root, &key).unwrap();
    assert_eq!(v.as_deref(), Some(b"v".as_slice()));
    assert!(smt::verify(&c.root, &key, Some(b"v"), &proof));
    let missing = palisade_runtime::state::keys::data(b"app", b"nope");
    let (v, proof) = get_with_proof(&c.store, c.root, &missing).unwrap();
    assert_eq!(v, None);
    assert!(smt::verify(&c.root, &missing, None, &proof));
    // A historical read at an older root still proves the old value.
    let old_root = c.root;
    c.run(BOB, put(b"app", b"k", b"v2"));
    let (v, proof) = get_with_proof(&c.store, old_root, &key).unwrap();
    assert_eq!(v.as_deref(), Some(b"v".as_slice()));
    assert!(smt::verify(&old_root, &key, Some(b"v"), &proof));
    assert!(!smt::verify(&c.root, &key, Some(b"v"), &proof));
}
