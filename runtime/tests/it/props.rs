//! Properties: determinism, supply conservation, tamper rejection, proofs.

use palisade_runtime::{smt, MemStore, StateStore, TxError};
use palisade_types::{Action, BoundedBytes, SignedTransaction};
use proptest::prelude::*;

use crate::chain::*;

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: u8,
        to: u8,
        amount: u128,
    },
    Mint {
        to: u8,
        amount: u128,
    },
    Burn {
        from: u8,
        amount: u128,
    },
    Put {
        from: u8,
        ns: u8,
        key: u8,
        value: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = prop::sample::select(vec![ALICE, BOB, 77u8]);
    prop_oneof![
        (who.clone(), who.clone(), 0u128..2_000).prop_map(|(from, to, amount)| Op::Transfer {
            from,
            to,
            amount
        }),
        (who.clone(), 0u128..5_000).prop_map(|(to, amount)| Op::Mint { to, amount }),
        (who.clone(), 0u128..2_000).prop_map(|(from, amount)| Op::Burn { from, amount }),
        (
            who,
            0u8..3,
            0u8..4,
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(from, ns, key, value)| Op::Put {
                from,
                ns,
                key,
                value
            }),
    ]
}

fn signer_of(op: &Op) -> u8 {
    match op {
        Op::Transfer { from, .. } | Op::Burn { from, .. } | Op::Put { from, .. } => *from,
        Op::Mint { .. } => ALICE,
    }
}

fn action(op: &Op) -> Action {
    match op.clone() {
        Op::Transfer { to, amount, .. } => Action::Transfer {
            to: key(to).address(),
            amount,
        },
        Op::Mint { to, amount } => Action::Mint {
            to: key(to).address(),
            amount,
        },
        Op::Burn { amount, .. } => Action::Burn { amount },
        Op::Put {
            ns, key: k, value, ..
        } => Action::Put {
            namespace: BoundedBytes::new(vec![b'n', ns]).unwrap(),
            key: BoundedBytes::new(vec![k]).unwrap(),
            value: BoundedBytes::new(value).unwrap(),
        },
    }
}

/// Signed transactions for `ops` with consecutive nonces per signer,
/// dropping those from accounts that hold no role (inadmissible).
fn block(c: &Chain, ops: &[Op]) -> Vec<SignedTransaction> {
    let mut next = std::collections::BTreeMap::new();
    ops.iter()
        .filter(|o| c.account(signer_of(o)).roles != 0)
        .map(|o| {
            let s = signer_of(o);
            let n = next.entry(s).or_insert_with(|| c.account(s).nonce);
            let tx = c.tx_with_nonce(s, *n, action(o));
            *n += 1;
            tx
        })
        .collect()
}

fn total_balance(c: &Chain) -> u128 {
    [ALICE, BOB, CAROL, OPERATOR, 77]
        .iter()
        .map(|&n| c.account(n).balance)
        .sum()
}

fn supply(c: &Chain) -> u128 {
    let raw = c
        .store
        .get(palisade_runtime::state::keys::SUPPLY)
        .unwrap()
        .unwrap();
    borsh::from_slice(&raw).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_block_same_state_same_root(ops in proptest::collection::vec(op(), 0..30)) {
        let c = Chain::new();
        let txs = block(&c, &ops);
        let a = c.execute(&txs).unwrap();
        let b = c.execute(&txs).unwrap();
        prop_assert_eq!(a.changes.root, b.changes.root);
        prop_assert_eq!(&a.receipts, &b.receipts);
        prop_assert_eq!(a.receipts_root, b.receipts_root);
        // And on an independently built copy of the same state.
        let d = Chain::new();
        prop_assert_eq!(d.execute(&txs).unwrap().changes.root, a.changes.root);
    }

    #[test]
    fn supply_changes_only_by_mint_and_burn(blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..15), 1..4)) {
        let mut c = Chain::new();
        for ops in blocks {
            let before_total = total_balance(&c);
            let before_supply = supply(&c);
            prop_assert_eq!(before_total, before_supply);
            let txs = block(&c, &ops);
            let receipts = c.commit(&txs);
            let mut minted: i128 = 0;
            for (tx, r) in txs.iter().zip(&receipts) {
                if !r.is_success() { continue; }
                match &tx.tx.action {
                    Action::Mint { amount, .. } => minted += *amount as i128,
                    Action::Burn { amount } => minted -= *amount as i128,
                    _ => {}
                }
            }
            prop_assert_eq!(supply(&c) as i128, before_supply as i128 + minted);
            prop_assert_eq!(total_balance(&c), supply(&c));
        }
    }

    #[test]
    fn any_tampered_transaction_is_rejected(
        ops in proptest::collection::vec(op(), 1..5),
        which in any::<prop::sample::Index>(),
        byte in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let c = Chain::new();
        let txs = block(&c, &ops);
        prop_assume!(!txs.is_empty());
        let i = which.index(txs.len());
        let mut bytes = palisade_types::encode(&txs[i]);
        let at = byte.index(bytes.len());
        bytes[at] ^= 1 << bit;
        // Either it no longer decodes, or it decodes to a transaction the
        // runtime refuses (bad signature, other signer, other chain...).
        if let Ok(t) = palisade_types::decode::<SignedTransaction>(&bytes) {
            prop_assert_ne!(&t, &txs[i]);
            let verdict = c.check(&t);
            prop_assert!(verdict.is_err(), "tampered tx admitted: {:?}", t);
            let mut tampered = txs.clone();
            tampered[i] = t;
            prop_assert!(c.execute(&tampered).is_err());
        }
    }

    #[test]
    fn proofs_round_trip(keys in proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 1..8), proptest::collection::vec(any::<u8>(), 0..8), 1..40), probe in proptest::collection::vec(any::<u8>(), 1..8)) {
        let writes = keys.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let mut store = MemStore::default();
        let changes = palisade_runtime::commit_writes(&store, smt::EMPTY, writes).unwrap();
        store.apply(&changes);
        for (k, v) in &keys {
            let (got, proof) = palisade_runtime::get_with_proof(&store, changes.root, k).unwrap();
            prop_assert_eq!(got.as_ref(), Some(v));
            prop_assert!(smt::verify(&changes.root, k, Some(v), &proof));
        }
        let (got, proof) = palisade_runtime::get_with_proof(&store, changes.root, &probe).unwrap();
        prop_assert_eq!(got.as_ref(), keys.get(&probe));
        prop_assert!(smt::verify(&changes.root, &probe, got.as_deref(), &proof));
        let lie: Option<&[u8]> = if got.is_some() { None } else { Some(b"x") };
        prop_assert!(!smt::verify(&changes.root, &probe, lie, &proof));
    }
}

#[test]
fn untampered_transactions_are_admitted() {
    // Keeps the tamper property from passing vacuously.
    let c = Chain::new();
    let t = c.tx(
        BOB,
        Action::Transfer {
            to: key(ALICE).address(),
            amount: 1,
        },
    );
    assert_eq!(c.check(&t), Ok(()));
    let mut bad = t;
    bad.signature.0[3] ^= 4;
    assert_eq!(c.check(&bad), Err(TxError::BadSignature));
}
