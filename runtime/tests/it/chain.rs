//! A small in-memory chain to drive the runtime in tests.

use palisade_runtime::{
    initial_state, Account, BlockOutcome, ChainParams, InitialState, MemStore, NonceRule, Receipt,
    Runtime, Signatures, StateStore, TxError, ValidatorInfo,
};
use palisade_types::{
    Action, Address, ChainId, EvmAddress, Hash, Height, Keypair, PublicKey, Role,
    SignedTransaction, Transaction,
};

pub struct Chain {
    pub rt: Runtime,
    pub store: MemStore,
    pub root: Hash,
    pub height: Height,
    pub chain_id: ChainId,
}

pub fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

pub const ALICE: u8 = 1; // admin, member, minter
pub const BOB: u8 = 2; // member
pub const CAROL: u8 = 3; // no role
pub const OPERATOR: u8 = 4; // validator operator

pub fn validator_key(i: u8) -> PublicKey {
    key(100 + i).public_key()
}

pub fn four_validators() -> Vec<ValidatorInfo> {
    (0..4)
        .map(|i| ValidatorInfo {
            consensus_key: validator_key(i),
            node_key: key(200 + i).public_key(),
            power: 10,
        })
        .collect()
}

/// What execution refused a transaction with, from its receipt: compares
/// equal to the [`TxError`] it was refused for.
#[derive(Debug)]
pub struct Refusal {
    pub code: u16,
    pub error: String,
}

impl PartialEq<TxError> for Refusal {
    fn eq(&self, e: &TxError) -> bool {
        self.code == e.code() && self.error == e.to_string()
    }
}

impl Refusal {
    /// The refusal in `r`, which must be one: an error, no events, and (for
    /// an Ethereum transaction) no gas, logs or contract.
    pub fn of(r: &Receipt) -> Refusal {
        assert_ne!(r.code, 0, "not refused: {r:?}");
        assert!(r.events.is_empty(), "{r:?}");
        if let Some(e) = &r.evm {
            assert_eq!((e.gas_used, e.contract_address), (0, None), "{r:?}");
            assert!(e.logs.is_empty(), "{r:?}");
        }
        Refusal {
            code: r.code,
            error: r.error.clone(),
        }
    }
}

impl Chain {
    pub fn new() -> Chain {
        Chain::with_params(ChainParams::default())
    }

    pub fn with_params(params: ChainParams) -> Chain {
        Chain::with_validators(params, four_validators())
    }

    pub fn with_validators(params: ChainParams, validators: Vec<ValidatorInfo>) -> Chain {
        Chain::with_evm_accounts(params, validators, Vec::new())
    }

    /// The usual accounts and validators, the given parameters, and
    /// Ethereum accounts (address, balance, roles).
    pub fn with_evm_accounts(
        params: ChainParams,
        validators: Vec<ValidatorInfo>,
        evm_accounts: Vec<(EvmAddress, u128, Vec<Role>)>,
    ) -> Chain {
        let chain_id = ChainId::new("test-chain").unwrap();
        let init = InitialState {
            evm_accounts,
            params,
            accounts: vec![
                (
                    key(ALICE).address(),
                    1_000_000,
                    vec![Role::Admin, Role::Member, Role::Minter],
                ),
                (key(BOB).address(), 1_000, vec![Role::Member]),
                (key(CAROL).address(), 500, vec![]),
                (key(OPERATOR).address(), 0, vec![Role::ValidatorOperator]),
            ],
            validators,
        };
        let changes = initial_state(&init).unwrap();
        let mut store = MemStore::default();
        store.apply(&changes);
        Chain {
            rt: Runtime::new(chain_id.clone()),
            store,
            root: changes.root,
            height: Height::GENESIS,
            chain_id,
        }
    }

    pub fn account(&self, n: u8) -> Account {
        self.account_of(&key(n).address())
    }

    pub fn account_of(&self, a: &Address) -> Account {
        let raw = self
            .store
            .get(&palisade_runtime::state::keys::account(a))
            .unwrap();
        raw.map(|b| borsh::from_slice(&b).unwrap())
            .unwrap_or_default()
    }

    /// The validator set of the next height to execute.
    pub fn validators(&self) -> Vec<ValidatorInfo> {
        let raw = self
            .store
            .get(palisade_runtime::state::keys::VALIDATORS)
            .unwrap()
            .unwrap();
        borsh::from_slice(&raw).unwrap()
    }

    pub fn tx(&self, signer: u8, action: Action) -> SignedTransaction {
        let nonce = self.account(signer).nonce;
        self.tx_with_nonce(signer, nonce, action)
    }

    pub fn tx_with_nonce(&self, signer: u8, nonce: u64, action: Action) -> SignedTransaction {
        let k = key(signer);
        Transaction {
            chain_id: self.chain_id.clone(),
            nonce,
            signer: k.address(),
            action,
        }
        .sign(&k)
    }

    pub fn check(&self, tx: &SignedTransaction) -> Result<(), TxError> {
        self.rt
            .check_tx(
                &self.store,
                Height(self.height.get() + 1),
                tx,
                Signatures::Verify,
                NonceRule::Window,
            )
            .unwrap()
    }

    /// Executes a block without committing it.
    pub fn execute(
        &self,
        txs: &[SignedTransaction],
    ) -> Result<BlockOutcome, palisade_runtime::BlockError> {
        self.execute_in(Height(self.height.get() + 1).into(), txs)
    }

    /// Executes the next block, `ctx` its header's time and parent.
    pub fn execute_in(
        &self,
        ctx: palisade_runtime::BlockContext,
        txs: &[SignedTransaction],
    ) -> Result<BlockOutcome, palisade_runtime::BlockError> {
        self.rt
            .execute_block(&self.store, self.root, ctx, txs, Signatures::Verify)
    }

    /// Executes a block of `txs` in which execution must refuse the one at
    /// `index`: returns why, after checking that the block leaves the state
    /// exactly as the block without it does (not even a nonce moves).
    pub fn refused(&self, txs: &[SignedTransaction], index: usize) -> Refusal {
        let out = self.execute(txs).expect("the block executes");
        let why = Refusal::of(&out.receipts[index]);
        let mut without = txs.to_vec();
        without.remove(index);
        let base = self
            .execute(&without)
            .expect("the block without it executes");
        assert_eq!(
            out.changes.root, base.changes.root,
            "the refused transaction changed the state"
        );
        why
    }

    /// Executes and commits a block; returns its receipts.
    pub fn commit(&mut self, txs: &[SignedTransaction]) -> Vec<Receipt> {
        self.commit_in(Height(self.height.get() + 1).into(), txs)
    }

    /// [`Chain::commit`] with the block's time and parent hash.
    pub fn commit_in(
        &mut self,
        ctx: palisade_runtime::BlockContext,
        txs: &[SignedTransaction],
    ) -> Vec<Receipt> {
        let out = self.execute_in(ctx, txs).expect("block executes");
        self.store.apply(&out.changes);
        self.root = out.changes.root;
        self.height = Height(self.height.get() + 1);
        out.receipts
    }

    /// Commits one transaction and returns its receipt.
    pub fn run(&mut self, signer: u8, action: Action) -> Receipt {
        let tx = self.tx(signer, action);
        self.commit(&[tx]).remove(0)
    }
}
