//! The example in `docs/genesis.md` parses, and its printed hash and state
//! root are what the code computes.

use palisade_genesis::Genesis;
use palisade_types::test_vectors::parse_doc;

const DOC: &str = include_str!("../../../docs/genesis.md");

fn example_json() -> &'static str {
    let start = DOC.find("```json\n").expect("json block") + "```json\n".len();
    let end = start + DOC[start..].find("```").expect("end of json block");
    &DOC[start..end]
}

#[test]
fn documented_example_and_hash() {
    let g = Genesis::from_json(example_json()).unwrap();
    let computed = [
        ("genesis_hash", g.hash().to_string()),
        ("state_root", g.initial_state().unwrap().root.to_string()),
        (
            "validators_hash",
            g.validator_set().unwrap().hash().to_string(),
        ),
    ];
    let doc = parse_doc(DOC);
    let (_, fields) = doc
        .iter()
        .find(|(n, _)| n == "example-genesis")
        .expect("vector block");
    let want: Vec<(String, String)> = computed
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    assert_eq!(
        fields, &want,
        "docs/genesis.md vector differs; the code says {want:?}"
    );
}
