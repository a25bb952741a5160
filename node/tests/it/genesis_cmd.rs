//! The genesis ceremony's commands (`palisade genesis new`, `add-validator`,
//! `add-account`, `validate`): what they write, what they refuse, and that
//! a refused edit leaves the file as it was.

use std::path::{Path, PathBuf};

use palisade_genesis::Genesis;
use palisade_node::genesis_cmd::{
    add_account, add_validator, local_ipv4s, new_genesis, p2p_address, validate, AddAccountArgs,
    AddValidatorArgs, NewArgs,
};
use palisade_types::{Keypair, PublicKey, Role};

fn key(n: u8) -> String {
    Keypair::from_seed([n; 32]).public_key().to_string()
}

fn new_args(output: &Path) -> NewArgs {
    NewArgs {
        chain_id: "ceremony-test".into(),
        output: output.to_path_buf(),
        genesis_time_ms: Some(1_700_000_000_000),
        block_interval_ms: palisade_genesis::ConsensusParams::default().block_interval_ms,
        propose_timeout_ms: 1000,
        max_timeout_ms: 30_000,
    }
}

fn validator(file: &Path, name: &str, ck: u8, nk: u8) -> AddValidatorArgs {
    AddValidatorArgs {
        file: file.to_path_buf(),
        name: name.into(),
        consensus_key: key(ck),
        node_key: key(nk),
        power: 10,
    }
}

fn account(file: &Path, n: u8, roles: &[&str]) -> AddAccountArgs {
    AddAccountArgs {
        file: file.to_path_buf(),
        address: key(n),
        balance: "1000".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn started() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("genesis.json");
    new_genesis(&new_args(&file)).unwrap();
    (dir, file)
}

fn err<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.unwrap_err())
}

#[test]
fn a_ceremony_builds_a_valid_genesis() {
    let (_dir, file) = started();
    // Incomplete until it has validators and an admin.
    assert!(err(validate(&file)).contains("no validators and no admin account yet"));
    add_account(&account(&file, 1, &["admin", "member"])).unwrap();
    assert!(err(validate(&file)).contains("no validators yet"));
    for i in 0..4u8 {
        add_validator(&validator(&file, &format!("v{i}"), 10 + i, 20 + i)).unwrap();
    }
    let g = validate(&file).unwrap();
    assert_eq!(g.validators.len(), 4);
    assert_eq!(g.chain_id.as_str(), "ceremony-test");
    assert_eq!(g.consensus, palisade_genesis::ConsensusParams::default());
    // What a node reads: the same chain and hash.
    let read = Genesis::from_file(&file).unwrap();
    assert_eq!(read.hash(), g.hash());
    assert_eq!(read.accounts[0].roles, vec![Role::Admin, Role::Member]);
    assert_eq!(read.accounts[0].balance, 1000);

    // Validators but no admin: incomplete too.
    let (_dir2, other) = started();
    add_validator(&validator(&other, "v0", 10, 20)).unwrap();
    add_account(&account(&other, 1, &["member"])).unwrap();
    assert!(err(validate(&other)).contains("no account has the admin role"));
}

#[test]
fn new_refuses_to_overwrite_and_bad_chain_ids() {
    let (_dir, file) = started();
    let before = std::fs::read(&file).unwrap();
    assert!(err(new_genesis(&new_args(&file))).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let mut a = new_args(&file.with_file_name("other.json"));
    a.chain_id = "Bad Chain".into();
    assert!(err(new_genesis(&a)).contains("--chain-id"));
    let mut a = new_args(&file.with_file_name("other.json"));
    a.max_timeout_ms = 10;
    assert!(err(new_genesis(&a)).contains("max_timeout_ms"));
    assert!(!file.with_file_name("other.json").exists());
}

#[test]
fn add_validator_refuses_bad_and_duplicate_keys() {
    let (_dir, file) = started();
    add_validator(&validator(&file, "v0", 10, 20)).unwrap();
    let before = std::fs::read(&file).unwrap();

    let dup_name = validator(&file, "v0", 11, 21);
    assert!(err(add_validator(&dup_name)).contains("already has a validator named v0"));
    let dup_ck = validator(&file, "v1", 10, 21);
    assert!(err(add_validator(&dup_ck)).contains(&format!("already has key {}", key(10))));
    let dup_nk = validator(&file, "v1", 11, 20);
    assert!(err(add_validator(&dup_nk)).contains(&format!("already has key {}", key(20))));
    // One validator's node key as another's consensus key: still one key
    // in two places.
    let crossed = validator(&file, "v1", 20, 21);
    assert!(err(add_validator(&crossed)).contains("already has key"));

    let mut short = validator(&file, "v1", 11, 21);
    short.consensus_key = "0x12".into();
    assert!(err(add_validator(&short)).contains("--consensus-key"));
    let mut no_hex = validator(&file, "v1", 11, 21);
    no_hex.node_key = "zz".into();
    assert!(err(add_validator(&no_hex)).contains("--node-key"));
    // The identity point: a valid encoding, but small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut small = validator(&file, "v1", 11, 21);
    small.consensus_key = PublicKey(identity).to_string();
    assert!(err(add_validator(&small)).contains("not a valid ed25519 public key"));

    let mut zero = validator(&file, "v1", 11, 21);
    zero.power = 0;
    assert!(err(add_validator(&zero)).contains("--power"));
    let mut unnamed = validator(&file, "v1", 11, 21);
    unnamed.name = " ".into();
    assert!(err(add_validator(&unnamed)).contains("--name"));

    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "a refused edit changed the file"
    );
}

#[test]
fn add_account_refuses_duplicates_unknown_roles_and_bad_balances() {
    let (_dir, file) = started();
    add_account(&account(&file, 1, &["admin"])).unwrap();
    let before = std::fs::read(&file).unwrap();
    assert!(err(add_account(&account(&file, 1, &["member"]))).contains("already has account"));
    assert!(err(add_account(&account(&file, 2, &["root"]))).contains("unknown role \"root\""));
    assert!(err(add_account(&account(&file, 2, &["member", "member"]))).contains("twice"));
    let mut bad = account(&file, 2, &["member"]);
    bad.balance = "-5".into();
    assert!(err(add_account(&bad)).contains("--balance"));
    bad.balance = "1".repeat(60);
    assert!(err(add_account(&bad)).contains("too large"));
    let mut supply = account(&file, 2, &["member"]);
    supply.balance = u128::MAX.to_string();
    assert!(err(add_account(&supply)).contains("total supply overflows"));
    let mut addr = account(&file, 2, &[]);
    addr.address = "0x1234".into();
    assert!(err(add_account(&addr)).contains("--address"));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // `validator-operator` is accepted for `validator_operator`.
    add_account(&account(&file, 3, &["validator-operator", "minter"])).unwrap();
}

#[test]
fn edits_need_an_existing_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.json");
    let e = err(add_validator(&validator(&missing, "v0", 10, 20)));
    assert!(
        e.contains("does not exist") && e.contains("palisade genesis new"),
        "{e}"
    );
    assert!(err(add_account(&account(&missing, 1, &["admin"]))).contains("does not exist"));
    assert!(err(validate(&missing)).contains("does not exist"));
    assert!(!missing.exists());

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"chain_id\": \"x\"").unwrap();
    assert!(err(add_account(&account(&broken, 1, &["admin"]))).contains("not valid"));
    assert_eq!(
        std::fs::read_to_string(&broken).unwrap(),
        "{\"chain_id\": \"x\""
    );
}

/// An edit replaces the file by renaming a new one over it (a reader never
/// sees half a file) and leaves no temporary file behind.
#[test]
fn edits_replace_the_file_whole() {
    use std::os::unix::fs::MetadataExt;
    let (dir, file) = started();
    let inode = std::fs::metadata(&file).unwrap().ino();
    add_account(&account(&file, 1, &["admin"])).unwrap();
    assert_ne!(
        std::fs::metadata(&file).unwrap().ino(),
        inode,
        "rewritten in place"
    );
    let _ = add_account(&account(&file, 1, &["admin"]));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["genesis.json".to_string()]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("}\n"), "{text}");
}

#[test]
fn p2p_addresses_and_local_addresses() {
    let id = "12D3KooWAKBhreWcutAwYjNaX7xHLgwgaDfzVZknQFWpzLzrNjAy";
    assert_eq!(
        p2p_address("/ip4/10.0.0.1/tcp/26656", id),
        format!("/ip4/10.0.0.1/tcp/26656/p2p/{id}")
    );
    let wildcard = p2p_address("/ip4/0.0.0.0/tcp/26656", id);
    assert!(
        wildcard.ends_with(&format!("/tcp/26656/p2p/{id}")) && wildcard.starts_with("/ip4/"),
        "{wildcard}"
    );
    let fib_trie = "Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.213.5.0/24 2 0 2
        |-- 10.213.5.0
           /24 link UNICAST
        |-- 10.213.5.2
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
  |-- 172.17.0.1
     /32 host LOCAL
Local:
  |-- 10.213.5.2
     /32 host LOCAL
";
    let ips: Vec<String> = local_ipv4s(fib_trie)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ips, vec!["10.213.5.2", "172.17.0.1"]);
}
