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

/// `docs/files.md`'s vector `file-pieces`.
#[test]
fn golden_vectors_in_docs() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/files.md"))
        .unwrap();
    let block = doc
        .split("vector: file-pieces")
        .nth(1)
        .expect("vector file-pieces in docs/files.md");
    let field = |name: &str| -> String {
        block
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in the vector"))
            .trim()
            .to_string()
    };
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
