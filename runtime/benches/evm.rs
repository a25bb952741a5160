//! EVM execution over the state tree: a block of 1,000 ERC-20 `transfer`
//! calls (the solc-compiled token of `tests/fixtures`), each from its own
//! sender holding tokens, to fresh recipients, with the post-state root
//! computed, the way a block's EVM transactions will run. Senders are
//! already recovered (that cost is `palisade-ethtx`'s bench).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_runtime::evm::{run_evm, EvmCall, EvmEnv, EvmStatus, EvmTarget};
use palisade_runtime::state::Overlay;
use palisade_runtime::{commit_writes, smt, MemStore};
use palisade_types::{EvmAddress, Hash};

// Shared with the tests, which use all of it.
#[allow(dead_code)]
#[path = "../tests/support/token.rs"]
mod token;

const TXS: usize = 1_000;

fn sender(i: usize) -> EvmAddress {
    let mut a = [0x5e; 20];
    a[12..].copy_from_slice(&(i as u64).to_be_bytes());
    EvmAddress(a)
}

fn recipient(i: usize, round: u64) -> EvmAddress {
    let mut a = [0x7e; 20];
    a[4..12].copy_from_slice(&round.to_be_bytes());
    a[12..].copy_from_slice(&(i as u64).to_be_bytes());
    EvmAddress(a)
}

fn env(height: u64) -> EvmEnv {
    EvmEnv {
        chain_id: 4242,
        height,
        time_ms: 1_700_000_000_000 + height * 200,
        tx_gas_limit: 16_777_216,
        block_gas_limit: 1_000_000_000,
        beneficiary: EvmAddress([0; 20]),
        base_fee: 0,
    }
}

fn call(caller: EvmAddress, target: EvmTarget, data: Vec<u8>, nonce: u64) -> EvmCall {
    EvmCall {
        caller,
        target,
        value: 0,
        data,
        gas_limit: 2_000_000,
        gas_price: 0,
        priority_fee: None,
        access_list: Vec::new(),
        nonce,
    }
}

/// Runs `calls` as one block on `store` at `root`; the new root.
fn block(store: &mut MemStore, root: Hash, height: u64, calls: &[EvmCall]) -> Hash {
    let mut st = Overlay::new(store);
    for c in calls {
        let out = run_evm(&mut st, &env(height), c, true).expect("executable");
        assert_eq!(out.status, EvmStatus::Success);
        st.commit_tx();
    }
    let changes = commit_writes(store, root, st.into_writes()).expect("root");
    store.apply(&changes);
    changes.root
}

/// A token deployed by sender 0 and 1,000 tokens given to each sender.
fn setup() -> (MemStore, Hash, EvmAddress) {
    let mut store = MemStore::default();
    let deployer = sender(0);
    let mut st = Overlay::new(&store);
    let out = run_evm(
        &mut st,
        &env(1),
        &call(
            deployer,
            EvmTarget::Create,
            token::creation_code(u128::MAX / 2),
            0,
        ),
        true,
    )
    .expect("deploy");
    let tok = out.created.expect("token address");
    st.commit_tx();
    let changes = commit_writes(&store, smt::EMPTY, st.into_writes()).expect("root");
    store.apply(&changes);
    let funding: Vec<EvmCall> = (1..=TXS)
        .map(|i| {
            call(
                deployer,
                EvmTarget::Call(tok),
                token::transfer(&sender(i), 1_000),
                i as u64,
            )
        })
        .collect();
    let root = block(&mut store, changes.root, 2, &funding);
    (store, root, tok)
}

fn erc20_block(c: &mut Criterion) {
    let (store, root, tok) = setup();
    let mut g = c.benchmark_group("evm_erc20_block");
    g.throughput(Throughput::Elements(TXS as u64));
    g.sample_size(20);
    let calls: Vec<EvmCall> = (1..=TXS)
        .map(|i| {
            call(
                sender(i),
                EvmTarget::Call(tok),
                token::transfer(&recipient(i, 0), 1),
                0,
            )
        })
        .collect();
    g.bench_function("1000_transfers_with_root", |b| {
        b.iter_batched(
            || store.clone(),
            |mut s| block(&mut s, root, 3, &calls),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, erc20_block);
criterion_main!(benches);
