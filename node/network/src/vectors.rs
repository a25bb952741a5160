//! The test vectors printed in `docs/p2p.md`, built from the fixed keys of
//! `docs/spec.md`. A test checks the document against this module; `cargo
//! run --release -p palisade-network --example p2p_vectors` prints the blocks
//! to paste after an intended format change.

use palisade_consensus::Message;
use palisade_types::test_vectors::{Vector, ALICE_SEED, BOB_SEED, CHAIN_ID, VALIDATOR_SEED};
use palisade_types::{
    encode, sha256, Action, ChainId, Hash, Height, Keypair, Round, Transaction, Vote, VoteType,
};

use palisade_files::wire::{BlobRequest, BlobResponse, Holding, Refusal};
use palisade_files::{FileRoot, ReadPermit};

use super::wire::{
    ConsensusGossip, EthTxBatch, FileAnnouncement, SyncRequest, SyncResponse, TxBatch,
};

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The gossip message id: the first 20 bytes of SHA-256 of the data.
pub fn message_id(data: &[u8]) -> Vec<u8> {
    sha256(data).0[..20].to_vec()
}

#[allow(clippy::expect_used)] // Fixed inputs that are valid by inspection.
pub fn all() -> Vec<Vector> {
    let chain = ChainId::new(CHAIN_ID).expect("valid chain id");
    let alice = Keypair::from_seed(ALICE_SEED);
    let bob = Keypair::from_seed(BOB_SEED);
    let validator = Keypair::from_seed(VALIDATOR_SEED);
    let mut out = Vec::new();

    let vote = Vote {
        vote_type: VoteType::Prevote,
        height: Height(7),
        round: Round(1),
        block_hash: Some(Hash([0xab; 32])),
        validator: validator.public_key(),
    }
    .sign(&chain, &validator);
    let gossip = ConsensusGossip::new(9, &Message::Vote(vote));
    let data = gossip.encode();
    out.push(Vector {
        name: "consensus-gossip-prevote",
        fields: vec![
            ("topic", format!("/palisade/{CHAIN_ID}/consensus/1")),
            ("nonce", "9".into()),
            (
                "vote",
                "prevote height 7 round 1 block 0xabab..ab by validator".into(),
            ),
            ("encoding", hex0x(&data)),
            ("message_id", hex0x(&message_id(&data))),
        ],
    });

    let tx = Transaction {
        chain_id: chain.clone(),
        nonce: 0,
        signer: alice.address(),
        action: Action::Transfer {
            to: bob.address(),
            amount: 1_000_000,
        },
    }
    .sign(&alice);
    let batch = TxBatch { txs: vec![tx] }.encode();
    out.push(Vector {
        name: "tx-batch",
        fields: vec![
            ("topic", format!("/palisade/{CHAIN_ID}/txs/1")),
            ("txs", "[transfer-tx of spec.md]".into()),
            ("encoding", hex0x(&batch)),
            ("message_id", hex0x(&message_id(&batch))),
        ],
    });

    let eth = palisade_types::EthTransaction(
        palisade_types::BoundedBytes::new(palisade_types::parse_hex(ETH_TX).expect("fixed hex"))
            .expect("small"),
    );
    let eth_batch = EthTxBatch { txs: vec![eth] }.encode();
    out.push(Vector {
        name: "eth-tx-batch",
        fields: vec![
            ("topic", format!("/palisade/{CHAIN_ID}/eth-txs/1")),
            ("txs", "[eth-tx of spec.md]".into()),
            ("encoding", hex0x(&eth_batch)),
            ("message_id", hex0x(&message_id(&eth_batch))),
        ],
    });

    out.push(Vector {
        name: "sync-status",
        fields: vec![
            ("request", hex0x(&encode(&SyncRequest::Status))),
            (
                "response_height_42",
                hex0x(&encode(&SyncResponse::Status { height: Height(42) })),
            ),
        ],
    });
    out.push(Vector {
        name: "sync-blocks-request",
        fields: vec![
            ("from", "10".into()),
            ("count", "64".into()),
            (
                "request",
                hex0x(&encode(&SyncRequest::Blocks {
                    from: Height(10),
                    count: 64,
                })),
            ),
            (
                "empty_response_latest_9",
                hex0x(&encode(&SyncResponse::Blocks {
                    latest: Height(9),
                    blocks: Vec::new(),
                })),
            ),
            (
                "pruned_response_latest_500_earliest_401",
                hex0x(&encode(&SyncResponse::Pruned {
                    latest: Height(500),
                    earliest: Height(401),
                })),
            ),
        ],
    });
    out.push(Vector {
        name: "sync-snapshots",
        fields: vec![
            ("request", hex0x(&encode(&SyncRequest::Snapshots))),
            (
                "empty_response",
                hex0x(&encode(&SyncResponse::Snapshots {
                    manifests: Vec::new(),
                })),
            ),
            (
                "chunk_request_height_20_index_3",
                hex0x(&encode(&SyncRequest::Chunk {
                    height: Height(20),
                    index: 3,
                })),
            ),
            (
                "chunk_response_0x0102",
                hex0x(&encode(&SyncResponse::Chunk {
                    chunk: Some(vec![1, 2]),
                })),
            ),
            (
                "chunk_response_none",
                hex0x(&encode(&SyncResponse::Chunk { chunk: None })),
            ),
            (
                "set_changes_request_after_0",
                hex0x(&encode(&SyncRequest::SetChanges { after: Height(0) })),
            ),
            (
                "set_changes_empty_response",
                hex0x(&encode(&SyncResponse::SetChanges {
                    changes: Vec::new(),
                })),
            ),
        ],
    });
    out.extend(file_vectors(&chain, &alice, &validator));
    out
}

/// The blob protocol's messages and the file announcement, about the file
/// `hello` (5 bytes), read by Alice through the validator's node.
#[allow(clippy::expect_used)] // Fixed inputs that are valid by inspection.
fn file_vectors(chain: &ChainId, alice: &Keypair, validator: &Keypair) -> Vec<Vector> {
    let root = FileRoot::of(b"hello");
    let peer = super::peer_id_of(&validator.public_key()).expect("valid key");
    let permit = ReadPermit::new(root, &peer.to_bytes(), 1_800_000_060_000, alice.address())
        .expect("short peer id")
        .sign(chain, alice, palisade_files::Purpose::Fetch);
    let mut piece = Vec::new();
    let prepared = palisade_files::Prepared::of(b"hello").expect("small");
    palisade_files::encode_piece(&prepared, b"hello", 0, &mut piece).expect("piece 0");
    let announcement = FileAnnouncement::new(peer, root, true).encode();
    vec![
        Vector {
            name: "blob-requests",
            fields: vec![
                ("protocol", palisade_files::wire::BLOB_PROTOCOL.into()),
                ("root", root.to_string()),
                ("peer", peer.to_string()),
                ("have", hex0x(&BlobRequest::Have { root }.encode())),
                (
                    "piece_0_by_alice_until_1800000060000",
                    hex0x(
                        &BlobRequest::Piece {
                            root,
                            piece: 0,
                            permit,
                        }
                        .encode(),
                    ),
                ),
            ],
        },
        Vector {
            name: "blob-responses",
            fields: vec![
                (
                    "have_nothing",
                    hex0x(
                        &BlobResponse::Have {
                            holding: Holding::Nothing,
                        }
                        .encode(),
                    ),
                ),
                (
                    "have_pieces_0_and_2",
                    hex0x(
                        &BlobResponse::Have {
                            holding: Holding::Partial {
                                bits: palisade_types::BoundedBytes::new(vec![0b101])
                                    .expect("one byte"),
                            },
                        }
                        .encode(),
                    ),
                ),
                (
                    "have_complete",
                    hex0x(
                        &BlobResponse::Have {
                            holding: Holding::Complete,
                        }
                        .encode(),
                    ),
                ),
                (
                    "piece_0",
                    hex0x(
                        &BlobResponse::Piece {
                            encoded: palisade_types::BoundedBytes::new(piece).expect("small"),
                        }
                        .encode(),
                    ),
                ),
                (
                    "refused_not_a_reader",
                    hex0x(&BlobResponse::refused(Refusal::NotAReader, "not a reader").encode()),
                ),
            ],
        },
        Vector {
            name: "file-announcement",
            fields: vec![
                ("topic", format!("/palisade/{CHAIN_ID}/files/1")),
                ("holder", peer.to_string()),
                ("root", root.to_string()),
                ("complete", "true".into()),
                ("encoding", hex0x(&announcement)),
                ("message_id", hex0x(&message_id(&announcement))),
            ],
        },
    ]
}

/// The `eth-tx` vector of spec.md: the standard test mnemonic's account 1
/// paying account 0 1,000 wei on chain 1337.
const ETH_TX: &str = "0x02f86682053980808082520894f39fd6e51aad88f6f4ce6ab8827279cfffb922668203e880c001a0d9f5b74d0adc688537e00c2683b371660553d448017f908b9ada5b386c7b411ba0542f6d3954f3ab9f26faaea8f0139ec5435b7113d78ebb50a9d6d6929cbbdb89";
