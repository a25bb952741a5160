//! Golden vectors of the state storage format, printed in `docs/state.md`
//! and checked against it by a test (`cargo run -p palisade-runtime
//! --example state_vectors` prints them).

use palisade_types::test_vectors::Vector;
use palisade_types::{sha256, Keypair, Role};

use crate::evm::{self, EvmAccount};
use crate::smt::{self, EMPTY};
use crate::state::{keys, Account, ValidatorInfo};
use crate::store::{commit_writes, get_with_proof, MemStore};
use crate::{
    initial_root, receipts_root, ChainParams, Event, EvmLog, EvmReceipt, InitialState, Receipt,
};

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every vector, in the order the document prints them. Long on purpose:
/// one block per vector, read side by side with the document.
#[allow(clippy::expect_used)] // Fixed inputs, valid by inspection.
pub fn all() -> Vec<Vector> {
    let alice = Keypair::from_seed([0x11; 32]);
    let mut out = Vec::new();

    let mut acct = Account {
        balance: 1_000_000,
        nonce: 3,
        roles: 0,
    };
    acct.grant(Role::Admin);
    acct.grant(Role::Member);
    out.push(Vector {
        name: "account-record",
        fields: vec![
            ("address", alice.address().to_string()),
            ("balance", "1000000".into()),
            ("nonce", "3".into()),
            ("roles", "admin, member".into()),
            ("key", hex0x(&keys::account(&alice.address()))),
            ("value", hex0x(&palisade_types::encode(&acct))),
        ],
    });

    out.push(Vector {
        name: "data-key",
        fields: vec![
            ("namespace", "app".into()),
            ("key", "greeting".into()),
            ("state_key", hex0x(&keys::data(b"app", b"greeting"))),
        ],
    });

    let one = commit_writes(
        &MemStore::default(),
        EMPTY,
        [(b"k".to_vec(), Some(b"v".to_vec()))].into_iter().collect(),
    )
    .expect("in-memory write");
    out.push(Vector {
        name: "smt-single-entry",
        fields: vec![
            ("key", "k".into()),
            ("value", "v".into()),
            ("key_hash", sha256(b"k").to_string()),
            ("value_hash", sha256(b"v").to_string()),
            ("root", one.root.to_string()),
            ("empty_root", EMPTY.to_string()),
        ],
    });

    let mut store = MemStore::default();
    let writes = [
        (b"a".to_vec(), Some(b"1".to_vec())),
        (b"b".to_vec(), Some(b"2".to_vec())),
        (b"c".to_vec(), Some(b"3".to_vec())),
    ]
    .into_iter()
    .collect();
    let three = commit_writes(&store, EMPTY, writes).expect("in-memory write");
    store.apply(&three);
    let (_, proof) = get_with_proof(&store, three.root, b"a").expect("proof");
    let (_, absent) = get_with_proof(&store, three.root, b"z").expect("proof");
    let list = |p: &smt::Proof| {
        p.siblings
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    out.push(Vector {
        name: "smt-three-entries",
        fields: vec![
            ("entries", "a=1, b=2, c=3".into()),
            ("root", three.root.to_string()),
            ("proof_a_siblings", list(&proof)),
            (
                "proof_a_leaf",
                proof
                    .leaf
                    .map(|(k, v)| format!("{k},{v}"))
                    .unwrap_or_default(),
            ),
            ("proof_z_siblings", list(&absent)),
            (
                "proof_z_leaf",
                absent
                    .leaf
                    .map(|(k, v)| format!("{k},{v}"))
                    .unwrap_or_else(|| "none".into()),
            ),
        ],
    });

    // "b" and "e" hash to 0x3e… and 0x3f…: they share seven bits, so the
    // tree needs a second page; "a"'s value is too large for its leaf.
    let writes = [
        (b"a".to_vec(), Some(vec![b'x'; 300])),
        (b"b".to_vec(), Some(b"2".to_vec())),
        (b"e".to_vec(), Some(b"5".to_vec())),
    ]
    .into_iter()
    .collect();
    let paged = commit_writes(&MemStore::default(), EMPTY, writes).expect("in-memory write");
    let root_page = paged.pages.get(&paged.root).expect("root page");
    let child = paged
        .pages
        .iter()
        .find(|(h, _)| **h != paged.root)
        .expect("second page");
    out.push(Vector {
        name: "state-pages",
        fields: vec![
            ("entries", "a=0x78 repeated 300 times, b=2, e=5".into()),
            ("root", paged.root.to_string()),
            ("root_page", hex0x(&root_page.encode())),
            ("child_page_hash", child.0.to_string()),
            ("child_page", hex0x(&child.1.encode())),
            ("blob_hash", sha256(&[b'x'; 300]).to_string()),
        ],
    });

    let receipt = Receipt {
        tx_hash: sha256(b"tx"),
        code: 0,
        error: String::new(),
        events: vec![Event::new("transfer", &[("amount", "5".into())])],
        evm: None,
    };
    out.push(Vector {
        name: "receipt",
        fields: vec![
            ("tx_hash", receipt.tx_hash.to_string()),
            ("encoding", hex0x(&palisade_types::encode(&receipt))),
            (
                "receipts_root_of_one",
                receipts_root(&[receipt]).to_string(),
            ),
        ],
    });

    let alice_evm = evm::evm_address(&alice.address());
    out.push(Vector {
        name: "evm-native-address",
        fields: vec![
            ("address", alice.address().to_string()),
            ("evm_address", alice_evm.to_string()),
            ("index_key", hex0x(&evm::keys::native(&alice_evm))),
            ("index_value", hex0x(alice.address().as_bytes())),
        ],
    });

    let contract = palisade_types::EvmAddress([0xcc; 20]);
    let code = [0x60u8, 0x00, 0x60, 0x00, 0xf3];
    let code_hash = revm::primitives::keccak256(code).0;
    let record = EvmAccount {
        balance: 5,
        nonce: 1,
        code_hash,
    };
    let mut slot = [0u8; 32];
    slot[31] = 1;
    out.push(Vector {
        name: "evm-records",
        fields: vec![
            ("address", contract.to_string()),
            ("code", hex0x(&code)),
            ("code_hash", hex0x(&code_hash)),
            ("account_key", hex0x(&evm::keys::account(&contract))),
            ("account_value", hex0x(&palisade_types::encode(&record))),
            ("code_key", hex0x(&evm::keys::code(&code_hash))),
            ("slot", hex0x(&slot)),
            ("slot_key", hex0x(&evm::keys::slot(&contract, &slot))),
            ("roles_key", hex0x(&evm::keys::roles(&contract))),
        ],
    });

    let evm_receipt = Receipt {
        tx_hash: sha256(b"evm tx"),
        code: 0,
        error: String::new(),
        events: Vec::new(),
        evm: Some(EvmReceipt {
            gas_used: 21_000,
            contract_address: Some(contract),
            logs: vec![EvmLog {
                address: contract,
                topics: vec![sha256(b"topic")],
                data: vec![1, 2],
            }],
            output: vec![0xaa],
        }),
    };
    out.push(Vector {
        name: "receipt-evm",
        fields: vec![
            ("tx_hash", evm_receipt.tx_hash.to_string()),
            ("encoding", hex0x(&palisade_types::encode(&evm_receipt))),
        ],
    });

    let init = InitialState {
        evm_accounts: Vec::new(),
        params: ChainParams::default(),
        accounts: vec![(alice.address(), 1_000_000, vec![Role::Admin, Role::Member])],
        validators: vec![ValidatorInfo {
            consensus_key: Keypair::from_seed([0x33; 32]).public_key(),
            node_key: Keypair::from_seed([0x44; 32]).public_key(),
            power: 10,
        }],
    };
    out.push(Vector {
        name: "genesis-state",
        fields: vec![
            ("admin", alice.address().to_string()),
            ("admin_balance", init.accounts[0].1.to_string()),
            (
                "admin_roles",
                init.accounts[0]
                    .2
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("validator", init.validators[0].consensus_key.to_string()),
            ("validator_node_key", init.validators[0].node_key.to_string()),
            ("validator_power", init.validators[0].power.to_string()),
            (
                "params",
                format!(
                    "max_block_txs {}, max_block_bytes {}, max_tx_bytes {}, max_value_bytes {}, validator_update_delay {}, max_block_gas {}, min_gas_price {}, evm_chain_id {}, file_quota_bytes {}",
                    init.params.max_block_txs,
                    init.params.max_block_bytes,
                    init.params.max_tx_bytes,
                    init.params.max_value_bytes,
                    init.params.validator_update_delay,
                    init.params.max_block_gas,
                    init.params.min_gas_price,
                    init.params.evm_chain_id,
                    init.params.file_quota_bytes
                ),
            ),
            (
                "state_root",
                initial_root(&init).expect("genesis state").to_string(),
            ),
        ],
    });
    out
}
