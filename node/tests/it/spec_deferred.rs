//! The `deferred-execution` vector of `docs/spec.md`: three blocks built by
//! the node's own proposer from the example genesis of `docs/genesis.md`,
//! each header naming the results of the block before it. Block 2 also
//! carries a transfer signed by a key with no account, as a Byzantine
//! proposer could add: the block is valid and execution refuses it.

use std::sync::Arc;

use palisade_genesis::Genesis;
use palisade_ledger::{Durability, Ledger};
use palisade_node::app::{App, Validated};
use palisade_node::mempool::{Mempool, MempoolConfig};
use palisade_runtime::Runtime;
use palisade_types::test_vectors::parse_doc;
use palisade_types::{
    Action, Block, BoundedBytes, CommitCertificate, Height, Keypair, SignedTransaction, Transaction,
};

const SPEC: &str = include_str!("../../../docs/spec.md");
const GENESIS_DOC: &str = include_str!("../../../docs/genesis.md");

fn k(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn example_genesis() -> Genesis {
    let start = GENESIS_DOC.find("```json\n").expect("json block") + "```json\n".len();
    let end = start + GENESIS_DOC[start..].find("```").expect("end of json block");
    Genesis::from_json(&GENESIS_DOC[start..end]).expect("the example genesis parses")
}

/// Both example validators (seeds 0x33, 0x34) precommit `block`.
fn commit_for(g: &Genesis, block: &Block) -> CommitCertificate {
    crate::precommitted(&g.chain_id, &[k(0x33), k(0x34)], block)
}

fn signed(g: &Genesis, key: &Keypair, nonce: u64, action: Action) -> SignedTransaction {
    Transaction {
        chain_id: g.chain_id.clone(),
        nonce,
        signer: key.address(),
        action,
    }
    .sign(key)
}

/// Block 2's extra transaction: a key with no account, smuggled in with a
/// correct tx root.
fn smuggle(v: Validated, tx: SignedTransaction) -> Validated {
    let mut block = (*v.block).clone();
    let mut txs = block.txs.to_vec();
    txs.push(tx);
    block.header.tx_root = Block::compute_tx_root(&txs, &[]);
    block.txs = palisade_types::BoundedVec::new(txs).unwrap();
    Validated {
        block: Arc::new(block),
        tx_hashes: Vec::new(),
        eth_inputs: Vec::new(),
    }
}

#[test]
fn the_deferred_execution_vector_is_what_the_node_builds() {
    let g = example_genesis();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let genesis_state = g.initial_state().unwrap();
    ledger
        .init_genesis(
            &g.chain_id,
            g.hash(),
            &genesis_state,
            &g.validator_set().unwrap(),
        )
        .unwrap();
    let app = App::new(Runtime::new(g.chain_id.clone()), Arc::new(ledger), g.hash());
    let mut pool = Mempool::new(MempoolConfig::default());
    let (alice, bob) = (k(0x11), k(0x22));
    let mut fields = vec![(
        "genesis_state_root".to_string(),
        genesis_state.root.to_string(),
    )];
    let mut after = (genesis_state.root, palisade_runtime::receipts_root(&[]));
    for h in 1..=3u64 {
        let next = Height(h);
        let tx = match h {
            1 => Some(signed(
                &g,
                &alice,
                0,
                Action::Transfer {
                    to: bob.address(),
                    amount: 1_000,
                },
            )),
            2 => Some(signed(
                &g,
                &alice,
                1,
                Action::Put {
                    namespace: BoundedBytes::new(b"app".to_vec()).unwrap(),
                    key: BoundedBytes::new(b"greeting".to_vec()).unwrap(),
                    value: BoundedBytes::new(b"hello".to_vec()).unwrap(),
                },
            )),
            _ => None,
        };
        if let Some(tx) = tx {
            pool.add(tx, app.runtime(), app.ledger().as_ref(), next)
                .unwrap();
        }
        let proposer = if h % 2 == 1 { k(0x33) } else { k(0x34) };
        let time = g.genesis_time_ms + 1_000 * h;
        let mut proposed = app.propose(&pool, proposer.public_key(), time).unwrap();
        if h == 2 {
            let stranger = signed(
                &g,
                &k(0x55),
                0,
                Action::Transfer {
                    to: bob.address(),
                    amount: 1,
                },
            );
            proposed = smuggle(proposed, stranger);
        }
        // Another node checks it before executing anything of it.
        let checked = app.validate(proposed.block.clone(), Some(time)).unwrap();
        let hd = &checked.block.header;
        assert_eq!(
            (hd.state_root, hd.receipts_root),
            after,
            "block {h} names its parent's results"
        );
        let executed = app.execute(&checked).unwrap();
        let commit = commit_for(&g, &checked.block);
        app.commit(&executed, &commit, Durability::Synced).unwrap();
        pool.update(
            &checked.block.txs,
            executed.outcome.changes.values.keys().map(Vec::as_slice),
            app.runtime(),
            app.ledger().as_ref(),
            Height(h + 1),
        )
        .unwrap();
        after = (
            executed.outcome.changes.root,
            executed.outcome.receipts_root,
        );
        let codes: Vec<String> = executed
            .outcome
            .receipts
            .iter()
            .map(|r| r.code.to_string())
            .collect();
        for (name, value) in [
            ("hash", checked.block.hash().to_string()),
            ("state_root", hd.state_root.to_string()),
            ("receipts_root", hd.receipts_root.to_string()),
            ("next_validators_hash", hd.next_validators_hash.to_string()),
            ("receipt_codes", format!("[{}]", codes.join(", "))),
            ("state_root_after", after.0.to_string()),
            ("receipts_root_after", after.1.to_string()),
        ] {
            fields.push((format!("block_{h}_{name}"), value));
        }
    }
    // Block 2's refused transfer changed nothing: the stranger has no
    // account after it.
    let stranger = palisade_runtime::StateStore::get(
        app.ledger().as_ref(),
        &palisade_runtime::state::keys::account(&k(0x55).address()),
    )
    .unwrap();
    assert_eq!(stranger, None);

    let want = fields;
    let printed: String = want.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
    let doc = parse_doc(SPEC);
    let documented = doc
        .iter()
        .find(|(n, _)| n == "deferred-execution")
        .map(|(_, f)| f.clone());
    assert_eq!(
        documented.as_ref(),
        Some(&want),
        "docs/spec.md's deferred-execution vector differs; the node builds:\n```text\nvector: deferred-execution\n{printed}```"
    );
}
