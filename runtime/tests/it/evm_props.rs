//! Properties of EVM execution over random contract calls: the same
//! blocks give the same roots and receipts on another node, the token's
//! balances always sum to its supply, and the native supply stays the sum
//! of balances whatever value moves through the EVM.

use palisade_runtime::evm::evm_address;
use palisade_runtime::Receipt;
use palisade_types::{Action, BoundedBytes, EvmAddress, Hash, Role, SignedTransaction};
use proptest::prelude::*;

use crate::chain::{key, Chain, ALICE, BOB, CAROL};
use crate::evm::{init_code, token};

/// Runtime code: SSTORE(calldata word 0 mod 8, calldata word 1) (a write
/// of zero clears the slot, for refunds), then LOG1 with the slot as topic.
const SLOTS_RUNTIME: &[u8] = &[
    0x60, 0x20, 0x35, // CALLDATALOAD(32): value
    0x60, 0x08, 0x60, 0x00, 0x35, 0x06, // CALLDATALOAD(0) % 8: slot
    0x81, 0x81, 0x55, // SSTORE(slot, value)
    0x60, 0x00, 0x52, // MSTORE(0, slot)
    0x60, 0x00, 0x51, // MLOAD(0): the slot again, as the topic
    0x60, 0x20, 0x60, 0x00, 0xa1, // LOG1(0, 32, topic = slot)
    0x00, // STOP
];

const WHO: [u8; 3] = [ALICE, BOB, CAROL];

#[derive(Debug, Clone)]
enum Op {
    /// A token transfer between the three accounts (may revert: too much).
    Token {
        from: usize,
        to: usize,
        amount: u128,
    },
    /// Value sent to another account's EVM address through the EVM.
    Pay { from: usize, to: usize, value: u128 },
    /// A storage write (zero clears).
    Slot { from: usize, slot: u8, value: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..3;
    prop_oneof![
        (who.clone(), who.clone(), 0u128..400).prop_map(|(from, to, amount)| Op::Token {
            from,
            to,
            amount
        }),
        (who.clone(), who.clone(), 0u128..300).prop_map(|(from, to, value)| Op::Pay {
            from,
            to,
            value
        }),
        (who, any::<u8>(), prop_oneof![Just(0u8), any::<u8>()])
            .prop_map(|(from, slot, value)| Op::Slot { from, slot, value }),
    ]
}

fn call(to: EvmAddress, value: u128, data: Vec<u8>) -> Action {
    Action::EvmCall {
        to,
        value,
        data: BoundedBytes::new(data).unwrap(),
        gas_limit: 1_000_000,
    }
}

fn evm_of(n: u8) -> EvmAddress {
    evm_address(&key(n).address())
}

/// A chain with the token (ALICE holds 1,000) and the slots contract, and
/// BOB and CAROL members with balances no run can spend (a payment above
/// the balance is not executable: the block would be invalid).
fn setup() -> (Chain, EvmAddress, EvmAddress) {
    let mut c = Chain::new();
    for (n, role) in [(ALICE, Role::Deployer), (CAROL, Role::Member)] {
        crate::evm_actions::grant(&mut c, n, role);
    }
    for n in [BOB, CAROL] {
        let r = c.run(
            ALICE,
            Action::Mint {
                to: key(n).address(),
                amount: 1_000_000,
            },
        );
        assert_eq!(r.code, 0, "{r:?}");
    }
    let create = |code: Vec<u8>| Action::EvmCreate {
        value: 0,
        code: BoundedBytes::new(code).unwrap(),
        gas_limit: 5_000_000,
    };
    let r = c.run(ALICE, create(token::creation_code(1_000)));
    let tok = r.evm.as_ref().unwrap().contract_address.unwrap();
    let r = c.run(ALICE, create(init_code(SLOTS_RUNTIME)));
    assert_eq!(r.code, 0, "{r:?}");
    let slots = r.evm.as_ref().unwrap().contract_address.unwrap();
    (c, tok, slots)
}

fn action(op: &Op, tok: EvmAddress, slots: EvmAddress) -> (u8, Action) {
    match *op {
        Op::Token { from, to, amount } => (
            WHO[from],
            call(tok, 0, token::transfer(&evm_of(WHO[to]), amount)),
        ),
        Op::Pay { from, to, value } => (WHO[from], call(evm_of(WHO[to]), value, vec![])),
        Op::Slot { from, slot, value } => {
            let mut data = vec![0u8; 64];
            data[31] = slot;
            data[63] = value;
            (WHO[from], call(slots, 0, data))
        }
    }
}

fn signed(c: &Chain, ops: &[Op], tok: EvmAddress, slots: EvmAddress) -> Vec<SignedTransaction> {
    let mut next = std::collections::BTreeMap::new();
    ops.iter()
        .map(|o| {
            let (s, a) = action(o, tok, slots);
            let n = next.entry(s).or_insert_with(|| c.account(s).nonce);
            let tx = c.tx_with_nonce(s, *n, a);
            *n += 1;
            tx
        })
        .collect()
}

fn token_balance(c: &Chain, tok: EvmAddress, who: u8) -> u128 {
    let out = crate::evm_actions::view(c, evm_of(ALICE), tok, token::balance_of(&evm_of(who)));
    token::decode_u128(&out)
}

fn supply(c: &Chain) -> u128 {
    use palisade_runtime::StateStore;
    borsh::from_slice(&c.store.get(b"meta/supply").unwrap().unwrap()).unwrap()
}

/// Runs `blocks` on a fresh chain: each block's root and receipts.
fn run(blocks: &[Vec<Op>]) -> (Chain, EvmAddress, Vec<(Hash, Vec<Receipt>)>) {
    let (mut c, tok, slots) = setup();
    let mut out = Vec::new();
    for ops in blocks {
        let txs = signed(&c, ops, tok, slots);
        let receipts = c.commit(&txs);
        out.push((c.root, receipts));
    }
    (c, tok, out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_contract_calls_are_deterministic_and_conserve_value(
        blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..6)
    ) {
        let (c, tok, first) = run(&blocks);
        let (_, _, second) = run(&blocks);
        prop_assert_eq!(&first, &second);
        // Every transaction has a receipt with its gas; failures moved
        // nothing but are still receipts.
        for (ops, (_, receipts)) in blocks.iter().zip(&first) {
            prop_assert_eq!(ops.len(), receipts.len());
            for r in receipts {
                prop_assert!(r.evm.as_ref().is_some_and(|e| e.gas_used >= 21_000), "{r:?}");
            }
        }
        let tokens: u128 = WHO.iter().map(|w| token_balance(&c, tok, *w)).sum();
        prop_assert_eq!(tokens, 1_000);
        let natives: u128 = [ALICE, BOB, CAROL, crate::chain::OPERATOR]
            .iter()
            .map(|n| c.account(*n).balance)
            .sum();
        prop_assert_eq!(natives, supply(&c));
    }
}
