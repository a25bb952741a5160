//! Hashing a file (root and outboard) and verifying its pieces: the
//! per-byte costs of publishing and of downloading (issue 30's 300 MB/s
//! from one holder includes verification).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_files::{encode_piece, piece_count, verify_piece, Prepared, PIECE_BYTES};

fn bench(c: &mut Criterion) {
    let len = 64 * PIECE_BYTES as usize;
    let data: Vec<u8> = (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect();
    let file = Prepared::of(&data).expect("prepared");
    let pieces: Vec<Vec<u8>> = (0..piece_count(file.size))
        .map(|p| {
            let mut out = Vec::new();
            encode_piece(&file, &data, p, &mut out).expect("encoded");
            out
        })
        .collect();
    let mut g = c.benchmark_group("files_64_MiB");
    g.throughput(Throughput::Bytes(len as u64));
    g.sample_size(10);
    g.bench_function("prepare (root and outboard)", |b| {
        b.iter(|| Prepared::of(&data).expect("prepared"))
    });
    g.bench_function("encode every piece", |b| {
        let mut out = Vec::with_capacity(PIECE_BYTES as usize + 8192);
        b.iter(|| {
            for p in 0..piece_count(file.size) {
                out.clear();
                encode_piece(&file, &data, p, &mut out).expect("encoded");
            }
        })
    });
    g.bench_function("verify every piece", |b| {
        b.iter(|| {
            for (p, e) in pieces.iter().enumerate() {
                verify_piece(&file.root, file.size, p as u64, e).expect("verified");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
