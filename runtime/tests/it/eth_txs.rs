//! Ethereum transactions in blocks (decoded, sender recovered: what the
//! node hands the runtime): admission by the chain's rules, roles of
//! 20-byte senders, EVM nonces, fees, and their receipts after the native
//! transactions'.

use palisade_runtime::evm::{self, create_address, keccak256, AtRoot};
use palisade_runtime::{
    BlockError, BlockOutcome, ChainParams, EthTxInput, NonceRule, StateStore, TxError,
    DEFAULT_EVM_CHAIN_ID,
};
use palisade_types::{Action, EvmAddress, Hash, Height, Role};

use crate::chain::{four_validators, key, Chain, Refusal, ALICE};
use crate::evm::token;

const DEPLOYER: EvmAddress = EvmAddress([0xd1; 20]);
const MEMBER: EvmAddress = EvmAddress([0x3e; 20]);
const OUTSIDER: EvmAddress = EvmAddress([0x0f; 20]);

fn chain(params: ChainParams) -> Chain {
    Chain::with_evm_accounts(
        params,
        four_validators(),
        vec![
            (DEPLOYER, 10_000_000, vec![Role::Member, Role::Deployer]),
            (MEMBER, 1_000, vec![Role::Member]),
            (OUTSIDER, 1_000, vec![]),
        ],
    )
}

fn tx(sender: EvmAddress, nonce: u64, to: Option<EvmAddress>, data: Vec<u8>) -> EthTxInput {
    let mut id = sender.0.to_vec();
    id.extend_from_slice(&nonce.to_be_bytes());
    id.extend_from_slice(&data);
    EthTxInput {
        hash: Hash(keccak256(&id)),
        encoded_len: 110 + data.len(),
        sender,
        chain_id: DEFAULT_EVM_CHAIN_ID,
        nonce,
        gas_limit: 2_000_000,
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: Some(0),
        to,
        value: 0,
        data,
        access_list: Vec::new(),
    }
}

fn run(c: &Chain, eth: &[EthTxInput]) -> Result<BlockOutcome, BlockError> {
    c.rt.execute_block_full(
        &c.store,
        c.root,
        Height(c.height.get() + 1),
        &[],
        &[],
        palisade_runtime::Signatures::Verify,
        eth,
    )
}

fn commit(c: &mut Chain, eth: &[EthTxInput]) -> BlockOutcome {
    let out = run(c, eth).expect("block executes");
    c.store.apply(&out.changes);
    c.root = out.changes.root;
    c.height = Height(c.height.get() + 1);
    out
}

fn check(c: &Chain, t: &EthTxInput) -> Result<(), TxError> {
    c.rt.check_eth_tx(&c.store, Height(c.height.get() + 1), t, NonceRule::Window)
        .unwrap()
}

/// Why execution refused `t` in a block of its own, which must leave the
/// state as it was.
fn inadmissible(c: &Chain, t: EthTxInput) -> Refusal {
    let out = run(c, &[t]).expect("the block executes");
    let empty = run(c, &[]).expect("an empty block executes");
    assert_eq!(
        out.changes.root, empty.changes.root,
        "a refused transaction changed the state"
    );
    Refusal::of(&out.receipts[0])
}

fn balance(c: &Chain, a: &EvmAddress) -> u128 {
    let at = AtRoot {
        store: &c.store,
        root: c.root,
    };
    evm::read_account(&at, a).unwrap().map_or(0, |r| r.balance)
}

fn supply(c: &Chain) -> u128 {
    borsh::from_slice(&c.store.get(b"meta/supply").unwrap().unwrap()).unwrap()
}

#[test]
fn an_erc20_deployed_and_used_by_ethereum_accounts() {
    let mut c = chain(ChainParams::default());
    let create = tx(DEPLOYER, 0, None, token::creation_code(1_000));
    assert_eq!(check(&c, &create), Ok(()));
    let out = commit(&mut c, std::slice::from_ref(&create));
    let r = &out.receipts[0];
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.tx_hash, create.hash);
    let contract = r.evm.as_ref().unwrap().contract_address.unwrap();
    assert_eq!(contract, create_address(&DEPLOYER, 0));

    let send = tx(DEPLOYER, 1, Some(contract), token::transfer(&MEMBER, 25));
    let back = tx(MEMBER, 0, Some(contract), token::transfer(&DEPLOYER, 5));
    // Two senders in one block, in order.
    let out = commit(&mut c, &[send, back]);
    assert!(
        out.receipts.iter().all(|r| r.code == 0),
        "{:?}",
        out.receipts
    );
    assert_eq!(out.receipts[1].evm.as_ref().unwrap().logs.len(), 1);
    // The next nonce of each sender moved.
    assert_eq!(
        check(&c, &tx(MEMBER, 0, Some(contract), vec![])),
        Err(TxError::BadNonce {
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn senders_need_their_roles_and_execution_refuses_them_without() {
    let mut c = chain(ChainParams::default());
    let no_role = tx(OUTSIDER, 0, Some(MEMBER), vec![]);
    assert_eq!(check(&c, &no_role), Err(TxError::Unauthorized("member")));
    assert_eq!(inadmissible(&c, no_role), TxError::Unauthorized("member"));
    let creation = tx(MEMBER, 0, None, vec![0x00]);
    assert_eq!(check(&c, &creation), Err(TxError::Unauthorized("deployer")));
    assert_eq!(
        inadmissible(&c, creation.clone()),
        TxError::Unauthorized("deployer")
    );
    // An admin grants deployer to the 20-byte address: now it may.
    let r = c.run(
        ALICE,
        Action::GrantEvmRole {
            address: MEMBER,
            role: Role::Deployer,
        },
    );
    assert_eq!(r.code, 0);
    assert_eq!(check(&c, &creation), Ok(()));
    assert_eq!(commit(&mut c, &[creation]).receipts[0].code, 0);
    // And revokes member: nothing more from it.
    let r = c.run(
        ALICE,
        Action::RevokeEvmRole {
            address: MEMBER,
            role: Role::Member,
        },
    );
    assert_eq!(r.code, 0);
    assert_eq!(
        check(&c, &tx(MEMBER, 1, Some(DEPLOYER), vec![])),
        Err(TxError::Unauthorized("member"))
    );
}

#[test]
fn chain_nonce_gas_and_funds_are_checked_before_execution() {
    let c = chain(ChainParams::default());
    let wrong_chain = EthTxInput {
        chain_id: 1,
        ..tx(MEMBER, 0, Some(DEPLOYER), vec![])
    };
    assert_eq!(
        inadmissible(&c, wrong_chain),
        TxError::WrongChainId {
            expected: DEFAULT_EVM_CHAIN_ID.to_string(),
            found: "1".into()
        }
    );
    assert_eq!(
        inadmissible(&c, tx(MEMBER, 1, Some(DEPLOYER), vec![])),
        TxError::BadNonce {
            expected: 0,
            got: 1
        }
    );
    assert_eq!(
        check(&c, &tx(MEMBER, 1, Some(DEPLOYER), vec![])),
        Ok(()),
        "later nonces wait"
    );
    let huge = EthTxInput {
        gas_limit: (1 << 24) + 1,
        ..tx(MEMBER, 0, Some(DEPLOYER), vec![])
    };
    assert_eq!(
        inadmissible(&c, huge),
        TxError::GasLimitTooHigh {
            limit: (1 << 24) + 1,
            max: 1 << 24
        }
    );
    let rich = EthTxInput {
        value: 1_001,
        ..tx(MEMBER, 0, Some(DEPLOYER), vec![])
    };
    assert_eq!(
        check(&c, &rich),
        Err(TxError::EvmNotExecutable(
            "insufficient funds for gas * price + value"
        ))
    );
    assert_eq!(
        inadmissible(&c, rich),
        TxError::EvmNotExecutable("insufficient funds for gas * price + value")
    );
    let low = EthTxInput {
        gas_limit: 20_000,
        ..tx(MEMBER, 0, Some(DEPLOYER), vec![])
    };
    // The mempool's check (revm's checks, without running the EVM) and
    // execution refuse the same way.
    assert_eq!(
        check(&c, &low),
        Err(TxError::EvmNotExecutable("intrinsic gas too low"))
    );
    assert_eq!(
        inadmissible(&c, low),
        TxError::EvmNotExecutable("intrinsic gas too low")
    );
    // The same transaction twice in a block.
    let t = tx(MEMBER, 0, Some(DEPLOYER), vec![]);
    assert!(matches!(
        run(&c, &[t.clone(), t]),
        Err(BlockError::DuplicateTx(_))
    ));
}

#[test]
fn a_gas_price_pays_a_burnt_base_fee_and_a_tip() {
    let mut c = chain(ChainParams {
        min_gas_price: 3,
        ..ChainParams::default()
    });
    let cheap = EthTxInput {
        max_fee_per_gas: 2,
        max_priority_fee_per_gas: Some(0),
        ..tx(DEPLOYER, 0, Some(MEMBER), vec![])
    };
    assert_eq!(
        check(&c, &cheap),
        Err(TxError::GasPriceTooLow { price: 2, min: 3 })
    );
    let before = supply(&c);
    let payer = balance(&c, &DEPLOYER);
    let t = EthTxInput {
        max_fee_per_gas: 10,
        max_priority_fee_per_gas: Some(2),
        gas_limit: 21_000,
        value: 7,
        ..tx(DEPLOYER, 0, Some(MEMBER), vec![])
    };
    let out = commit(&mut c, &[t]);
    assert_eq!(out.receipts[0].code, 0, "{:?}", out.receipts[0]);
    // Base fee 3 and tip 2 per gas: 5 * 21,000 paid, 3 * 21,000 burnt, the
    // tip to the beneficiary (address zero).
    assert_eq!(balance(&c, &DEPLOYER), payer - 7 - 5 * 21_000);
    assert_eq!(balance(&c, &MEMBER), 1_000 + 7);
    assert_eq!(balance(&c, &EvmAddress::default()), 2 * 21_000);
    assert_eq!(supply(&c), before - 3 * 21_000);
}

#[test]
fn native_and_ethereum_transactions_share_a_block() {
    let mut c = chain(ChainParams::default());
    let native = c.tx(
        ALICE,
        Action::Transfer {
            to: key(9).address(),
            amount: 5,
        },
    );
    let eth = tx(MEMBER, 0, Some(evm::evm_address(&key(9).address())), vec![]);
    let eth = EthTxInput { value: 3, ..eth };
    let out =
        c.rt.execute_block_full(
            &c.store,
            c.root,
            Height(c.height.get() + 1),
            std::slice::from_ref(&native),
            &[native.hash()],
            palisade_runtime::Signatures::Verify,
            std::slice::from_ref(&eth),
        )
        .unwrap();
    assert_eq!(out.receipts.len(), 2);
    assert_eq!(out.receipts[0].tx_hash, native.hash());
    assert_eq!(out.receipts[1].tx_hash, eth.hash);
    c.store.apply(&out.changes);
    c.root = out.changes.root;
    // The native account created by the first is paid by the second.
    assert_eq!(c.account_of(&key(9).address()).balance, 8);
    // A block's count limit covers both kinds.
    let small = chain(ChainParams {
        max_block_txs: 1,
        ..ChainParams::default()
    });
    let native = small.tx(
        ALICE,
        Action::Transfer {
            to: key(9).address(),
            amount: 5,
        },
    );
    let r = small.rt.execute_block_full(
        &small.store,
        small.root,
        Height(small.height.get() + 1),
        std::slice::from_ref(&native),
        &[native.hash()],
        palisade_runtime::Signatures::Verify,
        &[tx(MEMBER, 0, Some(DEPLOYER), vec![])],
    );
    assert!(
        matches!(r, Err(BlockError::TooManyTxs { count: 2, max: 1 })),
        "{r:?}"
    );
}
