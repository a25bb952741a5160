//! Sender recovery: libsecp256k1 against k256 on the same transactions,
//! one at a time and in batches.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use palisade_ethtx::{decode, recover_batch, Backend, EthTx};

fn txs(n: u64) -> Vec<EthTx> {
    (0..n)
        .map(|i| {
            let seed = [u8::try_from(i % 200).unwrap_or(0) + 1; 32];
            let key = k256::ecdsa::SigningKey::from_slice(&seed).expect("key");
            let tx = TxEip1559 {
                chain_id: 42,
                nonce: i,
                gas_limit: 60_000,
                max_fee_per_gas: 0,
                max_priority_fee_per_gas: 0,
                to: TxKind::Call(Address::repeat_byte(0x35)),
                value: U256::ZERO,
                input: Bytes::from(vec![0xa9; 68]),
                access_list: Default::default(),
            };
            let (sig, id) = key
                .sign_prehash_recoverable(tx.signature_hash().as_slice())
                .expect("sign");
            let env: TxEnvelope = tx
                .into_signed(Signature::from_signature_and_parity(sig, id.is_y_odd()))
                .into();
            decode(&env.encoded_2718(), 42).expect("decode")
        })
        .collect()
}

fn single(c: &mut Criterion) {
    let txs = txs(64);
    let mut g = c.benchmark_group("recover_one");
    for backend in [Backend::Libsecp256k1, Backend::K256] {
        g.bench_function(format!("{backend:?}"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % txs.len();
                txs[i].recover_sender(backend)
            })
        });
    }
    g.finish();
}

fn batch(c: &mut Criterion) {
    let txs = txs(1_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("recover_batch_1000");
    g.throughput(Throughput::Elements(1_000));
    for t in [1, threads] {
        g.bench_with_input(BenchmarkId::from_parameter(t), &t, |b, &t| {
            b.iter(|| recover_batch(&txs, t))
        });
    }
    g.finish();
}

criterion_group!(benches, single, batch);
criterion_main!(benches);
