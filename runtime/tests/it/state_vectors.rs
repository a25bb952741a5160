//! `docs/state.md` must list exactly the vectors the code produces.

use palisade_runtime::smt::{self, Proof};
use palisade_types::test_vectors::{compare_doc, parse_doc};
use palisade_types::Hash;

const DOC: &str = include_str!("../../../docs/state.md");

#[test]
fn state_document_matches_the_code() {
    if let Err(e) = compare_doc(DOC, &palisade_runtime::test_vectors::all()) {
        panic!("docs/state.md: {e}");
    }
}

/// The printed proof verifies with nothing but the document's data.
#[test]
fn printed_proofs_verify() {
    let doc = parse_doc(DOC);
    let (_, f) = doc.iter().find(|(n, _)| n == "smt-three-entries").unwrap();
    let get = |k: &str| f.iter().find(|(x, _)| x == k).unwrap().1.clone();
    let root: Hash = get("root").parse().unwrap();
    let siblings = |s: String| -> Vec<Hash> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(|h| h.parse().unwrap())
            .collect()
    };
    let leaf = |s: String| -> Option<(Hash, Hash)> {
        s.split_once(',')
            .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
    };
    let pa = Proof {
        siblings: siblings(get("proof_a_siblings")),
        leaf: leaf(get("proof_a_leaf")),
    };
    assert!(smt::verify(&root, b"a", Some(b"1"), &pa));
    let pz = Proof {
        siblings: siblings(get("proof_z_siblings")),
        leaf: leaf(get("proof_z_leaf")),
    };
    assert!(smt::verify(&root, b"z", None, &pz));
    assert!(!smt::verify(&root, b"z", Some(b"1"), &pz));
}

/// The printed pages are the whole tree: decoded against their printed
/// hashes, they alone prove every entry and the root.
#[test]
fn printed_pages_hold_the_whole_tree() {
    use palisade_runtime::page::Page;
    use palisade_runtime::smt::PageSource;
    use palisade_runtime::StoreError;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    struct Printed(BTreeMap<Hash, Arc<Page>>);
    impl PageSource for Printed {
        fn page(&self, h: &Hash) -> Result<Option<Arc<Page>>, StoreError> {
            Ok(self.0.get(h).cloned())
        }
    }
    let doc = parse_doc(DOC);
    let (_, f) = doc.iter().find(|(n, _)| n == "state-pages").unwrap();
    let get = |k: &str| f.iter().find(|(x, _)| x == k).unwrap().1.clone();
    let bytes = |k: &str| {
        let s = get(k);
        let s = s.trim_start_matches("0x");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    let root: Hash = get("root").parse().unwrap();
    let child: Hash = get("child_page_hash").parse().unwrap();
    let pages = Printed(
        [
            (root, Page::decode(&bytes("root_page"), &root).unwrap()),
            (child, Page::decode(&bytes("child_page"), &child).unwrap()),
        ]
        .into_iter()
        .map(|(h, p)| (h, Arc::new(p)))
        .collect(),
    );
    let big = vec![b'x'; 300];
    for (k, v) in [(&b"a"[..], &big[..]), (b"b", b"2"), (b"e", b"5")] {
        let (proof, leaf) = smt::prove(&pages, root, palisade_types::sha256(k)).unwrap();
        let leaf = leaf.unwrap();
        assert_eq!(leaf.value.is_some(), v.len() < 256);
        assert!(smt::verify(&root, k, Some(v), &proof));
    }
    assert_eq!(get("blob_hash"), palisade_types::sha256(&big).to_string());
}
