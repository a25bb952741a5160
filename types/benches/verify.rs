//! Decoding and signature checks of transactions as a node does them:
//! one transaction from a client (decode + single verify) and a gossip or
//! block batch (decode + one batch verify). Signer keys repeat, as they do
//! on a running chain, so the node's decompressed-key cache is warm after
//! the first iteration.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_types::batch::{verify_cofactored, verify_transactions};
use palisade_types::{
    decode, encode, Action, Address, ChainId, Keypair, SignedTransaction, Transaction,
};

fn signed(n: usize) -> Vec<Vec<u8>> {
    let chain = ChainId::new("bench").expect("valid");
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let k = Keypair::from_seed(seed);
            encode(
                &Transaction {
                    chain_id: chain.clone(),
                    nonce: i as u64,
                    signer: k.address(),
                    action: Action::Transfer {
                        to: Address([7; 32]),
                        amount: 1,
                    },
                }
                .sign(&k),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let one = signed(1).remove(0);
    let mut g = c.benchmark_group("tx_decode_verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| {
        b.iter(|| {
            let tx: SignedTransaction = decode(&one).expect("decodes");
            assert!(verify_cofactored(
                &tx.tx.signer.public_key(),
                &tx.tx.signing_bytes(),
                &tx.signature
            ));
        })
    });
    g.finish();

    for n in [8usize, 16, 64, 256, 1_000] {
        let raw = signed(n);
        let mut g = c.benchmark_group(format!("tx_decode_verify_batch_{n}"));
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(20);
        g.bench_function("batch", |b| {
            b.iter_batched(
                || raw.clone(),
                |raw| {
                    let txs: Vec<SignedTransaction> =
                        raw.iter().map(|r| decode(r).expect("decodes")).collect();
                    assert_eq!(verify_transactions(&txs), Ok(()));
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
