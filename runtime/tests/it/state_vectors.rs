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
