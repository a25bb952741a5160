use palisade_consensus::{SignedMessage, SignerState, Step};
use palisade_ledger::signer_store::{migrate, Migration, SignerStore, SignerStoreError};
use palisade_types::{ChainId, Hash, Height, Keypair, Round, SignedVote, Vote, VoteType};
use sha2::{Digest, Sha256};

const DOC: &str = include_str!("../../../docs/operators.md");
const SLOT: usize = 4096;

fn vote(seed: u8, round: u32) -> SignedVote {
    let k = Keypair::from_seed([seed; 32]);
    Vote {
        vote_type: VoteType::Prevote,
        height: Height(7),
        round: Round(round),
        block_hash: Some(Hash([3; 32])),
        validator: k.public_key(),
    }
    .sign(&ChainId::new("c").unwrap(), &k)
}

fn state() -> SignerState {
    SignerState {
        height: Height(7),
        round: Round(2),
        step: Some(Step::Prevote),
        signed: vec![SignedMessage::Vote(vote(1, 2))],
        locked: Some((Round(1), Hash([3; 32]))),
        valid: Some((Round(1), Hash([3; 32]))),
        polka: Vec::new(),
    }
}

/// A later state than [`state`]: the precommit step.
fn later() -> SignerState {
    SignerState {
        step: Some(Step::Precommit),
        ..state()
    }
}

fn flip(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 1;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn missing_file_means_nothing_signed_yet() {
    let dir = tempfile::tempdir().unwrap();
    let s = SignerStore::new(dir.path().join("signer_state"));
    assert_eq!(s.load().unwrap(), SignerState::default());
}

#[test]
fn save_then_load_round_trips_and_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&SignerState::default()).unwrap();
    s.save(&state()).unwrap();
    assert_eq!(s.load().unwrap(), state());
    // As a restarted node sees it.
    assert_eq!(SignerStore::new(&path).load().unwrap(), state());
    assert!(!dir.path().join("signer_state.tmp").exists());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * SLOT as u64);
}

#[test]
fn saves_after_the_first_overwrite_the_file_in_place() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    s.save(&later()).unwrap();
    s.save(&state()).unwrap();
    s.save(&later()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(s.load().unwrap(), later());

    // A new run's first save replaces the file (and starts its sequence
    // numbers over).
    let mut again = SignerStore::new(&path);
    again.save(&state()).unwrap();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(again.load().unwrap(), state());
}

#[test]
fn one_damaged_copy_is_recovered_from_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    s.save(&later()).unwrap();
    let good = std::fs::read(&path).unwrap();
    for at in [20, SLOT + 20, 2, SLOT + 2] {
        std::fs::write(&path, &good).unwrap();
        flip(&path, at);
        assert_eq!(s.load().unwrap(), later(), "byte {at} damaged");
    }
}

#[test]
fn a_save_cut_short_resumes_from_a_copy_at_least_as_new_as_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    let before = std::fs::read(&path).unwrap();
    s.save(&later()).unwrap();
    let after = std::fs::read(&path).unwrap();

    // Crash after the first copy was written, before the second: the new
    // state (its message was not sent yet, but it was signed) wins on its
    // sequence number.
    let half = [&after[..SLOT], &before[SLOT..]].concat();
    std::fs::write(&path, half).unwrap();
    assert_eq!(s.load().unwrap(), later());

    // Crash while the first copy was being written: it is torn, the
    // second still holds the state of the last message sent.
    let mut torn = [&after[..SLOT], &before[SLOT..]].concat();
    torn[40..80].copy_from_slice(&[0xAB; 40]);
    std::fs::write(&path, torn).unwrap();
    assert_eq!(s.load().unwrap(), state());
}

#[test]
fn damaged_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    flip(&path, 30);
    flip(&path, SLOT + 30);
    let e = s.load().unwrap_err();
    assert!(matches!(e, SignerStoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("both copies"), "{e}");
    assert!(e.to_string().contains("checksum"), "{e}");

    for bytes in [&b"garbage"[..], b"", &[0u8; 2 * SLOT], &[0u8; 3 * SLOT]] {
        std::fs::write(&path, bytes).unwrap();
        let e = s.load().unwrap_err();
        assert!(matches!(e, SignerStoreError::Corrupt { .. }), "{e}");
    }
    // A length field pointing past its slot.
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    for at in [12, SLOT + 12] {
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    let e = s.load().unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
}

#[test]
fn a_file_of_the_single_copy_format_loads_and_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut body = b"PSS1".to_vec();
    body.extend_from_slice(&palisade_types::encode(&state()));
    let sum = Sha256::digest(&body);
    body.extend_from_slice(&sum);
    std::fs::write(&path, &body).unwrap();
    let mut s = SignerStore::new(&path);
    assert_eq!(s.load().unwrap(), state());
    s.save(&later()).unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[..4], b"PSS2");
    assert_eq!(s.load().unwrap(), later());

    // Damaged, it is refused as before.
    let last = body.len() - 1;
    body[last] ^= 1;
    std::fs::write(&path, &body).unwrap();
    assert!(s.load().unwrap_err().to_string().contains("checksum"));
}

#[test]
fn a_state_that_outgrows_its_slot_gets_a_bigger_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    s.save(&later()).unwrap();
    // A polka of 100 validators' prevotes: some 14 KB.
    let big = SignerState {
        polka: (0..100).map(|i| vote(i, 1)).collect(),
        ..later()
    };
    s.save(&big).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(
        len > 2 * SLOT as u64 && len.is_multiple_of(2 * SLOT as u64),
        "{len}"
    );
    assert_eq!(s.load().unwrap(), big);
    // Back to small: written in place, the file keeps its size.
    s.save(&state()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert_eq!(SignerStore::new(&path).load().unwrap(), state());
}

#[test]
fn slot_format_matches_the_documented_vector() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let record = &bytes[..16 + len + 32];
    assert_eq!(&bytes[SLOT..SLOT + record.len()], record);
    let doc = DOC
        .lines()
        .find_map(|l| l.strip_prefix("signer_state_slot: 0x"))
        .expect("docs/operators.md has the signer-state vector");
    assert_eq!(doc, hex::encode(record));
}

#[test]
fn a_file_removed_or_replaced_while_running_is_written_anew() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let mut s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    s.save(&state()).unwrap();

    // Deleted by mistake: the next save puts it back.
    std::fs::remove_file(&path).unwrap();
    s.save(&later()).unwrap();
    assert_eq!(SignerStore::new(&path).load().unwrap(), later());

    // Replaced by another file (a restored copy): the next save goes to
    // the file the path names, not the one the store had open.
    let other = dir.path().join("restored");
    let mut r = SignerStore::new(&other);
    r.save(&SignerState::default()).unwrap();
    std::fs::rename(&other, &path).unwrap();
    s.save(&state()).unwrap();
    assert_eq!(SignerStore::new(&path).load().unwrap(), state());
}

/// A state further along than [`later`]: the next round.
fn next_round() -> SignerState {
    SignerState {
        round: Round(3),
        step: Some(Step::Prevote),
        signed: vec![SignedMessage::Vote(vote(1, 3))],
        ..state()
    }
}

fn saved(path: &std::path::Path, s: &SignerState) {
    SignerStore::new(path).save(s).unwrap();
}

/// The home of a node of an earlier version: the signer state in
/// `data/signer_state`; the new place is `config/signer_state`.
fn legacy_home() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = palisade_node::home::Home::new(dir.path());
    let (old, new) = (home.legacy_signer_state_file(), home.signer_state_file());
    assert_eq!(old, dir.path().join("data/signer_state"));
    assert_eq!(new, dir.path().join("config/signer_state"));
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    (dir, old, new)
}

#[test]
fn migration_moves_the_old_file_beside_the_validator_key() {
    let (_dir, old, new) = legacy_home();
    assert_eq!(migrate(&old, &new).unwrap(), Migration::Nothing);
    saved(&old, &later());
    assert_eq!(migrate(&old, &new).unwrap(), Migration::Moved);
    assert!(!old.exists());
    assert_eq!(SignerStore::new(&new).load().unwrap(), later());
    // Idempotent.
    assert_eq!(migrate(&old, &new).unwrap(), Migration::Nothing);
    assert_eq!(SignerStore::new(&new).load().unwrap(), later());
}

#[test]
fn migration_keeps_the_newer_of_two_states() {
    // The old file further along (a downgrade and upgrade again, or a
    // restored backup): it wins.
    let (_dir, old, new) = legacy_home();
    std::fs::create_dir_all(new.parent().unwrap()).unwrap();
    saved(&new, &state());
    saved(&old, &next_round());
    assert_eq!(migrate(&old, &new).unwrap(), Migration::Moved);
    assert_eq!(SignerStore::new(&new).load().unwrap(), next_round());
    assert!(!old.exists());

    // The new file further along: it stays, the old one goes.
    let (_dir, old, new) = legacy_home();
    std::fs::create_dir_all(new.parent().unwrap()).unwrap();
    saved(&new, &later());
    saved(&old, &state());
    assert_eq!(migrate(&old, &new).unwrap(), Migration::OldDiscarded);
    assert_eq!(SignerStore::new(&new).load().unwrap(), later());
    assert!(!old.exists());
}

#[test]
fn migration_refuses_a_damaged_old_file_and_touches_nothing() {
    let (_dir, old, new) = legacy_home();
    saved(&old, &state());
    let len = std::fs::metadata(&old).unwrap().len() as usize;
    flip(&old, 20);
    flip(&old, len / 2 + 20);
    assert!(matches!(
        migrate(&old, &new),
        Err(SignerStoreError::Corrupt { .. })
    ));
    assert!(old.exists());
    assert!(!new.exists());
}
