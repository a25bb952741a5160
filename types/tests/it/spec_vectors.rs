//! `docs/spec.md` must contain exactly the vectors the code produces.

use palisade_types::test_vectors::{all, render};
use palisade_types::{
    decode, encode, parse_hex, sha256, BlockHeader, CommitCertificate, SignedTransaction,
    SignedVote, ValidatorSet, Wire,
};

const SPEC: &str = include_str!("../../../docs/spec.md");

/// Parses the ```text blocks that start with `vector: NAME` into
/// (name, [(field, value)]).
fn doc_vectors() -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut lines = SPEC.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```text" {
            continue;
        }
        let mut block = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            block.push(l);
        }
        let Some(first) = block.first() else { continue };
        let Some(name) = first.strip_prefix("vector: ") else {
            continue;
        };
        let fields = block[1..]
            .iter()
            .map(|l| {
                let (k, v) = l.split_once(": ").expect("field: value");
                (k.to_string(), v.to_string())
            })
            .collect();
        out.push((name.to_string(), fields));
    }
    out
}

#[test]
fn spec_document_matches_the_code() {
    let doc = doc_vectors();
    let code = all();
    let doc_names: Vec<&str> = doc.iter().map(|(n, _)| n.as_str()).collect();
    let code_names: Vec<&str> = code.iter().map(|v| v.name).collect();
    assert_eq!(
        doc_names, code_names,
        "docs/spec.md lists other vectors than the code"
    );
    for ((_, fields), v) in doc.iter().zip(&code) {
        let expected: Vec<(String, String)> = v
            .fields
            .iter()
            .map(|(k, val)| (k.to_string(), val.clone()))
            .collect();
        assert_eq!(
            fields,
            &expected,
            "vector {} in docs/spec.md differs from the code; the code says:\n{}",
            v.name,
            render(v)
        );
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
