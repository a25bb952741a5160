//! `docs/spec.md` must contain exactly the vectors the code produces.

use palisade_types::test_vectors::{all, compare_doc, parse_doc};
use palisade_types::{
    decode, encode, parse_hex, sha256, BlockHeader, CommitCertificate, SignedTransaction,
    SignedVote, ValidatorSet, Wire,
};

const SPEC: &str = include_str!("../../../docs/spec.md");

fn doc_vectors() -> Vec<(String, Vec<(String, String)>)> {
    parse_doc(SPEC)
}

/// Vectors of the document that need execution, checked by the node's
/// tests (`node/tests/it/spec_deferred.rs`).
const CHECKED_BY_THE_NODE: &[&str] = &["deferred-execution"];

/// The document without the vector blocks [`CHECKED_BY_THE_NODE`].
fn spec_for_this_crate() -> String {
    let mut out = String::new();
    let mut rest = SPEC;
    while let Some(start) = rest.find("```text\n") {
        let body = &rest[start + "```text\n".len()..];
        let end = body
            .find("```")
            .map_or(rest.len(), |e| start + "```text\n".len() + e + 3);
        let skip = CHECKED_BY_THE_NODE
            .iter()
            .any(|n| body.starts_with(&format!("vector: {n}\n")));
        out.push_str(&rest[..if skip { start } else { end }]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn spec_document_matches_the_code() {
    if let Err(e) = compare_doc(&spec_for_this_crate(), &all()) {
        panic!("docs/spec.md: {e}");
    }
}

fn field<'a>(name: &str, key: &str, doc: &'a [(String, Vec<(String, String)>)]) -> &'a str {
    let (_, fields) = doc.iter().find(|(n, _)| n == name).expect("vector present");
    &fields
        .iter()
        .find(|(k, _)| k == key)
        .expect("field present")
        .1
}

/// Decodes a vector's `encoding`, re-encodes it and checks it is the same
/// bytes; checks the hash field when the vector has one.
fn check_encoding<T: Wire>(name: &str, hash: Option<fn(&T) -> palisade_types::Hash>) {
    let doc = doc_vectors();
    let bytes = parse_hex(field(name, "encoding", &doc)).unwrap();
    let value: T = decode(&bytes).unwrap();
    assert_eq!(encode(&value), bytes, "{name}: re-encoding differs");
    if let Some(h) = hash {
        let expected = field(name, "hash", &doc);
        assert_eq!(h(&value).to_string(), expected, "{name}: hash");
        assert_eq!(
            sha256(&bytes).to_string(),
            expected,
            "{name}: hash is SHA-256 of encoding"
        );
    }
}

#[test]
fn spec_encodings_decode_and_hash() {
    check_encoding::<SignedTransaction>("transfer-tx", Some(SignedTransaction::hash));
    check_encoding::<SignedTransaction>("put-tx", Some(SignedTransaction::hash));
    check_encoding::<BlockHeader>("block-header", Some(BlockHeader::hash));
    check_encoding::<ValidatorSet>("validator-set", Some(ValidatorSet::hash));
    check_encoding::<CommitCertificate>("commit-certificate", Some(CommitCertificate::hash));
    check_encoding::<SignedVote>("precommit-vote", None);
    check_encoding::<SignedVote>("nil-prevote", None);
}

#[test]
fn spec_transactions_verify() {
    let doc = doc_vectors();
    for name in ["transfer-tx", "put-tx"] {
        let bytes = parse_hex(field(name, "encoding", &doc)).unwrap();
        let tx: SignedTransaction = decode(&bytes).unwrap();
        tx.verify().unwrap();
        assert_eq!(
            parse_hex(field(name, "signing_bytes", &doc)).unwrap(),
            tx.tx.signing_bytes()
        );
    }
}
