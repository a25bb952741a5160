//! The EVM over the state tree: contracts deployed and called with
//! hand-assembled bytecode, their code, storage and balances in the state
//! (and so in the root), failures leaving only the nonce, the deployer rule
//! at every creation, and the same writes on every run.

use palisade_runtime::evm::{
    call_evm, estimate_gas, keys, run_evm, AtRoot, EstimateError, EvmAccount, EvmCall, EvmEnv,
    EvmError, EvmOutcome, EvmStatus, EvmTarget, EMPTY_CODE_HASH,
};
use palisade_runtime::state::Overlay;
use palisade_runtime::{commit_writes, get_with_proof, smt, MemStore, StateStore};
use palisade_types::{EvmAddress, Hash};

#[path = "../support/token.rs"]
pub mod token;

/// Runtime code: stores the first calldata word in slot 0, logs it
/// (LOG0) and returns it.
const STORE_RUNTIME: &[u8] = &[
    0x60, 0x00, 0x35, // CALLDATALOAD(0)
    0x80, // DUP1
    0x60, 0x00, 0x55, // SSTORE(0, v)
    0x60, 0x00, 0x52, // MSTORE(0, v)
    0x60, 0x20, 0x60, 0x00, 0xa0, // LOG0(0, 32)
    0x60, 0x20, 0x60, 0x00, 0xf3, // RETURN(0, 32)
];

/// Runtime code: REVERT with the 4 bytes "nope".
const REVERT_RUNTIME: &[u8] = &[
    0x63, b'n', b'o', b'p', b'e', // PUSH4 "nope"
    0x60, 0xe0, 0x1b, // SHL 224: to the word's first bytes
    0x60, 0x00, 0x52, // MSTORE(0, ..)
    0x60, 0x04, 0x60, 0x00, 0xfd, // REVERT(0, 4)
];

/// Runtime code: CREATE a contract with empty init code and return its
/// address (zero if the creation failed).
pub const FACTORY_RUNTIME: &[u8] = &[
    0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0xf0, // CREATE(0, 0, 0)
    0x60, 0x00, 0x52, // MSTORE(0, addr)
    0x60, 0x20, 0x60, 0x00, 0xf3, // RETURN(0, 32)
];

/// Init code that deploys `runtime` (at most 255 bytes).
pub fn init_code(runtime: &[u8]) -> Vec<u8> {
    let len = u8::try_from(runtime.len()).unwrap();
    let mut code = vec![
        0x60, len,  // PUSH1 len
        0x80, // DUP1
        0x60, 11, // PUSH1 offset of the runtime in this code
        0x60, 0x00, // PUSH1 0
        0x39, // CODECOPY(0, 11, len)
        0x60, 0x00, // PUSH1 0
        0xf3, // RETURN(0, len)
    ];
    code.extend_from_slice(runtime);
    code
}

fn word(n: u8) -> Vec<u8> {
    let mut w = vec![0u8; 32];
    w[31] = n;
    w
}

const ALICE: EvmAddress = EvmAddress([0xa1; 20]);
const BOB: EvmAddress = EvmAddress([0xb0; 20]);

struct Chain {
    store: MemStore,
    root: Hash,
    env: EvmEnv,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            store: MemStore::default(),
            root: smt::EMPTY,
            env: EvmEnv {
                chain_id: 4242,
                height: 1,
                time_ms: 1_700_000_000_000,
                tx_gas_limit: 16_777_216,
                block_gas_limit: 1_000_000_000,
                beneficiary: EvmAddress([0; 20]),
                base_fee: 0,
            },
        }
    }

    /// Applies `f`'s writes to the store as one block.
    fn block<T>(&mut self, f: impl FnOnce(&mut Overlay<'_>) -> T) -> T {
        let mut st = Overlay::new(&self.store);
        let out = f(&mut st);
        st.commit_tx();
        let writes = st.into_writes();
        let changes = commit_writes(&self.store, self.root, writes).unwrap();
        self.store.apply(&changes);
        self.root = changes.root;
        self.env.height += 1;
        out
    }

    fn run(&mut self, call: EvmCall, may_deploy: bool) -> Result<EvmOutcome, EvmError> {
        let env = self.env.clone();
        self.block(|st| run_evm(st, &env, &call, may_deploy))
    }

    fn fund(&mut self, a: EvmAddress, balance: u128) {
        self.block(|st| {
            st.put(
                keys::account(&a),
                palisade_types::encode(&EvmAccount {
                    balance,
                    nonce: 0,
                    code_hash: EMPTY_CODE_HASH,
                }),
            );
            let s = st.supply().unwrap();
            st.set_supply(s + balance);
        });
    }

    fn account(&self, a: &EvmAddress) -> Option<EvmAccount> {
        self.store
            .get(&keys::account(a))
            .unwrap()
            .map(|b| borsh::from_slice(&b).unwrap())
    }

    fn slot(&self, a: &EvmAddress, n: u8) -> Option<Vec<u8>> {
        let mut s = [0u8; 32];
        s[31] = n;
        self.store.get(&keys::slot(a, &s)).unwrap()
    }

    fn nonce(&self, a: &EvmAddress) -> u64 {
        self.account(a).map_or(0, |a| a.nonce)
    }

    fn deploy(&mut self, from: EvmAddress, runtime: &[u8]) -> EvmAddress {
        let nonce = self.nonce(&from);
        let out = self
            .run(
                call(from, EvmTarget::Create, init_code(runtime), nonce),
                true,
            )
            .unwrap();
        assert_eq!(out.status, EvmStatus::Success, "{out:?}");
        out.created.unwrap()
    }

    fn supply(&self) -> u128 {
        self.store
            .get(b"meta/supply")
            .unwrap()
            .map_or(0, |b| borsh::from_slice(&b).unwrap())
    }
}

fn call(caller: EvmAddress, target: EvmTarget, data: Vec<u8>, nonce: u64) -> EvmCall {
    EvmCall {
        caller,
        target,
        value: 0,
        data,
        gas_limit: 1_000_000,
        gas_price: 0,
        priority_fee: None,
        access_list: Vec::new(),
        nonce,
    }
}

fn keccak(b: &[u8]) -> [u8; 32] {
    revm::primitives::keccak256(b).0
}

#[test]
fn a_deployed_contract_keeps_code_storage_and_logs_in_the_state() {
    let mut c = Chain::new();
    let empty_root = c.root;
    let contract = c.deploy(ALICE, STORE_RUNTIME);
    // The CREATE address rule: keccak256(rlp([sender, nonce]))[12..].
    assert_eq!(
        contract,
        EvmAddress(revm::primitives::Address::from(ALICE.0).create(0).0 .0)
    );
    let acct = c.account(&contract).unwrap();
    assert_eq!(acct.code_hash, keccak(STORE_RUNTIME));
    assert_eq!(acct.nonce, 1, "EIP-161: a contract starts at nonce 1");
    assert_eq!(
        c.store.get(&keys::code(&acct.code_hash)).unwrap().unwrap(),
        STORE_RUNTIME
    );
    assert_eq!(c.nonce(&ALICE), 1);
    assert_ne!(c.root, empty_root);

    let out = c
        .run(call(ALICE, EvmTarget::Call(contract), word(42), 1), false)
        .unwrap();
    assert_eq!(out.status, EvmStatus::Success);
    assert_eq!(out.output, word(42));
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].address, contract);
    assert_eq!(out.logs[0].data, word(42));
    assert!(
        out.gas_used > 21_000 && out.gas_used < 100_000,
        "{}",
        out.gas_used
    );
    assert_eq!(c.slot(&contract, 0), Some(word(42)));
    assert_eq!(c.nonce(&ALICE), 2);
    // The slot is in the state root: a proof against the root shows it.
    let key = keys::slot(&contract, &[0; 32]);
    let (v, proof) = get_with_proof(&c.store, c.root, &key).unwrap();
    assert_eq!(v, Some(word(42)));
    assert!(smt::verify(&c.root, &key, Some(&word(42)), &proof));
    assert!(!smt::verify(&c.root, &key, Some(&word(43)), &proof));

    // Writing zero removes the slot's entry.
    let out = c
        .run(call(ALICE, EvmTarget::Call(contract), word(0), 2), false)
        .unwrap();
    assert_eq!(out.status, EvmStatus::Success);
    assert_eq!(c.slot(&contract, 0), None);
}

#[test]
fn a_revert_keeps_only_the_nonce_and_returns_its_data() {
    let mut c = Chain::new();
    let contract = c.deploy(ALICE, REVERT_RUNTIME);
    let store = c.deploy(ALICE, STORE_RUNTIME);
    let before = c.account(&contract);
    let out = c
        .run(call(BOB, EvmTarget::Call(contract), word(7), 0), false)
        .unwrap();
    assert_eq!(out.status, EvmStatus::Revert);
    assert_eq!(out.output, b"nope");
    assert!(out.logs.is_empty());
    assert_eq!(c.account(&contract), before);
    assert_eq!(c.nonce(&BOB), 1);

    // Out of gas: a halt, storage untouched.
    let mut tight = call(BOB, EvmTarget::Call(store), word(9), 1);
    // Above the intrinsic cost and the EIP-7623 floor, far below an SSTORE.
    tight.gas_limit = 22_000;
    let out = c.run(tight, false).unwrap();
    assert!(matches!(out.status, EvmStatus::Halt(_)), "{out:?}");
    assert_eq!(c.slot(&store, 0), None);
    assert_eq!(c.nonce(&BOB), 2);
}

#[test]
fn a_transaction_that_cannot_run_changes_nothing() {
    let mut c = Chain::new();
    let contract = c.deploy(ALICE, STORE_RUNTIME);
    let root = c.root;
    for bad in [
        call(ALICE, EvmTarget::Call(contract), word(1), 5), // nonce ahead
        call(ALICE, EvmTarget::Call(contract), word(1), 0), // nonce used
        EvmCall {
            gas_limit: 20_000, // below the intrinsic 21,000
            ..call(ALICE, EvmTarget::Call(contract), word(1), 1)
        },
        EvmCall {
            gas_limit: 16_777_217, // above the per-transaction cap
            ..call(ALICE, EvmTarget::Call(contract), word(1), 1)
        },
        EvmCall {
            value: 1, // no balance
            ..call(ALICE, EvmTarget::Call(contract), word(1), 1)
        },
    ] {
        let e = c.run(bad.clone(), false).unwrap_err();
        assert!(matches!(e, EvmError::Invalid(_)), "{bad:?}: {e:?}");
        assert_eq!(c.root, root, "{bad:?} changed the state");
    }
}

#[test]
fn only_deployers_create_contracts_directly_or_through_a_factory() {
    let mut c = Chain::new();
    let root = c.root;
    let out = c
        .run(
            call(BOB, EvmTarget::Create, init_code(STORE_RUNTIME), 0),
            false,
        )
        .unwrap();
    assert_eq!(out.status, EvmStatus::DeployDenied);
    assert_ne!(c.root, root);
    assert_eq!(
        c.nonce(&BOB),
        1,
        "a refused transaction still uses its nonce"
    );
    let would_be = EvmAddress(revm::primitives::Address::from(BOB.0).create(0).0 .0);
    // Named as Ethereum receipts name a failed creation's, never created.
    assert_eq!(out.created, Some(would_be));
    assert_eq!(c.account(&would_be), None);

    let factory = c.deploy(ALICE, FACTORY_RUNTIME);
    // A non-deployer calling the factory: refused as a whole.
    let out = c
        .run(call(BOB, EvmTarget::Call(factory), vec![], 1), false)
        .unwrap();
    assert_eq!(out.status, EvmStatus::DeployDenied);
    assert_eq!(c.nonce(&factory), 1, "the factory created nothing");
    // A deployer calling it: the factory creates a contract.
    let out = c
        .run(call(ALICE, EvmTarget::Call(factory), vec![], 1), true)
        .unwrap();
    assert_eq!(out.status, EvmStatus::Success);
    let child = EvmAddress(revm::primitives::Address::from(factory.0).create(1).0 .0);
    assert_eq!(&out.output[12..], child.as_bytes().as_slice());
    assert_eq!(c.nonce(&factory), 2);
    assert!(c.account(&child).is_some());
}

#[test]
fn value_moves_between_accounts_and_the_supply_stays_the_sum() {
    let mut c = Chain::new();
    c.fund(ALICE, 100);
    assert_eq!(c.supply(), 100);
    let out = c
        .run(
            EvmCall {
                value: 40,
                ..call(ALICE, EvmTarget::Call(BOB), vec![], 0)
            },
            false,
        )
        .unwrap();
    assert_eq!(out.status, EvmStatus::Success);
    assert_eq!(out.gas_used, 21_000);
    assert_eq!(c.account(&ALICE).unwrap().balance, 60);
    assert_eq!(c.account(&BOB).unwrap().balance, 40);
    assert_eq!(c.supply(), 100);
    // More than the balance: not executable.
    let e = c
        .run(
            EvmCall {
                value: 61,
                ..call(ALICE, EvmTarget::Call(BOB), vec![], 1)
            },
            false,
        )
        .unwrap_err();
    assert!(matches!(e, EvmError::Invalid(_)), "{e:?}");
}

/// Two nodes running the same transactions write the same state: the same
/// root after every block, whatever order revm's maps hold things in.
#[test]
fn the_same_transactions_give_the_same_roots() {
    let run = || {
        let mut c = Chain::new();
        c.fund(ALICE, 1_000);
        let mut roots = Vec::new();
        let store = c.deploy(ALICE, STORE_RUNTIME);
        roots.push(c.root);
        let factory = c.deploy(ALICE, FACTORY_RUNTIME);
        roots.push(c.root);
        for i in 0..20u8 {
            let nonce = c.nonce(&ALICE);
            let (target, data) = match i % 3 {
                0 => (EvmTarget::Call(store), word(i)),
                1 => (EvmTarget::Call(factory), vec![]),
                _ => (EvmTarget::Call(EvmAddress([i; 20])), vec![]),
            };
            let out = c
                .run(
                    EvmCall {
                        value: u128::from(i % 2),
                        ..call(ALICE, target, data, nonce)
                    },
                    true,
                )
                .unwrap();
            assert_ne!(out.status, EvmStatus::DeployDenied);
            roots.push(c.root);
        }
        assert_eq!(c.supply(), 1_000);
        roots
    };
    assert_eq!(run(), run());
}

/// A real ERC-20, compiled by solc-js: deployed, transferred, read back,
/// its Transfer events and its custom error as Ethereum tools expect them.
#[test]
fn an_erc20_compiled_by_solc_works() {
    let mut c = Chain::new();
    let out = c
        .run(
            EvmCall {
                gas_limit: 2_000_000,
                ..call(ALICE, EvmTarget::Create, token::creation_code(1_000_000), 0)
            },
            true,
        )
        .unwrap();
    assert_eq!(out.status, EvmStatus::Success, "{out:?}");
    let tok = out.created.unwrap();
    let transfer_topic = keccak(b"Transfer(address,address,uint256)");
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].topics[0], Hash(transfer_topic));

    let out = c
        .run(
            call(ALICE, EvmTarget::Call(tok), token::transfer(&BOB, 250), 1),
            false,
        )
        .unwrap();
    assert_eq!(out.status, EvmStatus::Success, "{out:?}");
    assert_eq!(out.output, word(1), "transfer returns true");
    let log = &out.logs[0];
    assert_eq!(log.address, tok);
    assert_eq!(log.topics.len(), 3);
    assert_eq!(log.topics[0], Hash(transfer_topic));
    assert_eq!(&log.topics[1].0[12..], ALICE.as_bytes().as_slice());
    assert_eq!(&log.topics[2].0[12..], BOB.as_bytes().as_slice());
    assert_eq!(token::decode_u128(&log.data), 250);
    assert!(out.gas_used < 60_000, "{}", out.gas_used);

    let balance = |c: &mut Chain, who: &EvmAddress| {
        let nonce = c.nonce(&ALICE);
        let out = c
            .run(
                call(ALICE, EvmTarget::Call(tok), token::balance_of(who), nonce),
                false,
            )
            .unwrap();
        token::decode_u128(&out.output)
    };
    assert_eq!(balance(&mut c, &ALICE), 999_750);
    assert_eq!(balance(&mut c, &BOB), 250);

    // More than BOB has: the custom error, with its arguments.
    let out = c
        .run(
            call(BOB, EvmTarget::Call(tok), token::transfer(&ALICE, 251), 0),
            false,
        )
        .unwrap();
    assert_eq!(out.status, EvmStatus::Revert);
    assert_eq!(
        out.output[..4],
        token::selector("InsufficientBalance(uint256,uint256)")
    );
    assert_eq!(token::decode_u128(&out.output[4..36]), 250);
    assert_eq!(token::decode_u128(&out.output[36..68]), 251);
    assert!(out.logs.is_empty());
    assert_eq!(balance(&mut c, &BOB), 250);
}

/// `eth_call` and `eth_estimateGas`: a call against the state of any kept
/// root, writing nothing; the least gas limit that works, exactly.
#[test]
fn calls_and_gas_estimates_read_past_roots_and_write_nothing() {
    let mut c = Chain::new();
    let deploy = EvmCall {
        gas_limit: 2_000_000,
        ..call(ALICE, EvmTarget::Create, token::creation_code(1_000), 0)
    };
    let tok = c.run(deploy, true).unwrap().created.unwrap();
    let before = c.root;
    c.run(
        call(ALICE, EvmTarget::Call(tok), token::transfer(&BOB, 10), 1),
        false,
    )
    .unwrap();
    let after = c.root;
    let env = c.env.clone();
    // Any nonce: a call is not a transaction.
    let ask = call(BOB, EvmTarget::Call(tok), token::balance_of(&BOB), 77);
    for (root, want) in [(before, 0), (after, 10)] {
        let at = AtRoot {
            store: &c.store,
            root,
        };
        let out = call_evm(&at, &env, &ask, false).unwrap();
        assert_eq!(out.status, EvmStatus::Success);
        assert_eq!(token::decode_u128(&out.output), want);
    }
    assert_eq!(c.root, after, "a call changed the state");

    let at = AtRoot {
        store: &c.store,
        root: after,
    };
    let send = call(BOB, EvmTarget::Call(tok), token::transfer(&ALICE, 4), 0);
    let gas = estimate_gas(&at, &env, &send, false).unwrap();
    let with = |g: u64| {
        call_evm(
            &at,
            &env,
            &EvmCall {
                gas_limit: g,
                ..send.clone()
            },
            false,
        )
    };
    assert_eq!(with(gas).unwrap().status, EvmStatus::Success);
    assert!(
        with(gas - 1).map_or(true, |o| o.status != EvmStatus::Success),
        "{gas} is not the least"
    );
    // Capped by the caller's gas: with less than it needs, the estimate
    // fails as the call would (out of gas), rather than answering more.
    match estimate_gas(
        &at,
        &env,
        &EvmCall {
            gas_limit: gas - 1,
            ..send.clone()
        },
        false,
    ) {
        Err(EstimateError::Fails(o)) => assert!(matches!(o.status, EvmStatus::Halt(_)), "{o:?}"),
        other => panic!("{other:?}"),
    }

    // The estimate is a real limit: the transaction succeeds with it.
    let out = c
        .run(
            EvmCall {
                gas_limit: gas,
                ..send.clone()
            },
            false,
        )
        .unwrap();
    assert_eq!(out.status, EvmStatus::Success);

    // A transfer that cannot succeed: the estimate says why.
    let at = AtRoot {
        store: &c.store,
        root: c.root,
    };
    let too_much = call(BOB, EvmTarget::Call(tok), token::transfer(&ALICE, 7), 1);
    match estimate_gas(&at, &env, &too_much, false) {
        Err(EstimateError::Fails(o)) => {
            assert_eq!(o.status, EvmStatus::Revert);
            assert_eq!(
                o.output[..4],
                token::selector("InsufficientBalance(uint256,uint256)")
            );
        }
        other => panic!("{other:?}"),
    }
    // A creation by a non-deployer fails in a call as in a block.
    let create = call(BOB, EvmTarget::Create, init_code(STORE_RUNTIME), 0);
    assert_eq!(
        call_evm(&at, &env, &create, false).unwrap().status,
        EvmStatus::DeployDenied
    );
}

/// A contract that destroys itself in its creating transaction, naming
/// itself as heir, burns what it was sent (EIP-6780): the account goes and
/// the supply falls by the amount, even with a supply near the maximum.
#[test]
fn value_burnt_by_a_self_destroying_creation_leaves_the_supply() {
    for (held, supply) in [(1_000u128, 1_000u128), (u128::MAX / 2, u128::MAX - 5)] {
        let mut c = Chain::new();
        c.fund(ALICE, held);
        c.block(|st| st.set_supply(supply));
        let burn = held / 2;
        let init = vec![0x30, 0xff]; // SELFDESTRUCT(ADDRESS)
        let out = c
            .run(
                EvmCall {
                    value: burn,
                    ..call(ALICE, EvmTarget::Create, init, 0)
                },
                true,
            )
            .unwrap();
        assert_eq!(out.status, EvmStatus::Success, "{out:?}");
        let created = EvmAddress(revm::primitives::Address::from(ALICE.0).create(0).0 .0);
        assert_eq!(c.account(&created), None);
        assert_eq!(c.account(&ALICE).unwrap().balance, held - burn);
        assert_eq!(c.supply(), supply - burn);
    }
}
