//! Pieces against independent BLAKE3 and against tampering, and the golden
//! vectors of `docs/files.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use palisade_files::{
    encode_piece, piece_count, piece_range, verify_piece, FileError, FileRoot, Prepared,
    MAX_ENCODED_PIECE_BYTES, PIECE_BYTES,
};

/// The vectors' file: byte i is (31 i + 7) mod 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn encoded(file: &Prepared, data: &[u8], piece: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_piece(file, data, piece, &mut out).unwrap();
    out
}

#[test]
fn the_root_is_the_files_blake3_hash() {
    for len in [0, 1, 1024, 16 * 1024 + 1, 3 * PIECE_BYTES as usize + 5] {
        let data = pattern(len);
        let file = Prepared::of(&data).unwrap();
        // blake3's own hash: the tree's root does not depend on the groups.
        assert_eq!(file.root.0, *blake3::hash(&data).as_bytes(), "{len}");
        assert_eq!(file.root, FileRoot::of(&data));
        assert_eq!(file.size, len as u64);
    }
    // The root of `hello` that docs/spec.md's file-publish-tx vector and
    // rpc.md's examples name.
    assert_eq!(
        FileRoot::of(b"hello").to_string(),
        "0xea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
    );
    assert_eq!(
        FileRoot::of(b"").to_string(),
        "0xaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
}

#[test]
fn every_piece_verifies_and_together_they_are_the_file() {
    for len in [
        0,
        700,
        PIECE_BYTES as usize,
        2 * PIECE_BYTES as usize + 16_385,
    ] {
        let data = pattern(len);
        let file = Prepared::of(&data).unwrap();
        let mut joined = Vec::new();
        for piece in 0..piece_count(file.size) {
            let e = encoded(&file, &data, piece);
            assert!(e.len() <= MAX_ENCODED_PIECE_BYTES);
            let bytes = verify_piece(&file.root, file.size, piece, &e).unwrap();
            let r = piece_range(file.size, piece).unwrap();
            assert_eq!(
                bytes,
                data[r.start as usize..r.end as usize],
                "{len} {piece}"
            );
            joined.extend(bytes);
        }
        assert_eq!(joined, data, "{len}");
    }
}

#[test]
fn a_tampered_misplaced_or_padded_piece_is_refused() {
    let data = pattern(3 * PIECE_BYTES as usize + 5);
    let file = Prepared::of(&data).unwrap();
    let good = encoded(&file, &data, 1);
    // Any flipped byte, hash or data, anywhere.
    for at in [0, 63, 64, 1000, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 1;
        assert!(
            matches!(
                verify_piece(&file.root, file.size, 1, &bad),
                Err(FileError::Corrupt { piece: 1, .. })
            ),
            "flip at {at}"
        );
    }
    // The right bytes under another index, root or size.
    assert!(verify_piece(&file.root, file.size, 2, &good).is_err());
    let other = FileRoot::of(b"another file");
    assert!(verify_piece(&other, file.size, 1, &good).is_err());
    // Only the last piece proves the size (as in BLAKE3 itself): a middle
    // piece verifies under any size that gives the tree the same shape
    // there. The size comes from the chain's record, not from a peer.
    let last = encoded(&file, &data, 3);
    assert!(verify_piece(&file.root, file.size, 3, &last).is_ok());
    assert!(verify_piece(&file.root, file.size + 1, 3, &last).is_err());
    assert!(verify_piece(&file.root, file.size - 1, 3, &last).is_err());
    // Cut short, or with bytes after it.
    assert!(verify_piece(&file.root, file.size, 1, &good[..good.len() - 1]).is_err());
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        verify_piece(&file.root, file.size, 1, &long),
        Err(FileError::TrailingBytes { piece: 1, extra: 1 })
    ));
    // Past the end, and oversized input refused before any hashing.
    assert!(matches!(
        verify_piece(&file.root, file.size, 4, &good),
        Err(FileError::NoSuchPiece { piece: 4, .. })
    ));
    let huge = vec![0u8; MAX_ENCODED_PIECE_BYTES + 1];
    assert!(matches!(
        verify_piece(&file.root, file.size, 0, &huge),
        Err(FileError::EncodingTooLarge { .. })
    ));
}

#[test]
fn a_holder_with_a_rotten_copy_sends_an_error_not_bad_bytes() {
    let data = pattern(PIECE_BYTES as usize + 100);
    let file = Prepared::of(&data).unwrap();
    let mut rotten = data.clone();
    rotten[PIECE_BYTES as usize + 50] ^= 0x80;
    let mut out = Vec::new();
    assert!(encode_piece(&file, &rotten, 1, &mut out).is_err());
    // The piece before the rot is still served.
    assert!(encode_piece(&file, &rotten, 0, &mut Vec::new()).is_ok());
}

#[test]
fn roots_parse_and_print_as_hex() {
    let r = FileRoot::of(b"x");
    assert_eq!(r.to_string().parse::<FileRoot>().unwrap(), r);
    for bad in ["", "0x12", "zz", &"0".repeat(65)] {
        assert!(bad.parse::<FileRoot>().is_err(), "{bad}");
    }
}

/// The `name: value` fields of `docs/files.md`'s vector `vector`.
fn doc_vector(vector: &str) -> impl Fn(&str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/files.md"))
        .unwrap();
    let block = doc
        .split(&format!("vector: {vector}"))
        .nth(1)
        .unwrap_or_else(|| panic!("vector {vector} in docs/files.md"))
        .to_string();
    move |name: &str| -> String {
        block
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in the vector"))
            .trim()
            .to_string()
    }
}

/// `docs/files.md`'s vector `file-pieces`.
#[test]
fn golden_vectors_in_docs() {
    let field = doc_vector("file-pieces");
    let len: usize = field("size").parse().unwrap();
    let data = pattern(len);
    let file = Prepared::of(&data).unwrap();
    assert_eq!(file.root.to_string(), field("root"));
    assert_eq!(piece_count(file.size).to_string(), field("pieces"));
    for piece in [0u64, 3] {
        let e = encoded(&file, &data, piece);
        assert_eq!(
            e.len().to_string(),
            field(&format!("piece_{piece}_encoded_bytes"))
        );
        assert_eq!(
            format!("0x{}", hex::encode(blake3::hash(&e).as_bytes())),
            field(&format!("piece_{piece}_encoded_blake3"))
        );
    }
}

mod partial {
    use super::*;
    use palisade_files::PartialFile;

    fn file(len: usize) -> (Vec<u8>, Prepared) {
        let data = pattern(len);
        let f = Prepared::of(&data).unwrap();
        (data, f)
    }

    #[test]
    fn a_download_resumes_with_only_the_missing_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let (data, f) = file(3 * PIECE_BYTES as usize + 5);
        {
            let mut p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
            assert_eq!(p.missing(), vec![0, 1, 2, 3]);
            p.write_piece(2, &encoded(&f, &data, 2)).unwrap();
            p.write_piece(0, &encoded(&f, &data, 0)).unwrap();
            // Written twice: no harm.
            p.write_piece(0, &encoded(&f, &data, 0)).unwrap();
        }
        // Reopened (a restart): it holds what it wrote.
        let mut p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        assert_eq!(p.missing(), vec![1, 3]);
        assert!(!p.is_complete());
        for piece in p.missing() {
            p.write_piece(piece, &encoded(&f, &data, piece)).unwrap();
        }
        // Written, not yet durable: not held until flushed.
        assert!(!p.is_complete());
        assert_eq!(p.unflushed(), 2);
        p.flush().unwrap();
        assert!(p.is_complete());
        let done = p.finish().unwrap();
        assert_eq!(std::fs::read(&done).unwrap(), data);
        assert_eq!(
            done.file_name().unwrap().to_string_lossy(),
            hex::encode(f.root.0)
        );
        // Only the finished file and its outboard are left.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let hex = hex::encode(f.root.0);
        assert_eq!(names, vec![hex.clone(), format!("{hex}.obao")]);
    }

    /// A crash before the flush (no destructor runs) loses the unflushed
    /// pieces, and only them: they are fetched again.
    #[test]
    fn pieces_not_flushed_before_a_crash_are_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let (data, f) = file(3 * PIECE_BYTES as usize);
        let mut p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        p.write_piece(0, &encoded(&f, &data, 0)).unwrap();
        p.flush().unwrap();
        p.write_piece(2, &encoded(&f, &data, 2)).unwrap();
        std::mem::forget(p);
        let p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        assert_eq!(p.missing(), vec![1, 2]);
    }

    #[test]
    fn a_bad_piece_changes_nothing_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (data, f) = file(2 * PIECE_BYTES as usize);
        let mut p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        let mut bad = encoded(&f, &data, 1);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(p.write_piece(1, &bad).is_err());
        assert!(!p.has(1));
        drop(p);
        let bytes = std::fs::read(
            dir.path()
                .join(format!("{}.partial", hex::encode(f.root.0))),
        )
        .unwrap();
        assert!(
            bytes.iter().all(|b| *b == 0),
            "nothing of the bad piece written"
        );
        let p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        assert_eq!(p.missing(), vec![0, 1]);
        assert!(matches!(
            p.finish(),
            Err(FileError::Incomplete {
                missing: 2,
                first: 0
            })
        ));
    }

    #[test]
    fn bytes_without_their_bit_are_fetched_again() {
        // A crash after a piece's bytes reached the disk but before its bit
        // did: the piece does not count as held.
        let dir = tempfile::tempdir().unwrap();
        let (data, f) = file(PIECE_BYTES as usize + 10);
        drop(PartialFile::open(dir.path(), f.root, f.size).unwrap());
        let partial = dir
            .path()
            .join(format!("{}.partial", hex::encode(f.root.0)));
        let mut bytes = std::fs::read(&partial).unwrap();
        bytes[..PIECE_BYTES as usize].copy_from_slice(&data[..PIECE_BYTES as usize]);
        std::fs::write(&partial, bytes).unwrap();
        let p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        assert_eq!(p.missing(), vec![0, 1]);
    }

    #[test]
    fn piece_bits_without_the_partial_file_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let (data, f) = file(PIECE_BYTES as usize + 10);
        let mut p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        p.write_piece(0, &encoded(&f, &data, 0)).unwrap();
        drop(p);
        std::fs::remove_file(
            dir.path()
                .join(format!("{}.partial", hex::encode(f.root.0))),
        )
        .unwrap();
        let p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        assert_eq!(p.missing(), vec![0, 1]);
    }

    /// Damaged bits (a torn write, a bit past the end) are not trusted:
    /// the download starts over instead of being stuck on them.
    #[test]
    fn a_damaged_piece_bitfield_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let (data, f) = file(3 * PIECE_BYTES as usize);
        let mut p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        p.write_piece(0, &encoded(&f, &data, 0)).unwrap();
        drop(p);
        let bits = dir.path().join(format!("{}.pieces", hex::encode(f.root.0)));
        // Three pieces: a bit for a fourth cannot be.
        std::fs::write(&bits, [0b1001]).unwrap();
        let p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        assert_eq!(p.missing(), vec![0, 1, 2]);
        drop(p);
        std::fs::write(&bits, [1, 0]).unwrap();
        let p = PartialFile::open(dir.path(), f.root, f.size).unwrap();
        assert_eq!(p.missing(), vec![0, 1, 2]);
        assert_eq!(std::fs::read(&bits).unwrap(), vec![0]);
    }
}

mod permits {
    use super::*;
    use palisade_files::{PermitError, Purpose, ReadPermit, SignedReadPermit, MAX_PERMIT_MS};
    use palisade_types::{ChainId, Keypair};

    const NOW: u64 = 1_800_000_000_000;

    fn setup() -> (ChainId, Keypair, FileRoot, Vec<u8>) {
        (
            ChainId::new("files-test").unwrap(),
            Keypair::from_seed([7; 32]),
            FileRoot::of(b"a shared file"),
            b"peer-a".to_vec(),
        )
    }

    #[test]
    fn a_permit_is_good_for_its_file_its_node_and_its_time_only() {
        let (chain, key, root, peer) = setup();
        let p = ReadPermit::new(root, &peer, NOW + 60_000, key.address())
            .unwrap()
            .sign(&chain, &key, Purpose::Fetch);
        assert_eq!(
            p.check(&chain, Purpose::Fetch, &root, &peer, NOW),
            Ok(key.address())
        );
        let other_root = FileRoot::of(b"another");
        assert_eq!(
            p.check(&chain, Purpose::Fetch, &other_root, &peer, NOW),
            Err(PermitError::OtherFile)
        );
        // Replayed by another node.
        assert_eq!(
            p.check(&chain, Purpose::Fetch, &root, b"peer-b", NOW),
            Err(PermitError::OtherPeer)
        );
        assert!(matches!(
            p.check(&chain, Purpose::Fetch, &root, &peer, NOW + 60_000),
            Err(PermitError::Expired { .. })
        ));
        // Signed for another chain, or by someone else for this reader.
        let other_chain = ChainId::new("other-chain").unwrap();
        assert_eq!(
            p.check(&other_chain, Purpose::Fetch, &root, &peer, NOW),
            Err(PermitError::BadSignature)
        );
        let mallory = Keypair::from_seed([8; 32]);
        let forged = ReadPermit::new(root, &peer, NOW + 60_000, key.address())
            .unwrap()
            .sign(&chain, &mallory, Purpose::Fetch);
        assert_eq!(
            forged.check(&chain, Purpose::Fetch, &root, &peer, NOW),
            Err(PermitError::BadSignature)
        );
        // A changed field breaks the signature.
        let mut stretched = p.clone();
        stretched.permit.expires_ms += 1;
        assert_eq!(
            stretched.check(&chain, Purpose::Fetch, &root, &peer, NOW),
            Err(PermitError::BadSignature)
        );
        // No standing grants.
        let long = ReadPermit::new(root, &peer, NOW + MAX_PERMIT_MS + 1, key.address())
            .unwrap()
            .sign(&chain, &key, Purpose::Fetch);
        assert_eq!(
            long.check(&chain, Purpose::Fetch, &root, &peer, NOW),
            Err(PermitError::TooLong)
        );
        assert_eq!(
            ReadPermit::new(root, &[0; 65], NOW, key.address()),
            Err(PermitError::PeerIdTooLong)
        );
        // A permit to fetch from peers, which the node shows them, is no
        // permit to read at the node, nor the other way round.
        assert_eq!(
            p.check(&chain, Purpose::Access, &root, &peer, NOW),
            Err(PermitError::BadSignature)
        );
        let access = ReadPermit::new(root, &peer, NOW + 60_000, key.address())
            .unwrap()
            .sign(&chain, &key, Purpose::Access);
        assert_eq!(
            access.check(&chain, Purpose::Access, &root, &peer, NOW),
            Ok(key.address())
        );
        assert_eq!(
            access.check(&chain, Purpose::Fetch, &root, &peer, NOW),
            Err(PermitError::BadSignature)
        );
    }

    #[test]
    fn permits_decode_bounded_and_canonically() {
        let (chain, key, root, peer) = setup();
        let p = ReadPermit::new(root, &peer, NOW + 1, key.address())
            .unwrap()
            .sign(&chain, &key, Purpose::Fetch);
        let bytes = borsh::to_vec(&p).unwrap();
        assert_eq!(borsh::from_slice::<SignedReadPermit>(&bytes).unwrap(), p);
        // A peer id length over the bound is refused before it is read.
        let mut long = bytes.clone();
        long[32..36].copy_from_slice(&65u32.to_le_bytes());
        assert!(borsh::from_slice::<SignedReadPermit>(&long).is_err());
        assert!(borsh::from_slice::<SignedReadPermit>(&bytes[..bytes.len() - 1]).is_err());
    }

    /// `docs/files.md`'s vector `read-permit`.
    #[test]
    fn permit_golden_vector_in_docs() {
        let field = doc_vector("read-permit");
        let (chain, key, root, peer) = setup();
        let p = ReadPermit::new(root, &peer, NOW + 60_000, key.address()).unwrap();
        assert_eq!(field("reader"), key.address().to_string());
        assert_eq!(field("root"), root.to_string());
        assert_eq!(
            field("signing_bytes"),
            format!("0x{}", hex::encode(p.signing_bytes(&chain, Purpose::Fetch)))
        );
        let signed = p.sign(&chain, &key, Purpose::Fetch);
        assert_eq!(field("signature"), signed.signature.to_string());
        assert_eq!(
            field("encoded"),
            format!("0x{}", hex::encode(borsh::to_vec(&signed).unwrap()))
        );
    }
}

mod store;
mod swarm;

mod wire {
    use palisade_files::wire::{BlobResponse, Holding, Refusal};

    /// The copy-free decoding of a piece answer agrees with the plain one
    /// on every input: good, short, long, padded, other variants.
    #[test]
    fn owned_decoding_agrees_with_plain_decoding() {
        let piece = BlobResponse::Piece {
            encoded: palisade_types::BoundedBytes::new(vec![7u8; 1000]).unwrap(),
        };
        let good = piece.encode();
        assert_eq!(BlobResponse::piece_header(1000).as_slice(), &good[..5]);
        let mut padded = good.clone();
        padded.push(0);
        let short = good[..good.len() - 1].to_vec();
        let mut lying = good.clone();
        lying[1..5].copy_from_slice(&(u32::MAX).to_le_bytes());
        let inputs = vec![
            good,
            padded,
            short,
            lying,
            vec![1],
            vec![1, 0, 0],
            Vec::new(),
            BlobResponse::Have {
                holding: Holding::Complete,
            }
            .encode(),
            BlobResponse::refused(Refusal::Busy, "later").encode(),
        ];
        for bytes in inputs {
            let plain = BlobResponse::decode(&bytes);
            let owned = BlobResponse::decode_owned(bytes.clone());
            assert_eq!(plain.is_ok(), owned.is_ok(), "{bytes:?}");
            if let (Ok(a), Ok(b)) = (plain, owned) {
                assert_eq!(a, b);
            }
        }
    }
}
