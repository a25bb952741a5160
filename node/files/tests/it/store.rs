//! The blob store: imports, serving complete and partial files, listing
//! and removal.

use palisade_files::{BlobStore, FileError, FileRoot, Held, Prepared, PIECE_BYTES};

use super::pattern;

fn import(store: &BlobStore, data: &[u8]) -> (FileRoot, u64) {
    let src = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(src.path(), data).unwrap();
    store.import(src.path()).unwrap()
}

#[test]
fn an_import_is_hashed_copied_and_served_piece_by_piece() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = pattern(3 * PIECE_BYTES as usize + 12_345);
    let (root, size) = import(&store, &data);
    assert_eq!(root, FileRoot::of(&data));
    assert_eq!(size, data.len() as u64);
    assert_eq!(store.held(&root, size).unwrap(), Held::Complete);
    assert_eq!(
        std::fs::read(store.complete_path(&root).unwrap()).unwrap(),
        data
    );
    // The pieces it serves are the in-memory encoder's, byte for byte.
    let mem = Prepared::of(&data).unwrap();
    for piece in 0..4 {
        let mut from_disk = Vec::new();
        store
            .encode_piece(&root, size, piece, &mut from_disk)
            .unwrap();
        let mut from_mem = Vec::new();
        palisade_files::encode_piece(&mem, &data, piece, &mut from_mem).unwrap();
        assert_eq!(from_disk, from_mem, "piece {piece}");
    }
    // Importing the same bytes again changes nothing; no temporary files.
    assert_eq!(import(&store, &data), (root, size));
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].complete);
    assert!(listed[0].disk_bytes > size, "file and outboard");
    let names = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(names, 2, "the file and its outboard");
}

#[test]
fn empty_and_tiny_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    for data in [Vec::new(), b"hello".to_vec()] {
        let (root, size) = import(&store, &data);
        assert_eq!(root, FileRoot::of(&data));
        let mut enc = Vec::new();
        store.encode_piece(&root, size, 0, &mut enc).unwrap();
        assert_eq!(
            palisade_files::verify_piece(&root, size, 0, &enc).unwrap(),
            data
        );
    }
}

#[test]
fn a_partial_holder_serves_exactly_the_pieces_it_holds() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = BlobStore::open(src_dir.path()).unwrap();
    let data = pattern(5 * PIECE_BYTES as usize + 99);
    let (root, size) = import(&src, &data);
    let piece = |i: u64| {
        let mut out = Vec::new();
        src.encode_piece(&root, size, i, &mut out).unwrap();
        out
    };

    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut p = store.partial(root, size).unwrap();
    for i in [1, 4] {
        p.write_piece(i, &piece(i)).unwrap();
    }
    p.flush().unwrap();
    match store.held(&root, size).unwrap() {
        Held::Partial { bits, pieces } => {
            assert_eq!(pieces, 2);
            assert_eq!(bits, vec![0b0001_0010]);
        }
        other => panic!("{other:?}"),
    }
    // Held pieces are served, from the partial file and the tree hashes
    // that came with them, identical to the source's.
    for i in [1, 4] {
        let mut out = Vec::new();
        store.encode_piece(&root, size, i, &mut out).unwrap();
        assert_eq!(out, piece(i), "piece {i}");
    }
    // Others are not.
    let mut out = Vec::new();
    assert!(matches!(
        store.encode_piece(&root, size, 0, &mut out),
        Err(FileError::NotHeld { piece: 0 })
    ));
    // Complete it; it is then a complete file.
    for i in [0, 2, 3, 5] {
        p.write_piece(i, &piece(i)).unwrap();
    }
    p.finish().unwrap();
    assert_eq!(store.held(&root, size).unwrap(), Held::Complete);
    for i in 0..6 {
        let mut out = Vec::new();
        store.encode_piece(&root, size, i, &mut out).unwrap();
        assert_eq!(out, piece(i), "piece {i}");
    }
}

#[test]
fn a_rotten_copy_is_not_served_and_remove_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let data = pattern(2 * PIECE_BYTES as usize);
    let (root, size) = import(&store, &data);
    let path = store.complete_path(&root).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[PIECE_BYTES as usize + 5] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let mut out = Vec::new();
    store.encode_piece(&root, size, 0, &mut out).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        store.encode_piece(&root, size, 1, &mut out),
        Err(FileError::Corrupt { piece: 1, .. })
    ));
    // A record that says another size is not served from this copy.
    let mut out = Vec::new();
    assert!(store.encode_piece(&root, size + 1, 0, &mut out).is_err());
    let freed = store.remove(&root).unwrap();
    assert!(freed > size);
    assert_eq!(store.held(&root, size).unwrap(), Held::Nothing);
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn interrupted_imports_are_cleaned_up_on_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("import-1-0.tmp"), b"half").unwrap();
    std::fs::write(dir.path().join("unrelated"), b"x").unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    assert!(!dir.path().join("import-1-0.tmp").exists());
    assert!(
        store.list().unwrap().is_empty(),
        "foreign names are ignored"
    );
}
