use palisade_consensus::{SignedMessage, SignerState, Step};
use palisade_node::signer_store::{SignerStore, SignerStoreError};
use palisade_types::{ChainId, Hash, Height, Keypair, Round, Vote, VoteType};

fn state() -> SignerState {
    let k = Keypair::from_seed([1; 32]);
    let v = Vote {
        vote_type: VoteType::Prevote,
        height: Height(7),
        round: Round(2),
        block_hash: Some(Hash([3; 32])),
        validator: k.public_key(),
    }
    .sign(&ChainId::new("c").unwrap(), &k);
    SignerState {
        height: Height(7),
        round: Round(2),
        step: Some(Step::Prevote),
        signed: vec![SignedMessage::Vote(v)],
        locked: Some((Round(1), Hash([3; 32]))),
        valid: Some((Round(1), Hash([3; 32]))),
        polka: Vec::new(),
    }
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
    let s = SignerStore::new(dir.path().join("signer_state"));
    s.save(&SignerState::default()).unwrap();
    s.save(&state()).unwrap();
    assert_eq!(s.load().unwrap(), state());
    assert!(!dir.path().join("signer_state.tmp").exists());
}

#[test]
fn damaged_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer_state");
    let s = SignerStore::new(&path);
    s.save(&state()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = s.load().unwrap_err();
    assert!(matches!(e, SignerStoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("checksum"), "{e}");

    std::fs::write(&path, b"garbage").unwrap();
    assert!(matches!(s.load(), Err(SignerStoreError::Corrupt { .. })));
    // Truncated to nothing (a torn write without the rename protocol).
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(s.load(), Err(SignerStoreError::Corrupt { .. })));
}
