//! Native accounts in the EVM: `evm_call` and `evm_create` signed with
//! ed25519, one balance seen from both sides, the `member` and `deployer`
//! rules at admission and in execution, EVM roles of 20-byte addresses,
//! gas limits per transaction and per block, fees, and receipts.

use palisade_runtime::evm::{self, evm_address, keys, AtRoot, EvmCall, EvmStatus, EvmTarget};
use palisade_runtime::{ChainParams, Receipt, StateStore, TxError, MAX_TX_GAS, MIN_MAX_BLOCK_GAS};
use palisade_types::{Action, BoundedBytes, EvmAddress, Role};

use crate::chain::{key, Chain, ALICE, BOB, CAROL};
use crate::evm::{init_code, token, FACTORY_RUNTIME};

fn evm_of(n: u8) -> EvmAddress {
    evm_address(&key(n).address())
}

fn call(to: EvmAddress, value: u128, data: Vec<u8>) -> Action {
    Action::EvmCall {
        to,
        value,
        data: BoundedBytes::new(data).unwrap(),
        gas_limit: 1_000_000,
    }
}

fn create(code: Vec<u8>) -> Action {
    Action::EvmCreate {
        value: 0,
        code: BoundedBytes::new(code).unwrap(),
        gas_limit: 5_000_000,
    }
}

fn supply(c: &Chain) -> u128 {
    borsh::from_slice(&c.store.get(b"meta/supply").unwrap().unwrap()).unwrap()
}

fn evm_nonce(c: &Chain, a: &EvmAddress) -> u64 {
    evm::read_account(
        &AtRoot {
            store: &c.store,
            root: c.root,
        },
        a,
    )
    .unwrap()
    .map_or(0, |r| r.nonce)
}

pub fn grant(c: &mut Chain, n: u8, role: Role) {
    let r = c.run(
        ALICE,
        Action::GrantRole {
            account: key(n).address(),
            role,
        },
    );
    assert_eq!(r.code, 0, "{r:?}");
}

/// `data` called on `to` as `from`, read-only at the latest root.
pub fn view(c: &Chain, from: EvmAddress, to: EvmAddress, data: Vec<u8>) -> Vec<u8> {
    let env = palisade_runtime::evm_env(
        &palisade_runtime::BlockContext::from(c.height),
        &ChainParams::default(),
    );
    let out = evm::call_evm(
        &AtRoot {
            store: &c.store,
            root: c.root,
        },
        &env,
        &EvmCall {
            caller: from,
            target: EvmTarget::Call(to),
            value: 0,
            data,
            gas_limit: 1_000_000,
            gas_price: 0,
            priority_fee: None,
            access_list: Vec::new(),
            nonce: 0,
        },
        false,
    )
    .unwrap();
    assert_eq!(out.status, EvmStatus::Success, "{out:?}");
    out.output
}

fn deploy_token(c: &mut Chain, supply: u128) -> EvmAddress {
    grant(c, ALICE, Role::Deployer);
    let before = evm_nonce(c, &evm_of(ALICE));
    let r = c.run(ALICE, create(token::creation_code(supply)));
    assert_eq!(r.code, 0, "{r:?}");
    let created = r.evm.as_ref().unwrap().contract_address.unwrap();
    let expected = revm::primitives::Address::from(evm_of(ALICE).0).create(before);
    assert_eq!(created.0, expected.0 .0);
    created
}

#[test]
fn a_native_account_has_one_balance_seen_from_the_evm() {
    let mut c = Chain::new();
    let supply_before = supply(&c);
    let alice_before = c.account(ALICE).balance;
    let bob_before = c.account(BOB).balance;
    // Alice pays Bob's EVM address: Bob's native balance grows.
    let r = c.run(ALICE, call(evm_of(BOB), 250, vec![]));
    assert_eq!(r.code, 0, "{r:?}");
    let e = r.evm.as_ref().unwrap();
    assert_eq!(e.gas_used, 21_000);
    assert!(e.logs.is_empty());
    assert_eq!(c.account(ALICE).balance, alice_before - 250);
    assert_eq!(c.account(BOB).balance, bob_before + 250);
    assert_eq!(supply(&c), supply_before, "value moved, none made");
    // No EVM balance record appears for a native account's address.
    let rec = evm::read_account(
        &AtRoot {
            store: &c.store,
            root: c.root,
        },
        &evm_of(BOB),
    )
    .unwrap();
    assert_eq!(rec, None, "Bob has no EVM nonce, so no record");
    // The native nonce and the EVM nonce are counted apart.
    assert_eq!(c.account(ALICE).nonce, 1);
    assert_eq!(evm_nonce(&c, &evm_of(ALICE)), 1);
    let r = c.run(
        ALICE,
        Action::Transfer {
            to: key(BOB).address(),
            amount: 1,
        },
    );
    assert_eq!(r.code, 0);
    assert_eq!(c.account(ALICE).nonce, 2);
    assert_eq!(evm_nonce(&c, &evm_of(ALICE)), 1);
    // Roles and nonce of the native record survive the EVM's writes.
    assert_eq!(
        c.account(ALICE).role_list(),
        vec![Role::Admin, Role::Member, Role::Minter]
    );
}

#[test]
fn an_account_created_by_a_transfer_is_visible_to_the_evm() {
    let mut c = Chain::new();
    let fresh = key(77).address();
    let r = c.run(
        ALICE,
        Action::Transfer {
            to: fresh,
            amount: 5,
        },
    );
    assert_eq!(r.code, 0);
    let at = AtRoot {
        store: &c.store,
        root: c.root,
    };
    assert_eq!(
        evm::read_native(&at, &evm_address(&fresh)).unwrap(),
        Some(fresh)
    );
    // Value sent to its EVM address lands in its native balance.
    let r = c.run(ALICE, call(evm_address(&fresh), 7, vec![]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.account_of(&fresh).balance, 12);
}

#[test]
fn an_erc20_deployed_and_used_by_native_accounts() {
    let mut c = Chain::new();
    let tokn = deploy_token(&mut c, 1_000);
    assert_eq!(
        token::decode_u128(&view(
            &c,
            evm_of(BOB),
            tokn,
            token::balance_of(&evm_of(ALICE))
        )),
        1_000
    );
    let r = c.run(ALICE, call(tokn, 0, token::transfer(&evm_of(BOB), 30)));
    assert_eq!(r.code, 0, "{r:?}");
    let e = r.evm.unwrap();
    assert_eq!(e.logs.len(), 1);
    assert_eq!(e.logs[0].address, tokn);
    assert_eq!(
        e.logs[0].topics[0].0,
        revm::primitives::keccak256(b"Transfer(address,address,uint256)").0
    );
    assert_eq!(&e.logs[0].topics[2].0[12..], evm_of(BOB).as_bytes());
    assert_eq!(
        token::decode_u128(&view(
            &c,
            evm_of(BOB),
            tokn,
            token::balance_of(&evm_of(BOB))
        )),
        30
    );
    // The storage slot is in the state root (`state_get` proves it).
    let mut slot_key = [0u8; 64];
    slot_key[12..32].copy_from_slice(evm_of(BOB).as_bytes());
    slot_key[63] = 1; // `balanceOf` is the contract's slot 1
    let slot = revm::primitives::keccak256(slot_key).0;
    let key = keys::slot(&tokn, &slot);
    let (v, proof) = palisade_runtime::get_with_proof(&c.store, c.root, &key).unwrap();
    let mut want = [0u8; 32];
    want[31] = 30;
    assert_eq!(v.as_deref(), Some(want.as_slice()));
    assert!(palisade_runtime::smt::verify(
        &c.root,
        &key,
        Some(&want),
        &proof
    ));
}

#[test]
fn a_revert_fails_the_transaction_with_its_reason_and_uses_both_nonces() {
    let mut c = Chain::new();
    let tokn = deploy_token(&mut c, 1_000);
    // transferFrom without an allowance: require(..., "allowance exceeded").
    let data = [
        token::selector("transferFrom(address,address,uint256)").to_vec(),
        [vec![0u8; 12], evm_of(ALICE).0.to_vec()].concat(),
        [vec![0u8; 12], evm_of(BOB).0.to_vec()].concat(),
        {
            let mut w = vec![0u8; 32];
            w[31] = 5;
            w
        },
    ]
    .concat();
    let before = c.account(BOB);
    // The mempool admits it (a revert is the sender's to learn from the receipt).
    let tx = c.tx(BOB, call(tokn, 0, data));
    assert_eq!(c.check(&tx), Ok(()));
    let r: Receipt = c.commit(&[tx]).remove(0);
    assert_eq!(r.code, TxError::EvmReverted { reason: None }.code());
    assert_eq!(r.error, "execution reverted: allowance exceeded");
    let e = r.evm.unwrap();
    assert_eq!(&e.output[..4], &[0x08, 0xc3, 0x79, 0xa0]);
    assert!(e.logs.is_empty());
    assert!(e.gas_used > 21_000);
    assert_eq!(c.account(BOB).nonce, before.nonce + 1);
    assert_eq!(c.account(BOB).balance, before.balance);
    assert_eq!(evm_nonce(&c, &evm_of(BOB)), 1);

    // A custom error: the receipt carries its data, the message no reason.
    let r = c.run(BOB, call(tokn, 0, token::transfer(&evm_of(CAROL), 5)));
    assert_eq!(r.error, "execution reverted");
    let out = r.evm.unwrap().output;
    assert_eq!(
        &out[..4],
        &token::selector("InsufficientBalance(uint256,uint256)")
    );
}

#[test]
fn creating_needs_deployer_and_execution_refuses_a_creation_without_it() {
    let mut c = Chain::new();
    let code = init_code(&[0x00]);
    // Bob is a member but no deployer.
    let tx = c.tx(BOB, create(code.clone()));
    assert_eq!(c.check(&tx), Err(TxError::Unauthorized("deployer")));
    // A proposer that includes it anyway gains nothing: execution refuses
    // it on every node alike.
    assert_eq!(c.refused(&[tx], 0), TxError::Unauthorized("deployer"));
    // A deployer without member may not either.
    let r = c.run(
        ALICE,
        Action::GrantRole {
            account: key(CAROL).address(),
            role: Role::Deployer,
        },
    );
    assert_eq!(r.code, 0);
    let tx = c.tx(CAROL, create(code.clone()));
    assert_eq!(c.check(&tx), Err(TxError::Unauthorized("member")));
    assert_eq!(c.refused(&[tx], 0), TxError::Unauthorized("member"));
    // Granted deployer, Bob creates.
    grant(&mut c, BOB, Role::Deployer);
    let r = c.run(BOB, create(code));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.evm.unwrap().contract_address.is_some());
}

#[test]
fn a_factory_cannot_create_for_a_sender_without_deployer() {
    let mut c = Chain::new();
    grant(&mut c, ALICE, Role::Deployer);
    let r = c.run(ALICE, create(init_code(FACTORY_RUNTIME)));
    let factory = r.evm.unwrap().contract_address.unwrap();
    // Bob (member) calls the factory: the mempool refuses it...
    let tx = c.tx(BOB, call(factory, 0, vec![]));
    assert_eq!(c.check(&tx), Err(TxError::Unauthorized("deployer")));
    // ...and a block that holds it fails it as a whole, in every node's
    // execution alike: the factory created nothing.
    let root = c.root;
    let r = c.commit(&[tx]).remove(0);
    assert_ne!(c.root, root);
    assert_eq!(r.code, TxError::Unauthorized("").code());
    assert_eq!(r.error, "signer lacks the deployer role");
    assert_eq!(evm_nonce(&c, &factory), 1, "no child contract");
    // Alice, a deployer, can.
    let r = c.run(ALICE, call(factory, 0, vec![]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(evm_nonce(&c, &factory), 2);
}

#[test]
fn evm_roles_go_to_the_native_account_or_to_the_address() {
    let mut c = Chain::new();
    let outsider = EvmAddress([0x42; 20]);
    let at = |c: &Chain, a: &EvmAddress| {
        evm::read_roles(
            &AtRoot {
                store: &c.store,
                root: c.root,
            },
            a,
        )
        .unwrap()
    };
    let r = c.run(
        ALICE,
        Action::GrantEvmRole {
            address: outsider,
            role: Role::Member,
        },
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(at(&c, &outsider), 1 << Role::Member as u8);
    assert_eq!(r.events[0].kind, "grant");
    // Only member and deployer.
    let r = c.run(
        ALICE,
        Action::GrantEvmRole {
            address: outsider,
            role: Role::Admin,
        },
    );
    assert_eq!(r.code, TxError::RoleNotForEvmAddress("").code());
    // Bob's EVM address names Bob.
    let r = c.run(
        ALICE,
        Action::GrantEvmRole {
            address: evm_of(BOB),
            role: Role::Deployer,
        },
    );
    assert_eq!(r.code, 0);
    assert!(c.account(BOB).has(Role::Deployer));
    let r = c.run(
        ALICE,
        Action::RevokeEvmRole {
            address: outsider,
            role: Role::Member,
        },
    );
    assert_eq!(r.code, 0);
    assert_eq!(at(&c, &outsider), 0);
    assert_eq!(
        c.store.get(&keys::roles(&outsider)).unwrap(),
        None,
        "no empty record"
    );
    // Only admins grant.
    let r = c.run(
        BOB,
        Action::GrantEvmRole {
            address: outsider,
            role: Role::Member,
        },
    );
    assert_eq!(r.code, TxError::Unauthorized("").code());
}

#[test]
fn gas_limits_hold_per_transaction_and_per_block() {
    let mut c = Chain::with_params(ChainParams {
        max_block_gas: MIN_MAX_BLOCK_GAS,
        ..ChainParams::default()
    });
    let big = |to| Action::EvmCall {
        to,
        value: 0,
        data: BoundedBytes::new(vec![]).unwrap(),
        gas_limit: MAX_TX_GAS,
    };
    let too_big = Action::EvmCall {
        to: evm_of(BOB),
        value: 0,
        data: BoundedBytes::new(vec![]).unwrap(),
        gas_limit: MAX_TX_GAS + 1,
    };
    assert_eq!(
        c.check(&c.tx(ALICE, too_big)),
        Err(TxError::GasLimitTooHigh {
            limit: MAX_TX_GAS + 1,
            max: MAX_TX_GAS
        })
    );
    // The first uses 21,000 of the block's 2^24; the second's limit no
    // longer fits what is left.
    let first = c.tx(ALICE, big(evm_of(BOB)));
    let second = c.tx(BOB, big(evm_of(ALICE)));
    assert_eq!(c.check(&second), Ok(()));
    assert_eq!(
        c.refused(&[first.clone(), second.clone()], 1),
        TxError::BlockGasExhausted {
            left: MAX_TX_GAS - 21_000,
            limit: MAX_TX_GAS
        }
    );
    // Each fits a block of its own.
    assert_eq!(c.commit(&[first])[0].code, 0);
    assert_eq!(c.commit(&[second])[0].code, 0);
    // Below the intrinsic cost: the call fails in its block, nonce used.
    let mut low = c.tx(BOB, call(evm_of(ALICE), 0, vec![]));
    if let Action::EvmCall { gas_limit, .. } = &mut low.tx.action {
        *gas_limit = 20_000;
    }
    let low = c.tx(BOB, low.tx.action);
    let r = c.commit(&[low]).remove(0);
    assert_eq!(
        r.error,
        "EVM transaction not executable: intrinsic gas too low"
    );
}

#[test]
fn a_minimum_gas_price_is_paid_and_burnt() {
    let mut c = Chain::with_params(ChainParams {
        min_gas_price: 2,
        ..ChainParams::default()
    });
    let before = supply(&c);
    let alice = c.account(ALICE).balance;
    let cheap = |to, value| Action::EvmCall {
        to,
        value,
        data: BoundedBytes::new(vec![]).unwrap(),
        gas_limit: 30_000,
    };
    // The sender must hold the whole limit's price; it pays for what it used.
    let r = c.run(ALICE, cheap(evm_of(BOB), 10));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.account(ALICE).balance, alice - 10 - 2 * 21_000);
    assert_eq!(supply(&c), before - 2 * 21_000);
    // Bob (1,000) cannot cover 30,000 gas at 2.
    let r = c.run(BOB, cheap(evm_of(ALICE), 0));
    assert_eq!(
        r.error,
        "EVM transaction not executable: insufficient funds for gas * price + value"
    );
}

#[test]
fn the_same_evm_blocks_give_the_same_root_on_another_node() {
    let run = || {
        let mut c = Chain::new();
        let tokn = deploy_token(&mut c, 1_000_000);
        let mut roots = Vec::new();
        for i in 0..5u8 {
            let txs = vec![
                c.tx(
                    ALICE,
                    call(tokn, 0, token::transfer(&EvmAddress([i; 20]), 7)),
                ),
                c.tx(BOB, call(evm_of(CAROL), u128::from(i) + 1, vec![])),
            ];
            let receipts = c.commit(&txs);
            roots.push((c.root, receipts));
        }
        roots
    };
    assert_eq!(run(), run());
}

/// Value and roles an address got before its native account existed
/// become the account's when it is created (nothing is stranded under the
/// EVM record, and the supply stays the sum of balances).
#[test]
fn what_an_address_got_before_its_account_existed_becomes_the_account_s() {
    let mut c = Chain::new();
    let fresh = key(88).address();
    let e = evm_address(&fresh);
    let supply_before = supply(&c);
    let r = c.run(ALICE, call(e, 40, vec![]));
    assert_eq!(r.code, 0, "{r:?}");
    let r = c.run(
        ALICE,
        Action::GrantEvmRole {
            address: e,
            role: Role::Member,
        },
    );
    assert_eq!(r.code, 0);
    // Now the account comes to be.
    let r = c.run(
        ALICE,
        Action::Transfer {
            to: fresh,
            amount: 2,
        },
    );
    assert_eq!(r.code, 0);
    let acct = c.account_of(&fresh);
    assert_eq!(acct.balance, 42);
    assert!(acct.has(Role::Member));
    assert_eq!(
        evm::read_account(
            &AtRoot {
                store: &c.store,
                root: c.root
            },
            &e
        )
        .unwrap(),
        None
    );
    assert_eq!(c.store.get(&keys::roles(&e)).unwrap(), None);
    assert_eq!(supply(&c), supply_before);
    // And its first EVM call spends that balance, not a stale copy.
    let tx = c.tx_with_nonce(88, 0, call(evm_of(ALICE), 42, vec![]));
    let r = c.commit(&[tx]).remove(0);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.account_of(&fresh).balance, 0);
    assert_eq!(supply(&c), supply_before);
}

/// With a gas price, a call refused for a creation its sender may not make
/// still pays for the gas it used (burnt), like any failed transaction.
#[test]
fn a_refused_creation_pays_for_its_gas() {
    let mut c = Chain::with_params(ChainParams {
        min_gas_price: 1,
        ..ChainParams::default()
    });
    grant(&mut c, ALICE, Role::Deployer);
    let r = c.run(
        ALICE,
        Action::EvmCreate {
            value: 0,
            code: BoundedBytes::new(init_code(FACTORY_RUNTIME)).unwrap(),
            gas_limit: 300_000,
        },
    );
    assert_eq!(r.code, 0, "{r:?}");
    let factory = r.evm.unwrap().contract_address.unwrap();
    // Bob needs the whole gas limit's price to be let in.
    let r = c.run(
        ALICE,
        Action::Transfer {
            to: key(BOB).address(),
            amount: 200_000,
        },
    );
    assert_eq!(r.code, 0);
    let before = c.account(BOB).balance;
    let supply_before = supply(&c);
    let tx = c.tx(
        BOB,
        Action::EvmCall {
            to: factory,
            value: 0,
            data: BoundedBytes::new(vec![]).unwrap(),
            gas_limit: 100_000,
        },
    );
    let r = c.commit(&[tx]).remove(0);
    assert_eq!(r.error, "signer lacks the deployer role");
    let used = u128::from(r.evm.unwrap().gas_used);
    assert!(used > 21_000);
    assert_eq!(c.account(BOB).balance, before - used);
    assert_eq!(supply(&c), supply_before - used);
}

/// Runtime code returning BLOCKHASH of the height in its calldata.
const BLOCKHASH_RUNTIME: &[u8] = &[
    0x60, 0x00, 0x35, 0x40, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3,
];

#[test]
fn blockhash_gives_the_last_256_block_hashes() {
    let mut c = Chain::new();
    grant(&mut c, ALICE, Role::Deployer);
    let r = c.run(ALICE, create(init_code(BLOCKHASH_RUNTIME)));
    assert_eq!(r.code, 0, "{r:?}");
    let contract = r.evm.as_ref().unwrap().contract_address.unwrap();
    // Blocks whose parent hashes are known: height h's parent is [h - 1; 32].
    let parent = |h: u64| palisade_types::Hash([(h - 1) as u8; 32]);
    for _ in 0..300 {
        let h = c.height.get() + 1;
        c.commit_in(
            palisade_runtime::BlockContext {
                height: palisade_types::Height(h),
                time_ms: h * 1000,
                parent_hash: parent(h),
            },
            &[],
        );
    }
    let latest = c.height.get();
    let rec = evm::read_block_hash(
        &AtRoot {
            store: &c.store,
            root: c.root,
        },
        latest - 1,
    )
    .unwrap();
    assert_eq!(rec, Some(parent(latest).0), "record of {}", latest - 1);
    let ask = |n: u64| {
        let mut data = [0u8; 32];
        data[24..].copy_from_slice(&n.to_be_bytes());
        view(&c, evm_of(BOB), contract, data.to_vec())
    };
    // A call at the latest root runs as block `latest`: it sees the hashes
    // of the 256 blocks before it, recorded as each block began.
    for n in [latest - 1, latest - 100, latest - 256] {
        assert_eq!(ask(n), parent(n + 1).0.to_vec(), "BLOCKHASH({n})");
    }
    for n in [latest, latest + 1, latest - 257, 0] {
        assert_eq!(ask(n), vec![0u8; 32], "BLOCKHASH({n})");
    }
}
