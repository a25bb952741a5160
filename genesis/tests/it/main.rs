//! Genesis parsing, validation errors, hashing and initial state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod doc;

use palisade_genesis::{Genesis, GenesisError};
use palisade_types::{Keypair, Role};
use serde_json::{json, Value};

fn k(n: u8) -> String {
    Keypair::from_seed([n; 32]).public_key().to_string()
}

fn sample() -> Value {
    json!({
        "chain_id": "palisade-test",
        "genesis_time_ms": 1_700_000_000_000u64,
        "validators": [
            {"name": "v0", "consensus_key": k(10), "node_key": k(20), "power": 10},
            {"name": "v1", "consensus_key": k(11), "node_key": k(21), "power": 10}
        ],
        "accounts": [
            {"address": k(1), "balance": "1000000", "roles": ["admin", "member"]},
            {"address": k(2), "balance": "5", "roles": ["member"]}
        ]
    })
}

fn parse(v: &Value) -> Result<Genesis, GenesisError> {
    Genesis::from_json(&v.to_string())
}

fn err(v: Value) -> String {
    parse(&v).unwrap_err().to_string()
}

#[test]
fn sample_parses_with_defaults() {
    let g = parse(&sample()).unwrap();
    assert_eq!(g.chain_id.as_str(), "palisade-test");
    assert_eq!(g.validators.len(), 2);
    assert_eq!(g.params, palisade_runtime::ChainParams::default());
    assert_eq!(g.validator_set().unwrap().total_power(), 20);
    let admin = g
        .accounts
        .iter()
        .find(|a| a.address.to_string() == k(1))
        .unwrap();
    assert_eq!(admin.roles, vec![Role::Admin, Role::Member]);
    // Round trip through its own JSON.
    assert_eq!(Genesis::from_json(&g.to_json()).unwrap(), g);
}

#[test]
fn hash_ignores_order_and_formatting_but_not_content() {
    let a = parse(&sample()).unwrap();
    let mut reordered = sample();
    reordered["validators"].as_array_mut().unwrap().reverse();
    reordered["accounts"].as_array_mut().unwrap().reverse();
    reordered["accounts"][1]["roles"] = json!(["member", "admin"]);
    let b = Genesis::from_json(&serde_json::to_string_pretty(&reordered).unwrap()).unwrap();
    assert_eq!(a.hash(), b.hash());
    let mut changed = sample();
    changed["accounts"][1]["balance"] = json!("6");
    assert_ne!(a.hash(), parse(&changed).unwrap().hash());
}

#[test]
fn initial_state_matches_the_runtime() {
    let g = parse(&sample()).unwrap();
    let changes = g.initial_state().unwrap();
    assert_eq!(
        changes.root,
        palisade_runtime::initial_root(&g.initial()).unwrap()
    );
    assert_ne!(changes.root, palisade_runtime::smt::EMPTY);
}

#[test]
fn clear_errors_for_bad_files() {
    let mut v = sample();
    v["validators"] = json!([]);
    assert_eq!(err(v), "genesis has no validators");

    let mut v = sample();
    v["validators"][0]["power"] = json!(0);
    assert_eq!(err(v), "validator v0 has zero power");

    let mut v = sample();
    v["validators"][1]["consensus_key"] = json!(k(10));
    assert!(err(v).contains("is used by more than one validator"));

    let mut v = sample();
    v["validators"][1]["node_key"] = json!(k(20));
    assert!(err(v).starts_with("node key"));

    let mut v = sample();
    v["accounts"][1]["address"] = json!(k(1));
    assert!(err(v).contains("is listed more than once"));

    let mut v = sample();
    v["accounts"][0]["roles"] = json!(["member"]);
    assert!(err(v).starts_with("no account has the admin role"));

    let mut v = sample();
    v["accounts"][0]["roles"] = json!(["admin", "admin"]);
    assert!(err(v).contains("lists a role twice"));

    let mut v = sample();
    v["accounts"][0]["address"] = json!("0xzz");
    let e = err(v);
    assert!(e.contains("invalid hex") && e.contains("line"), "{e}");

    let mut v = sample();
    v["accounts"][0]["address"] = json!("abcd");
    assert!(err(v).contains("must start with 0x"));

    let mut v = sample();
    v["accounts"][0]["balance"] = json!("-5");
    assert!(err(v).contains("decimal string"));

    let mut v = sample();
    v["accounts"][0]["roles"] = json!(["root"]);
    assert!(err(v).contains("unknown variant"));

    let mut v = sample();
    v["chain_id"] = json!("Bad Chain");
    assert!(err(v).contains("chain id"));

    let mut v = sample();
    v["surprise"] = json!(1);
    assert!(err(v).contains("unknown field"));

    let mut v = sample();
    v["params"] = json!({"max_block_txs": 0, "max_block_bytes": 1048576, "max_tx_bytes": 4096, "max_value_bytes": 1024, "validator_update_delay": 2});
    assert!(err(v).starts_with("invalid chain parameters"));

    let mut v = sample();
    v["accounts"][0]["balance"] = json!(u128::MAX.to_string());
    v["accounts"][1]["balance"] = json!("1");
    assert_eq!(err(v), "total supply overflows");

    // A 32-byte value that is not a curve point.
    let not_a_point = (0u8..=255)
        .map(|b| {
            let mut x = [0u8; 32];
            x[0] = b;
            x[1] = 7;
            palisade_types::PublicKey(x)
        })
        .find(|pk| pk.prepare().is_err())
        .unwrap();
    let mut v = sample();
    v["validators"][0]["consensus_key"] = json!(not_a_point.to_string());
    assert!(err(v).contains("not a valid ed25519 public key"));

    assert!(Genesis::from_json("{")
        .unwrap_err()
        .to_string()
        .contains("not valid"));
}

/// Issue 26: the runtime refuses such keys in `AddValidator`; genesis must
/// not start a chain with them either (a small-order consensus key never
/// signs; a non-canonical encoding names the same libp2p peer as another).
#[test]
fn small_order_and_non_canonical_validator_keys_are_refused() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let mut identity_non_canonical = [0xffu8; 32];
    identity_non_canonical[0] = 0xee;
    identity_non_canonical[31] = 0x7f;
    for bad in [identity, minus_one, identity_non_canonical] {
        for field in ["consensus_key", "node_key"] {
            let mut v = sample();
            v["validators"][1][field] = json!(palisade_types::PublicKey(bad).to_string());
            let e = parse(&v).map(|_| ()).map_err(|e| e.to_string());
            assert!(e.is_err(), "{field} {bad:02x?} accepted");
            let e = e.unwrap_err();
            assert!(
                e.contains("of validator v1 is not a valid ed25519 public key"),
                "{e}"
            );
        }
    }
}

/// A draft (a genesis being assembled in a ceremony) may lack validators
/// and an admin, and nothing else: every other rule still holds, and the
/// order of its lists is kept as written.
#[test]
fn drafts_may_be_incomplete_but_not_wrong() {
    let mut v = sample();
    v["validators"] = json!([]);
    v["accounts"] = json!([]);
    let g = Genesis::from_json_draft(&v.to_string()).unwrap();
    assert!(g.validators.is_empty());
    assert_eq!(
        g.validate().unwrap_err().to_string(),
        "genesis has no validators"
    );

    let mut v = sample();
    v["accounts"][0]["roles"] = json!(["member"]);
    Genesis::from_json_draft(&v.to_string()).unwrap();
    assert!(err(v).starts_with("no account has the admin role"));

    let mut v = sample();
    v["validators"][1]["node_key"] = json!(k(20));
    let e = Genesis::from_json_draft(&v.to_string()).unwrap_err();
    assert!(e.to_string().starts_with("node key"), "{e}");

    let mut v = sample();
    v["validators"].as_array_mut().unwrap().reverse();
    let g = Genesis::from_json_draft(&v.to_string()).unwrap();
    assert_eq!(g.validators[0].name, "v1");
}
