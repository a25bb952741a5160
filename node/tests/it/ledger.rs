use std::sync::Arc;

use palisade_ledger::{BlockWrite, Durability, Ledger, LedgerError, SCHEMA_VERSION};
use palisade_runtime::{
    get_with_proof, initial_state, smt, ChainParams, InitialState, Runtime, Signatures, StateStore,
    ValidatorInfo,
};
use palisade_types::{
    Action, Block, BlockHeader, BoundedVec, ChainId, Hash, Height, Keypair, Role, Timestamp,
    Transaction,
};

struct Fixture {
    chain: ChainId,
    genesis_hash: Hash,
    init: InitialState,
    validator: Keypair,
    alice: Keypair,
}

fn fixture() -> Fixture {
    let validator = Keypair::from_seed([9; 32]);
    let alice = Keypair::from_seed([1; 32]);
    Fixture {
        chain: ChainId::new("ledger-test").unwrap(),
        genesis_hash: Hash([7; 32]),
        init: InitialState {
            evm_accounts: Vec::new(),
            params: ChainParams::default(),
            accounts: vec![(
                alice.address(),
                1_000,
                vec![Role::Admin, Role::Member, Role::Deployer],
            )],
            validators: vec![ValidatorInfo {
                consensus_key: validator.public_key(),
                node_key: Keypair::from_seed([8; 32]).public_key(),
                power: 1,
            }],
        },
        validator,
        alice,
    }
}

fn set_of(f: &Fixture) -> palisade_types::ValidatorSet {
    palisade_runtime::to_set(&f.init.validators).unwrap()
}

/// Executes and commits the next block with one transfer.
fn commit_next(l: &Ledger, f: &Fixture, prev_hash: Hash) -> (Block, Hash) {
    commit_next_as(l, f, prev_hash, Durability::Synced)
}

fn commit_next_as(
    l: &Ledger,
    f: &Fixture,
    prev_hash: Hash,
    durability: Durability,
) -> (Block, Hash) {
    let transfer = Action::Transfer {
        to: Keypair::from_seed([2; 32]).address(),
        amount: 10,
    };
    commit_action(l, f, prev_hash, transfer, durability)
}

/// Executes and commits the next block with one transaction of Alice's.
fn commit_action(
    l: &Ledger,
    f: &Fixture,
    prev_hash: Hash,
    action: Action,
    durability: Durability,
) -> (Block, Hash) {
    commit_action_naming(l, f, prev_hash, action, durability, None)
}

/// [`commit_action`], naming `next_set` (instead of the one execution
/// gives) as the set of the next height.
fn commit_action_naming(
    l: &Ledger,
    f: &Fixture,
    prev_hash: Hash,
    action: Action,
    durability: Durability,
    next_set: Option<palisade_types::ValidatorSet>,
) -> (Block, Hash) {
    let h = l.latest_height().unwrap().next().unwrap();
    let nonce = h.get() - 1;
    let tx = Transaction {
        chain_id: f.chain.clone(),
        nonce,
        signer: f.alice.address(),
        action,
    }
    .sign(&f.alice);
    let rt = Runtime::new(f.chain.clone());
    let root = l.state_root(h.prev().unwrap()).unwrap().unwrap();
    let out = rt
        .execute_block(l, root, h, std::slice::from_ref(&tx), Signatures::Verify)
        .unwrap();
    let set = out.next_validator_set.clone();
    let next = next_set.unwrap_or_else(|| set.clone());
    let block = Block {
        eth_txs: Default::default(),
        header: BlockHeader {
            chain_id: f.chain.clone(),
            height: h,
            time: Timestamp(h.get()),
            last_block_hash: prev_hash,
            tx_root: Block::compute_tx_root(std::slice::from_ref(&tx), &[]),
            state_root: out.changes.root,
            receipts_root: out.receipts_root,
            validators_hash: set.hash(),
            next_validators_hash: next.hash(),
            proposer: f.validator.public_key(),
            last_commit_hash: Hash::ZERO,
        },
        txs: BoundedVec::new(vec![tx]).unwrap(),
        last_commit: None,
    };
    let hash = block.hash();
    let commit = crate::precommitted(&f.chain, std::slice::from_ref(&f.validator), &block);
    l.commit_block(
        BlockWrite {
            block: &block,
            commit: &commit,
            receipts: &out.receipts,
            receipts_root: out.receipts_root,
            refused: &out.refused,
            state: &out.changes,
            next_validators: &next,
            accounts: &palisade_node::app::tx_parties(&block, &[], &out.receipts),
        },
        durability,
    )
    .unwrap();
    (block, hash)
}

#[test]
fn deferred_commits_are_read_at_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let alice = palisade_runtime::state::keys::account(&f.alice.address());
    let mut prev = f.genesis_hash;
    let mut balances = Vec::new();
    {
        let l = Ledger::open(dir.path()).unwrap();
        l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
            .unwrap();
        for (i, d) in [
            Durability::Deferred,
            Durability::Deferred,
            Durability::Synced,
        ]
        .into_iter()
        .enumerate()
        {
            let before = l.get(&alice).unwrap();
            let (_, h) = commit_next_as(&l, &f, prev, d);
            prev = h;
            assert_eq!(l.latest_height().unwrap(), Height(i as u64 + 1));
            assert_eq!(l.height_of(&h).unwrap(), Some(Height(i as u64 + 1)));
            let after = l.get(&alice).unwrap();
            assert_ne!(before, after, "the transfer is visible at once");
            balances.push(after);
        }
    }
    let l = Ledger::open(dir.path()).unwrap();
    assert_eq!(l.latest_height().unwrap(), Height(3));
    assert_eq!(l.get(&alice).unwrap(), balances[2]);
    assert!(l.block(Height(1)).unwrap().is_some());
}

#[test]
fn a_visible_block_is_never_read_with_older_state() {
    // A reader that can see block k (RocksDB has it) must read the state
    // of k or later, never a cached value from before k: a client that got
    // its receipt and then read its account must see the new nonce.
    // The window is short, so the race is run several times.
    for _ in 0..10 {
        visible_blocks_and_state_agree_once();
    }
}

fn visible_blocks_and_state_agree_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let alice = palisade_runtime::state::keys::account(&f.alice.address());
    let l = Arc::new(Ledger::open(dir.path()).unwrap());
    l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
        .unwrap();
    let blocks = 90u64; // alice's 1,000 pays for 100 transfers of 10
    let reader = {
        let l = l.clone();
        let alice = alice.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut next = 1u64;
            let mut checks = 0u64;
            while next <= blocks && std::time::Instant::now() < deadline {
                let visible = l.block(Height(next)).unwrap().is_some();
                let raw = l.get(&alice).unwrap().unwrap();
                let nonce = borsh::from_slice::<palisade_runtime::Account>(&raw)
                    .unwrap()
                    .nonce;
                if visible {
                    assert!(nonce >= next, "block {next} visible, nonce {nonce}");
                    next += 1;
                }
                checks += 1;
            }
            checks
        })
    };
    let mut prev = f.genesis_hash;
    for _ in 0..blocks {
        prev = commit_next_as(&l, &f, prev, Durability::Deferred).1;
    }
    let checks = reader.join().unwrap();
    assert!(checks >= blocks, "{checks}");
}

#[test]
fn blocks_state_and_indexes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let mut hashes = Vec::new();
    {
        let l = Ledger::open(dir.path()).unwrap();
        l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
            .unwrap();
        assert_eq!(l.latest_height().unwrap(), Height(0));
        let mut prev = f.genesis_hash;
        for _ in 0..3 {
            let (_, h) = commit_next(&l, &f, prev);
            hashes.push(h);
            prev = h;
        }
    }
    let l = Ledger::open(dir.path()).unwrap();
    l.check_genesis(&f.chain, f.genesis_hash).unwrap();
    assert_eq!(l.latest_height().unwrap(), Height(3));
    for (i, h) in hashes.iter().enumerate() {
        let height = Height(i as u64 + 1);
        let b = l.block(height).unwrap().unwrap();
        assert_eq!(b.hash(), *h);
        assert_eq!(l.block_header(height).unwrap().as_ref(), Some(&b.header));
        assert_eq!(l.height_of(h).unwrap(), Some(height));
        assert_eq!(l.commit(height).unwrap().unwrap().block_hash, *h);
        let tx = &b.txs[0];
        assert_eq!(l.tx_location(&tx.hash()).unwrap(), Some((height, 0)));
        assert_eq!(l.tx(&tx.hash()).unwrap().as_ref(), Some(tx));
        let (receipt, location) = l.receipt(&tx.hash()).unwrap().unwrap();
        assert!(receipt.is_success());
        assert_eq!(location, (height, 0));
        assert_eq!(l.state_root(height).unwrap(), Some(b.header.state_root));
        assert_eq!(
            l.validators(height).unwrap().unwrap().hash(),
            b.header.validators_hash
        );
    }
    // State reads with proofs at the latest and at an older root.
    let key = palisade_runtime::state::keys::account(&Keypair::from_seed([2; 32]).address());
    let latest = l.state_root(Height(3)).unwrap().unwrap();
    let (v, p) = get_with_proof(&l, latest, &key).unwrap();
    assert!(smt::verify(&latest, &key, v.as_deref(), &p));
    assert_eq!(l.get(&key).unwrap(), v);
    let old = l.state_root(Height(1)).unwrap().unwrap();
    let (v1, p1) = get_with_proof(&l, old, &key).unwrap();
    assert_ne!(v1, v);
    assert!(smt::verify(&old, &key, v1.as_deref(), &p1));
    assert_eq!(l.block(Height(4)).unwrap(), None);
    assert_eq!(l.block_header(Height(4)).unwrap(), None);
}

/// Init code that emits one log (LOG1, topic 0x11..11, the word 42) and
/// leaves no code.
fn logging_creation() -> Action {
    let mut code = vec![0x60, 0x2a, 0x60, 0x00, 0x52, 0x7f];
    code.extend([0x11; 32]);
    code.extend([0x60, 0x20, 0x60, 0x00, 0xa1, 0x00]);
    Action::EvmCreate {
        value: 0,
        code: palisade_types::BoundedBytes::new(code).unwrap(),
        gas_limit: 100_000,
    }
}

#[test]
fn blocks_with_logs_keep_their_bloom_and_older_blocks_read_as_full() {
    use palisade_runtime::evm::LogsBloom;
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    {
        let l = Ledger::open(dir.path()).unwrap();
        l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
            .unwrap();
        let (_, h1) = commit_next(&l, &f, f.genesis_hash);
        let (_, h2) = commit_action(&l, &f, h1, logging_creation(), Durability::Synced);
        let (_, h3) = commit_next(&l, &f, h2);
        commit_action(&l, &f, h3, logging_creation(), Durability::Synced);
        let blooms = l.log_blooms(Height(0), Height(4)).unwrap();
        let heights: Vec<u64> = blooms.iter().map(|(h, _)| h.get()).collect();
        assert_eq!(heights, vec![2, 4]);
        let b = l.block(Height(2)).unwrap().unwrap();
        let (receipt, _) = l.receipt(&b.txs[0].hash()).unwrap().unwrap();
        assert_eq!(receipt.evm.unwrap().logs.len(), 1, "{}", receipt.error);
        let bloom = blooms[0].1;
        assert!(bloom.may_contain(&[0x11; 32]));
        assert!(!bloom.may_contain(&[0x22; 32]));
        assert!(blooms[1].1.may_contain(&[0x11; 32]));
        assert_eq!(
            l.log_blooms(Height(3), Height(3)).unwrap(),
            Vec::<(Height, LogsBloom)>::new()
        );
        assert_eq!(l.log_blooms(Height(4), Height(2)).unwrap(), vec![]);
    }
    // A ledger written before blooms were kept: its blocks before the
    // first kept one may hold logs, so they read as full blooms.
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, dir.path().join("db")).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path().join("db"), cfs).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"blooms_from", 3u64.to_be_bytes()).unwrap();
        db.delete_cf(meta, [&b"bloom/"[..], &2u64.to_be_bytes()].concat())
            .unwrap();
    }
    let l = Ledger::open(dir.path()).unwrap();
    let blooms = l.log_blooms(Height(1), Height(4)).unwrap();
    let got: Vec<(u64, bool)> = blooms
        .iter()
        .map(|(h, b)| (h.get(), *b == LogsBloom::FULL))
        .collect();
    assert_eq!(got, vec![(1, true), (2, true), (4, false)]);
}

#[test]
fn the_account_index_lists_each_accounts_transactions_newest_first() {
    use palisade_runtime::evm::evm_address;
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let bob = Keypair::from_seed([2; 32]).address();
    let carol = Keypair::from_seed([3; 32]).address();
    let mut hashes = Vec::new();
    {
        let l = Ledger::open(dir.path()).unwrap();
        l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
            .unwrap();
        assert_eq!(l.account_index_from().unwrap(), None, "off until asked");
        l.keep_account_index(true).unwrap();
        let mut prev = f.genesis_hash;
        for to in [bob, carol, bob] {
            let (b, h) = commit_action(
                &l,
                &f,
                prev,
                Action::Transfer { to, amount: 1 },
                Durability::Synced,
            );
            hashes.push(b.txs[0].hash());
            prev = h;
        }
        let alice = evm_address(&f.alice.address());
        let all = l.account_txs(&alice, None, 10).unwrap();
        let got: Vec<_> = all
            .txs
            .iter()
            .map(|t| (t.position, t.hash, t.eth))
            .collect();
        assert_eq!(
            got,
            vec![
                ((Height(3), 0), hashes[2], false),
                ((Height(2), 0), hashes[1], false),
                ((Height(1), 0), hashes[0], false),
            ]
        );
        assert_eq!(all.next, None);
        let bobs = l.account_txs(&evm_address(&bob), None, 1).unwrap();
        assert_eq!(bobs.txs.len(), 1);
        assert_eq!(bobs.txs[0].hash, hashes[2]);
        assert_eq!(bobs.next, Some((Height(3), 0)));
        let older = l.account_txs(&evm_address(&bob), bobs.next, 1).unwrap();
        assert_eq!(older.txs[0].hash, hashes[0]);
        assert_eq!(older.next, None, "the last page");
        assert_eq!(
            l.account_txs(&evm_address(&bob), Some((Height(1), 0)), 5)
                .unwrap()
                .txs,
            vec![]
        );
        let carols = l.account_txs(&evm_address(&carol), None, 10).unwrap();
        assert_eq!(carols.txs.len(), 1);
        // A neighbouring address's entries never leak into the listing.
        let mut near = evm_address(&carol);
        near.0[19] ^= 1;
        assert!(l.account_txs(&near, None, 10).unwrap().txs.is_empty());
        assert_eq!(l.account_index_from().unwrap(), Some(Height(1)));
        // Turned off: nothing is listed (the entries stay on disk).
        l.keep_account_index(false).unwrap();
        assert_eq!(l.account_index_from().unwrap(), None);
        assert!(l.account_txs(&alice, None, 10).unwrap().txs.is_empty());
    }
    // Turned on again (or a ledger written before the index): it indexes
    // from the next block, and the blocks it missed are not listed.
    let l = Ledger::open(dir.path()).unwrap();
    l.keep_account_index(true).unwrap();
    assert_eq!(l.account_index_from().unwrap(), Some(Height(4)));
    let alice = evm_address(&f.alice.address());
    assert!(l.account_txs(&alice, None, 10).unwrap().txs.is_empty());
}

#[test]
fn a_second_process_cannot_open_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Ledger::open(dir.path()).unwrap();
    let e = Ledger::open(dir.path()).unwrap_err();
    assert!(matches!(e, LedgerError::Locked(_)), "{e}");
    assert!(e.to_string().contains("in use by another palisade process"));
}

#[test]
fn wrong_chain_or_genesis_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    assert!(matches!(
        l.check_genesis(&f.chain, f.genesis_hash),
        Err(LedgerError::NotInitialized)
    ));
    l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
        .unwrap();
    let other = ChainId::new("other").unwrap();
    assert!(matches!(
        l.check_genesis(&other, f.genesis_hash),
        Err(LedgerError::ChainMismatch { .. })
    ));
    assert!(matches!(
        l.init_genesis(&f.chain, Hash([1; 32]), &genesis, &set_of(&f)),
        Err(LedgerError::GenesisMismatch { .. })
    ));
}

#[test]
fn only_the_next_height_with_its_own_commit_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
        .unwrap();
    let (block, _) = commit_next(&l, &f, f.genesis_hash);
    let commit = l.commit(Height(1)).unwrap().unwrap();
    // Committing height 1 again.
    let e = l
        .commit_block(
            BlockWrite {
                block: &block,
                commit: &commit,
                receipts: &[],
                receipts_root: palisade_runtime::receipts_root(&[]),
                refused: &[],
                state: &Default::default(),
                next_validators: &set_of(&f),
                accounts: &[],
            },
            Durability::Synced,
        )
        .unwrap_err();
    assert!(matches!(e, LedgerError::NotNextHeight { .. }), "{e}");
    let _ = Arc::new(block);
}

/// Opens `data_dir/db` with RocksDB alone (creating it and the column
/// families `cfs` if missing) and sets its schema version to `version`.
fn write_raw_schema(data_dir: &std::path::Path, cfs: &[impl AsRef<str>], version: u32) {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let names = cfs.iter().map(|c| c.as_ref());
    let db = rocksdb::DB::open_cf(&opts, data_dir.join("db"), names).unwrap();
    let meta = db.cf_handle("meta").unwrap();
    db.put_cf(meta, b"schema_version", version.to_le_bytes())
        .unwrap();
}

#[test]
fn schema_version_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    {
        let _l = Ledger::open(dir.path()).unwrap();
    }
    // Rewrite the schema version behind the ledger's back.
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path().join("db")).unwrap();
    write_raw_schema(dir.path(), &cfs, 99);
    let e = Ledger::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            LedgerError::Schema {
                found: 99,
                expected: SCHEMA_VERSION
            }
        ),
        "{e}"
    );
}

/// Lays out an empty database with column families `names` at schema
/// `found` and checks that opening it gives the schema error with the
/// re-sync hint, not RocksDB's own refusal.
fn assert_schema_refused(names: &[&str], found: u32) {
    let dir = tempfile::tempdir().unwrap();
    write_raw_schema(dir.path(), names, found);
    let e = Ledger::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            LedgerError::Schema { found: f, expected: SCHEMA_VERSION } if f == found
        ),
        "{e}"
    );
    assert!(e.to_string().contains("re-sync"), "{e}");
}

/// A database laid out by schema 1 (node-by-node tree, a `receipts`
/// column family) is refused with the schema error, not RocksDB's.
#[test]
fn a_schema_1_database_gets_the_schema_error() {
    let names = [
        "blocks",
        "block_index",
        "commits",
        "txs",
        "receipts",
        "state",
        "meta",
    ];
    assert_schema_refused(&names, 1);
}

/// Schema 2 kept a copy of every latest value beside the tree; this build
/// reads values from the tree only, so such a database is refused too.
#[test]
fn a_schema_2_database_gets_the_schema_error() {
    assert_eq!(SCHEMA_VERSION, 8);
    let names = ["blocks", "block_index", "commits", "txs", "state", "meta"];
    assert_schema_refused(&names, 2);
}

/// Schema 3 predates the EVM: its receipts decode differently and its
/// blocks give other state roots under this build's rules.
#[test]
fn a_schema_3_database_gets_the_schema_error() {
    let names = ["blocks", "block_index", "commits", "txs", "state", "meta"];
    assert_schema_refused(&names, 3);
}

/// Schema 4 did not record block hashes for BLOCKHASH: its blocks give
/// other state roots under this build's rules.
#[test]
fn a_schema_4_database_gets_the_schema_error() {
    let names = ["blocks", "block_index", "commits", "txs", "state", "meta"];
    assert_schema_refused(&names, 4);
}

#[test]
fn pending_blocks_are_kept_until_their_height_commits() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    {
        let l = Ledger::open(dir.path()).unwrap();
        l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
            .unwrap();
        // Build block 1 on a scratch ledger to get a realistic block.
        let scratch_dir = tempfile::tempdir().unwrap();
        let scratch = Ledger::open(scratch_dir.path()).unwrap();
        scratch
            .init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
            .unwrap();
        let (block, _) = commit_next(&scratch, &f, f.genesis_hash);
        l.save_pending_block(&block).unwrap();
        assert_eq!(l.pending_blocks(Height(1)).unwrap(), vec![block]);
        assert!(l.pending_blocks(Height(2)).unwrap().is_empty());
    }
    // Survives a restart, and goes once height 1 is committed.
    let l = Ledger::open(dir.path()).unwrap();
    assert_eq!(l.pending_blocks(Height(1)).unwrap().len(), 1);
    commit_next(&l, &f, f.genesis_hash);
    assert!(l.pending_blocks(Height(1)).unwrap().is_empty());
}

#[test]
fn cached_state_follows_commits_and_the_version_moves_with_each() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    assert!(matches!(
        l.latest_height(),
        Err(LedgerError::NotInitialized)
    ));
    l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
        .unwrap();
    let alice = palisade_runtime::state::keys::account(&f.alice.address());
    let bob = palisade_runtime::state::keys::account(&Keypair::from_seed([2; 32]).address());
    let balance = |key: &[u8]| {
        l.get(key)
            .unwrap()
            .map(|raw| borsh::from_slice::<palisade_runtime::Account>(&raw).unwrap())
            .map(|a| a.balance)
    };
    // Read (and so cached) before each block, read again after it: the
    // cache never serves the value from before a commit.
    assert_eq!(balance(&alice), Some(1_000));
    assert_eq!(balance(&bob), None);
    let mut prev = f.genesis_hash;
    let mut version = l.state_version();
    for n in 1..=3u128 {
        assert_eq!(version % 2, 0, "no commit is running");
        let (_, h) = commit_next(&l, &f, prev);
        prev = h;
        assert_eq!(balance(&alice), Some(1_000 - 10 * n));
        assert_eq!(balance(&bob), Some(10 * n));
        assert_eq!(l.state_version(), version + 2, "one commit, two steps");
        version = l.state_version();
    }
    // A reopened ledger reads the same from RocksDB.
    drop(l);
    let l = Ledger::open(dir.path()).unwrap();
    assert_eq!(l.latest_height().unwrap(), Height(3));
    let raw = l.get(&bob).unwrap().unwrap();
    let acct: palisade_runtime::Account = borsh::from_slice(&raw).unwrap();
    assert_eq!(acct.balance, 30);
}

/// Values are read from the tree's leaves and blobs (the ledger keeps no
/// copy beside the tree): small, stored-apart and never-cached values
/// and absent keys read back the same from a fresh ledger (cold caches)
/// and again once cached.
#[test]
fn values_of_every_size_are_read_from_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let mut writes = std::collections::BTreeMap::new();
    writes.insert(b"small".to_vec(), Some(b"x".to_vec()));
    writes.insert(b"apart".to_vec(), Some(vec![7u8; 1_000]));
    writes.insert(b"uncached".to_vec(), Some(vec![9u8; 10_000]));
    let state = palisade_runtime::commit_writes(
        &palisade_runtime::MemStore::default(),
        smt::EMPTY,
        writes.clone(),
    )
    .unwrap();
    {
        let l = Ledger::open(dir.path()).unwrap();
        l.init_genesis(&f.chain, f.genesis_hash, &state, &set_of(&f))
            .unwrap();
        for (k, v) in &writes {
            assert_eq!(&l.get(k).unwrap(), v);
        }
    }
    let l = Ledger::open(dir.path()).unwrap();
    for _ in 0..2 {
        for (k, v) in &writes {
            assert_eq!(&l.get(k).unwrap(), v, "{}", String::from_utf8_lossy(k));
        }
        assert_eq!(l.get(b"absent").unwrap(), None);
    }
}

/// The settings that keep flushes off the vote path are the ones RocksDB
/// runs with: it writes them to its OPTIONS file on open.
#[test]
fn background_writes_are_spread_and_state_pages_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    let _l = Ledger::open(dir.path()).unwrap();
    let db = dir.path().join("db");
    let file = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("OPTIONS-"))
        })
        .max()
        .expect("RocksDB writes an OPTIONS file");
    let text = std::fs::read_to_string(file).unwrap();
    // Section name -> its `key=value` lines.
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            sections.push((line.to_string(), Vec::new()));
        } else if let Some((_, lines)) = sections.last_mut() {
            lines.push(line.replace(' ', ""));
        }
    }
    let section = |name: &str| -> &Vec<String> {
        &sections
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no section {name}"))
            .1
    };
    assert!(section("[DBOptions]").contains(&"bytes_per_sync=1048576".to_string()));
    let state = section("[CFOptions \"state\"]");
    assert!(
        state.contains(&"compression=kNoCompression".to_string()),
        "{state:?}"
    );
    let blocks = section("[CFOptions \"blocks\"]");
    assert!(
        blocks.contains(&"compression=kLZ4Compression".to_string()),
        "{blocks:?}"
    );
}

fn put(h: u64) -> Action {
    Action::Put {
        namespace: palisade_types::Namespace::new(b"p".to_vec()).unwrap(),
        key: palisade_types::DataKey::new(format!("k{}", h % 20).into_bytes()).unwrap(),
        value: palisade_types::DataValue::new(format!("v{h}").into_bytes()).unwrap(),
    }
}

/// Every state page reachable from `root`.
fn pages_under(l: &Ledger, root: Hash, into: &mut std::collections::BTreeSet<Hash>) {
    let mut stack = vec![root];
    while let Some(h) = stack.pop() {
        if !into.insert(h) {
            continue;
        }
        let page = StateStore::page(l, &h).unwrap().expect("a kept page");
        for s in page.slots() {
            if let palisade_runtime::page::Slot::Child(c) = s {
                stack.push(*c);
            }
        }
    }
}

#[test]
fn pruning_drops_old_blocks_and_state_and_keeps_the_rest_whole() {
    use palisade_ledger::Retention;
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let genesis = initial_state(&f.init).unwrap();
    let kept = {
        let l = Ledger::open(dir.path()).unwrap();
        l.record_replaced_pages(true);
        l.init_genesis(&f.chain, f.genesis_hash, &genesis, &set_of(&f))
            .unwrap();
        let mut prev = f.genesis_hash;
        for h in 1..=300u64 {
            prev = commit_action(&l, &f, prev, put(h), Durability::Synced).1;
        }
        // Nothing is due while everything is kept.
        let none = l.prune(Retention::default()).unwrap();
        assert_eq!(none, Default::default());
        let p = l
            .prune(Retention {
                keep_blocks: 100,
                keep_state_versions: 10,
            })
            .unwrap();
        assert_eq!(p.blocks_from, Some(Height(201)));
        assert_eq!(p.state_from, Some(Height(291)));
        assert!(p.pages_deleted > 100, "{p:?}");
        assert_eq!(l.earliest_block().unwrap(), Height(201));
        assert_eq!(l.state_from().unwrap(), Height(291));
        assert!(l.block(Height(200)).unwrap().is_none());
        assert!(l.commit(Height(200)).unwrap().is_none());
        assert!(l.block_header(Height(150)).unwrap().is_none());
        assert!(l.block(Height(201)).unwrap().is_some());
        assert!(l.state_root(Height(290)).unwrap().is_none());
        // Every kept version reads whole, with the values it had.
        let mut kept = std::collections::BTreeSet::new();
        for h in 291..=300u64 {
            let root = l.state_root(Height(h)).unwrap().unwrap();
            pages_under(&l, root, &mut kept);
            for k in 0..20u64 {
                let last = (1..=h).rev().find(|x| x % 20 == k).unwrap();
                let key = palisade_runtime::state::keys::data(b"p", format!("k{k}").as_bytes());
                assert_eq!(
                    palisade_runtime::get_at(&l, root, &key).unwrap(),
                    Some(format!("v{last}").into_bytes()),
                    "key k{k} at height {h}"
                );
            }
        }
        // The chain goes on, and a second pass finds the next batch.
        for _ in 301..=330u64 {
            let h = l.latest_height().unwrap().get() + 1;
            prev = commit_action(&l, &f, prev, put(h), Durability::Synced).1;
        }
        let p = l
            .prune(Retention {
                keep_blocks: 100,
                keep_state_versions: 10,
            })
            .unwrap();
        assert_eq!(p.blocks_from, Some(Height(231)));
        assert_eq!(p.state_from, Some(Height(321)));
        let mut kept = std::collections::BTreeSet::new();
        for h in 321..=330u64 {
            let root = l.state_root(Height(h)).unwrap().unwrap();
            pages_under(&l, root, &mut kept);
        }
        kept
    };
    // On disk there is exactly what the kept versions reach: nothing they
    // need went, nothing only older ones had stayed.
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(false);
    let cfs = rocksdb::DB::list_cf(&opts, dir.path().join("db")).unwrap();
    let db = rocksdb::DB::open_cf_for_read_only(&opts, dir.path().join("db"), &cfs, false).unwrap();
    let state = db.cf_handle("state").unwrap();
    let stored: std::collections::BTreeSet<Hash> = db
        .prefix_iterator_cf(state, b"p")
        .map(|r| r.unwrap().0)
        .take_while(|k| k.first() == Some(&b'p'))
        .map(|k| Hash::from_slice(&k[1..]).unwrap())
        .collect();
    assert_eq!(stored, kept);
}

/// A ledger of `blocks` blocks in `dir`, closed again.
fn ledger_with_blocks(dir: &std::path::Path, f: &Fixture, blocks: u64) {
    let l = Ledger::open(dir).unwrap();
    l.init_genesis(
        &f.chain,
        f.genesis_hash,
        &initial_state(&f.init).unwrap(),
        &set_of(f),
    )
    .unwrap();
    let mut prev = f.genesis_hash;
    for _ in 0..blocks {
        prev = commit_next(&l, f, prev).1;
    }
}

#[test]
fn a_marked_staged_ledger_replaces_the_nodes_own_at_open_and_an_unmarked_one_is_dropped() {
    use palisade_ledger::{mark_staged, staging_dir};
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    ledger_with_blocks(dir.path(), &f, 3);
    let staging = staging_dir(dir.path());

    // A catch-up that stopped before it finished: dropped, nothing changed.
    ledger_with_blocks(&staging, &f, 1);
    {
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.latest_height().unwrap(), Height(3));
    }
    assert!(!staging.exists());

    // A finished one: it becomes the ledger.
    ledger_with_blocks(&staging, &f, 1);
    mark_staged(&staging).unwrap();
    {
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.latest_height().unwrap(), Height(1));
        assert_eq!(l.block(Height(3)).unwrap(), None);
    }
    assert!(!staging.exists());

    // A crash after the swap, before the staging directory went: the
    // next open only tidies up.
    std::fs::create_dir_all(&staging).unwrap();
    mark_staged(&staging).unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    assert_eq!(l.latest_height().unwrap(), Height(1));
    assert!(!staging.exists());
}

#[test]
fn validator_set_changes_are_recorded_walked_and_found_again_in_an_older_ledger() {
    use palisade_statesync::Trust;
    use palisade_types::{SetChangeError, Validator, ValidatorSet};
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let newcomer = Keypair::from_seed([0x77; 32]);
    let other = ValidatorSet::new(vec![Validator {
        public_key: newcomer.public_key(),
        power: 1,
    }])
    .unwrap();
    {
        let l = Ledger::open(dir.path()).unwrap();
        l.init_genesis(
            &f.chain,
            f.genesis_hash,
            &initial_state(&f.init).unwrap(),
            &set_of(&f),
        )
        .unwrap();
        let (_, h1) = commit_next(&l, &f, f.genesis_hash);
        let transfer = Action::Transfer {
            to: Keypair::from_seed([2; 32]).address(),
            amount: 10,
        };
        commit_action_naming(
            &l,
            &f,
            h1,
            transfer,
            Durability::Synced,
            Some(other.clone()),
        );
    }
    let check = |l: &Ledger| {
        let changes = l.set_changes_after(Height(0), 16, 1 << 20).unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].height(), Height(2));
        assert_eq!(changes[0].next_validators, other);
        assert!(l
            .set_changes_after(Height(2), 16, 1 << 20)
            .unwrap()
            .is_empty());
        changes
    };
    let changes = check(&Ledger::open(dir.path()).unwrap());

    // A ledger written before changes were recorded finds them in its blocks.
    {
        let opts = rocksdb::Options::default();
        let path = dir.path().join("db");
        let names = rocksdb::DB::list_cf(&opts, &path).unwrap();
        let db = rocksdb::DB::open_cf(&opts, &path, names).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.delete_cf(meta, [&b"set_change/"[..], &2u64.to_be_bytes()].concat())
            .unwrap();
        db.delete_cf(meta, b"set_changes_scanned").unwrap();
    }
    check(&Ledger::open(dir.path()).unwrap());

    // Walked from genesis: the new set is known from height 3 on.
    let mut trust = Trust::genesis(set_of(&f), None);
    assert_eq!(trust.set_at(Height(3)), &set_of(&f));
    trust.walk(&f.chain, changes[0].clone()).unwrap();
    assert_eq!(trust.set_at(Height(2)), &set_of(&f));
    assert_eq!(trust.set_at(Height(3)), &other);
    assert_eq!(trust.walked_to(), Height(2));
    assert_eq!(
        trust.walk(&f.chain, changes[0].clone()),
        Err(SetChangeError::OutOfOrder(Height(2)))
    );
    // A node that trusts another set cannot place it.
    let mut elsewhere = Trust::new(other.clone(), Height(1), None);
    assert_eq!(
        elsewhere.walk(&f.chain, changes[0].clone()),
        Err(SetChangeError::NotTrustedSet(Height(2)))
    );
}
