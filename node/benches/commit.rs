//! Committing an executed 1,000-transfer block to the RocksDB ledger: the
//! block, its certificate, receipts, transaction index and state changes in
//! one synced write batch (what every node does once per height). The
//! execution that produces the changes is set-up, outside the measurement.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_ledger::{BlockWrite, Durability, Ledger};
use palisade_runtime::{
    initial_state, BlockOutcome, ChainParams, InitialState, Runtime, Signatures, ValidatorInfo,
};
use palisade_types::{
    Action, Block, BlockHeader, BoundedVec, ChainId, CommitCertificate, CommitSig, Hash, Keypair,
    Role, Round, Signature, Timestamp, Transaction,
};

const TXS: usize = 1_000;

fn key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    Keypair::from_seed(seed)
}

struct Chain {
    rt: Runtime,
    ledger: Arc<Ledger>,
    senders: Vec<Keypair>,
    validator: Keypair,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn new() -> Chain {
        let chain = ChainId::new("bench").expect("valid");
        let senders: Vec<Keypair> = (0..TXS).map(key).collect();
        let validator = key(TXS + 1);
        let init = InitialState {
            evm_accounts: Vec::new(),
            params: ChainParams::default(),
            accounts: senders
                .iter()
                .map(|k| (k.address(), 1_000_000_000u128, vec![Role::Member]))
                .collect(),
            validators: vec![ValidatorInfo {
                consensus_key: validator.public_key(),
                node_key: key(TXS + 2).public_key(),
                power: 1,
            }],
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(dir.path()).expect("ledger");
        let genesis = initial_state(&init).expect("genesis");
        let set = palisade_runtime::to_set(&init.validators).expect("set");
        ledger
            .init_genesis(&chain, Hash([9; 32]), &genesis, &set)
            .expect("genesis");
        Chain {
            rt: Runtime::new(chain),
            ledger: Arc::new(ledger),
            senders,
            validator,
            _dir: dir,
        }
    }

    /// The next block, executed against the ledger, with a certificate.
    fn next(&self) -> (Block, CommitCertificate, BlockOutcome) {
        let latest = self.ledger.latest_height().expect("height");
        let h = latest.next().expect("next");
        let root = self
            .ledger
            .state_root(latest)
            .expect("root")
            .expect("root present");
        let txs: Vec<_> = self
            .senders
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Transaction {
                    chain_id: self.rt.chain_id().clone(),
                    nonce: latest.get(),
                    signer: k.address(),
                    action: Action::Transfer {
                        to: self.senders[(i + 1) % TXS].address(),
                        amount: 1,
                    },
                }
                .sign(k)
            })
            .collect();
        let outcome = self
            .rt
            .execute_block(self.ledger.as_ref(), root, h, &txs, Signatures::Verified)
            .expect("executes");
        let block = Block {
            eth_txs: Default::default(),
            header: BlockHeader {
                chain_id: self.rt.chain_id().clone(),
                height: h,
                time: Timestamp(h.get()),
                last_block_hash: Hash::ZERO,
                tx_root: Block::compute_tx_root(&txs, &[]),
                state_root: outcome.changes.root,
                receipts_root: outcome.receipts_root,
                validators_hash: outcome.next_validator_set.hash(),
                next_validators_hash: outcome.next_validator_set.hash(),
                proposer: self.validator.public_key(),
                last_commit_hash: Hash::ZERO,
            },
            txs: BoundedVec::new(txs).expect("fits"),
            last_commit: None,
        };
        // The ledger stores the certificate; checking it is consensus's job.
        let commit = CommitCertificate::new(
            h,
            Round(0),
            block.hash(),
            vec![CommitSig {
                validator: self.validator.public_key(),
                signature: Signature([0; 64]),
            }],
        )
        .expect("certificate");
        (block, commit, outcome)
    }
}

fn bench(c: &mut Criterion) {
    let chain = Chain::new();
    let mut g = c.benchmark_group("commit_block_1000_transfers");
    g.throughput(Throughput::Elements(TXS as u64));
    g.sample_size(10);
    g.bench_function("rocksdb_synced", |b| {
        b.iter_batched(
            || chain.next(),
            |(block, commit, outcome)| {
                chain
                    .ledger
                    .commit_block(
                        BlockWrite {
                            block: &block,
                            commit: &commit,
                            receipts: &outcome.receipts,
                            receipts_root: outcome.receipts_root,
                            refused: &outcome.refused,
                            state: &outcome.changes,
                            next_validators: &outcome.next_validator_set,
                            accounts: &palisade_node::app::tx_parties(
                                &block,
                                &[],
                                &outcome.receipts,
                            ),
                        },
                        Durability::Synced,
                    )
                    .expect("commits")
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
