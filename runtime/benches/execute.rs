//! Verified-and-executed transfers per second for a 1,000-transaction
//! block, each from its own account: signatures checked in one batch, one
//! at a time, or not at all (already verified at mempool admission), then
//! executed with the post-state root computed. A second group runs the
//! pre-verified block against a state of 10,000 accounts, the load
//! generator's, where the tree is deeper and most pages a block rewrites
//! hold other accounts' leaves. A third measures the mempool's admission
//! check of the same transfers (signatures already verified).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_runtime::{
    initial_state, ChainParams, InitialState, MemStore, NonceRule, Runtime, Signatures,
    ValidatorInfo,
};
use palisade_types::{
    Action, Address, ChainId, Hash, Height, Keypair, Role, SignedTransaction, Transaction,
};

const TXS: usize = 1_000;
const ACCOUNTS: usize = 10_000;

fn key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    Keypair::from_seed(seed)
}

/// A store holding genesis with `init`, and its root.
fn genesis(init: &InitialState) -> (MemStore, Hash) {
    let changes = initial_state(init).expect("genesis");
    let mut store = MemStore::default();
    store.apply(&changes);
    (store, changes.root)
}

/// One transfer of 1 from each sender (nonce 0) to `to(i)`.
fn transfers(
    chain: &ChainId,
    senders: &[Keypair],
    to: impl Fn(usize) -> Address,
) -> Vec<SignedTransaction> {
    senders
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Transaction {
                chain_id: chain.clone(),
                nonce: 0,
                signer: k.address(),
                action: Action::Transfer {
                    to: to(i),
                    amount: 1,
                },
            }
            .sign(k)
        })
        .collect()
}

/// Genesis accounts for `keys`, each funded and a member.
fn members(keys: &[Keypair]) -> Vec<(Address, u128, Vec<Role>)> {
    keys.iter()
        .map(|k| (k.address(), 1_000_000u128, vec![Role::Member]))
        .collect()
}

fn bench(c: &mut Criterion) {
    let chain = ChainId::new("bench").expect("valid");
    let senders: Vec<Keypair> = (0..TXS).map(key).collect();
    let init = InitialState {
        evm_accounts: Vec::new(),
        params: ChainParams::default(),
        accounts: members(&senders),
        validators: vec![ValidatorInfo {
            consensus_key: key(TXS + 1).public_key(),
            node_key: key(TXS + 2).public_key(),
            power: 1,
        }],
    };
    let (store, root) = genesis(&init);
    let txs = transfers(&chain, &senders, |i| senders[(i + 1) % TXS].address());
    let rt = Runtime::new(chain);

    let mut g = c.benchmark_group("execute_block_1000_transfers");
    g.throughput(Throughput::Elements(TXS as u64));
    g.sample_size(20);
    for (name, sigs) in [
        ("batch_verify", Signatures::Verify),
        ("single_verify", Signatures::VerifyEach),
        ("preverified", Signatures::Verified),
    ] {
        let out = rt
            .execute_block(&store, root, Height(1), &txs, sigs)
            .expect("block executes");
        assert!(out.receipts.iter().all(|r| r.is_success()));
        g.bench_function(name, |b| {
            b.iter(|| rt.execute_block(&store, root, Height(1), &txs, sigs))
        });
    }
    g.finish();

    // Transfers to accounts spread over the whole 10,000: each touches two
    // leaves in different parts of the tree, as under the bench load.
    let everyone: Vec<Keypair> = (0..ACCOUNTS).map(key).collect();
    let init = InitialState {
        evm_accounts: Vec::new(),
        accounts: members(&everyone),
        ..init
    };
    let (store, root) = genesis(&init);
    let txs = transfers(rt.chain_id(), &senders, |i| {
        everyone[TXS + (i * 7919) % (ACCOUNTS - TXS)].address()
    });
    let out = rt
        .execute_block(&store, root, Height(1), &txs, Signatures::Verified)
        .expect("block executes");
    assert!(out.receipts.iter().all(|r| r.is_success()));
    let mut g = c.benchmark_group("execute_block_1000_transfers_10k_accounts");
    g.throughput(Throughput::Elements(TXS as u64));
    g.sample_size(30);
    g.bench_function("preverified", |b| {
        b.iter(|| rt.execute_block(&store, root, Height(1), &txs, Signatures::Verified))
    });
    g.finish();

    let check = |tx: &SignedTransaction| {
        rt.check_tx(
            &store,
            Height(1),
            tx,
            Signatures::Verified,
            NonceRule::Window,
        )
    };
    assert!(txs.iter().all(|t| matches!(check(t), Ok(Ok(())))));
    let mut g = c.benchmark_group("check_tx_1000_transfers_10k_accounts");
    g.throughput(Throughput::Elements(TXS as u64));
    g.sample_size(30);
    g.bench_function("preverified", |b| {
        b.iter(|| {
            txs.iter()
                .map(check)
                .filter(|r| matches!(r, Ok(Ok(()))))
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
