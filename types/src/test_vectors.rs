//! The test vectors printed in `docs/spec.md`. Built from fixed keys and
//! values so they never change unless the encoding does; a test checks the
//! document against this module, and `cargo run -p palisade-types --example
//! vectors` prints the blocks to paste after an intended format change.

use crate::{
    encode, merkle, sha256, Action, BlockHeader, BoundedBytes, ChainId, CommitCertificate,
    CommitSig, Hash, Height, Keypair, Round, Timestamp, Transaction, Validator, ValidatorSet, Vote,
    VoteType,
};

/// One named vector: ordered `(field, value)` pairs, values as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    pub name: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The seeds of the keys used by the vectors (RFC 8032 secret keys).
pub const ALICE_SEED: [u8; 32] = [0x11; 32];
pub const BOB_SEED: [u8; 32] = [0x22; 32];
pub const VALIDATOR_SEED: [u8; 32] = [0x33; 32];
pub const CHAIN_ID: &str = "palisade-spec";

/// Every vector, in the order the document prints them. Long on purpose:
/// one block per vector, read side by side with the document.
#[allow(clippy::expect_used)] // Fixed inputs that are valid by inspection.
pub fn all() -> Vec<Vector> {
    let chain = ChainId::new(CHAIN_ID).expect("valid chain id");
    let alice = Keypair::from_seed(ALICE_SEED);
    let bob = Keypair::from_seed(BOB_SEED);
    let validator = Keypair::from_seed(VALIDATOR_SEED);
    let mut out = Vec::new();

    out.push(Vector {
        name: "keys",
        fields: vec![
            ("alice_seed", hex0x(&ALICE_SEED)),
            ("alice_public_key", alice.public_key().to_string()),
            ("bob_seed", hex0x(&BOB_SEED)),
            ("bob_public_key", bob.public_key().to_string()),
            ("validator_seed", hex0x(&VALIDATOR_SEED)),
            ("validator_public_key", validator.public_key().to_string()),
        ],
    });

    let transfer = Transaction {
        chain_id: chain.clone(),
        nonce: 0,
        signer: alice.address(),
        action: Action::Transfer {
            to: bob.address(),
            amount: 1_000_000,
        },
    };
    let transfer_signed = transfer.clone().sign(&alice);
    out.push(Vector {
        name: "transfer-tx",
        fields: vec![
            ("chain_id", CHAIN_ID.to_string()),
            ("nonce", "0".into()),
            ("signer", alice.address().to_string()),
            (
                "action",
                format!("transfer to {} amount 1000000", bob.address()),
            ),
            ("signing_bytes", hex0x(&transfer.signing_bytes())),
            ("signature", transfer_signed.signature.to_string()),
            ("encoding", hex0x(&encode(&transfer_signed))),
            ("hash", transfer_signed.hash().to_string()),
        ],
    });

    let put = Transaction {
        chain_id: chain.clone(),
        nonce: 1,
        signer: alice.address(),
        action: Action::Put {
            namespace: BoundedBytes::new(b"app".to_vec()).expect("short"),
            key: BoundedBytes::new(b"greeting".to_vec()).expect("short"),
            value: BoundedBytes::new(b"hello".to_vec()).expect("short"),
        },
    };
    let put_signed = put.clone().sign(&alice);
    out.push(Vector {
        name: "put-tx",
        fields: vec![
            ("chain_id", CHAIN_ID.to_string()),
            ("nonce", "1".into()),
            ("signer", alice.address().to_string()),
            (
                "action",
                "put namespace \"app\" key \"greeting\" value \"hello\"".into(),
            ),
            ("signing_bytes", hex0x(&put.signing_bytes())),
            ("signature", put_signed.signature.to_string()),
            ("encoding", hex0x(&encode(&put_signed))),
            ("hash", put_signed.hash().to_string()),
        ],
    });

    // BLAKE3("hello"), as `palisade-files` checks.
    let hello_root = Hash(
        crate::parse_hex("0xea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f")
            .expect("fixed hex")
            .try_into()
            .expect("32 bytes"),
    );
    let publish = Transaction {
        chain_id: chain.clone(),
        nonce: 2,
        signer: alice.address(),
        action: Action::FilePublish {
            root: hello_root,
            size: 5,
            name: crate::BoundedString::new("hello.txt").expect("short"),
            media_type: crate::BoundedString::new("text/plain").expect("short"),
            readers: crate::FileReaders::Accounts(
                crate::BoundedVec::new(vec![bob.address()]).expect("one"),
            ),
            min_replicas: 2,
        },
    };
    let publish_signed = publish.clone().sign(&alice);
    out.push(Vector {
        name: "file-publish-tx",
        fields: vec![
            ("chain_id", CHAIN_ID.to_string()),
            ("nonce", "2".into()),
            ("signer", alice.address().to_string()),
            (
                "action",
                format!(
                    "file_publish root {hello_root} size 5 name \"hello.txt\" media_type \"text/plain\" readers accounts [{}] min_replicas 2",
                    bob.address()
                ),
            ),
            ("signing_bytes", hex0x(&publish.signing_bytes())),
            ("signature", publish_signed.signature.to_string()),
            ("encoding", hex0x(&encode(&publish_signed))),
            ("hash", publish_signed.hash().to_string()),
        ],
    });

    // The standard test mnemonic's account 1 pays account 0 1,000 wei on
    // chain 1337 (EIP-1559; signed by ethers, as docs/rpc.md sends it).
    let eth = crate::EthTransaction(
        crate::BoundedBytes::new(
            crate::parse_hex("0x02f86682053980808082520894f39fd6e51aad88f6f4ce6ab8827279cfffb922668203e880c001a0d9f5b74d0adc688537e00c2683b371660553d448017f908b9ada5b386c7b411ba0542f6d3954f3ab9f26faaea8f0139ec5435b7113d78ebb50a9d6d6929cbbdb89")
                .expect("fixed hex"),
        )
        .expect("small"),
    );
    let with_eth = crate::Block::compute_tx_root(
        std::slice::from_ref(&transfer_signed),
        std::slice::from_ref(&eth),
    );
    out.push(Vector {
        name: "eth-tx",
        fields: vec![
            ("bytes", hex0x(eth.bytes())),
            ("hash", eth.hash().to_string()),
            ("block_encoding", hex0x(&encode(&eth))),
            ("tx_root_with_transfer_tx", with_eth.to_string()),
        ],
    });

    let tx_hashes = [transfer_signed.hash(), put_signed.hash()];
    let tx_root = merkle::root(&tx_hashes);
    out.push(Vector {
        name: "merkle",
        fields: vec![
            ("leaf_0", tx_hashes[0].to_string()),
            ("leaf_1", tx_hashes[1].to_string()),
            (
                "leaf_hash_0",
                merkle::leaf_hash(tx_hashes[0].as_ref()).to_string(),
            ),
            (
                "leaf_hash_1",
                merkle::leaf_hash(tx_hashes[1].as_ref()).to_string(),
            ),
            ("root", tx_root.to_string()),
            ("empty_root", merkle::root::<Hash>(&[]).to_string()),
        ],
    });

    let set = ValidatorSet::new(vec![Validator {
        public_key: validator.public_key(),
        power: 10,
    }])
    .expect("valid set");
    out.push(Vector {
        name: "validator-set",
        fields: vec![
            ("validator", validator.public_key().to_string()),
            ("power", "10".into()),
            ("encoding", hex0x(&encode(&set))),
            ("hash", set.hash().to_string()),
        ],
    });

    let header = BlockHeader {
        chain_id: chain.clone(),
        height: Height(1),
        time: Timestamp(1_700_000_000_000),
        last_block_hash: sha256(b"genesis"),
        tx_root,
        state_root: sha256(b"state"),
        receipts_root: sha256(b"receipts"),
        validators_hash: set.hash(),
        next_validators_hash: set.hash(),
        proposer: validator.public_key(),
        last_commit_hash: Hash::ZERO,
    };
    let block_hash = header.hash();
    out.push(Vector {
        name: "block-header",
        fields: vec![
            ("chain_id", CHAIN_ID.to_string()),
            ("height", "1".into()),
            ("time", "1700000000000".into()),
            ("last_block_hash", header.last_block_hash.to_string()),
            ("tx_root", header.tx_root.to_string()),
            ("state_root", header.state_root.to_string()),
            ("receipts_root", header.receipts_root.to_string()),
            ("validators_hash", header.validators_hash.to_string()),
            (
                "next_validators_hash",
                header.next_validators_hash.to_string(),
            ),
            ("proposer", header.proposer.to_string()),
            ("last_commit_hash", header.last_commit_hash.to_string()),
            ("encoding", hex0x(&encode(&header))),
            ("hash", block_hash.to_string()),
        ],
    });

    let vote = Vote {
        vote_type: VoteType::Precommit,
        height: Height(1),
        round: Round(0),
        block_hash: Some(block_hash),
        validator: validator.public_key(),
    };
    let signed_vote = vote.clone().sign(&chain, &validator);
    out.push(Vector {
        name: "precommit-vote",
        fields: vec![
            ("vote_type", "precommit".into()),
            ("height", "1".into()),
            ("round", "0".into()),
            ("block_hash", block_hash.to_string()),
            ("validator", validator.public_key().to_string()),
            ("signing_bytes", hex0x(&vote.signing_bytes(&chain))),
            ("signature", signed_vote.signature.to_string()),
            ("encoding", hex0x(&encode(&signed_vote))),
        ],
    });

    let nil_vote = Vote {
        vote_type: VoteType::Prevote,
        height: Height(1),
        round: Round(2),
        block_hash: None,
        validator: validator.public_key(),
    }
    .sign(&chain, &validator);
    out.push(Vector {
        name: "nil-prevote",
        fields: vec![
            ("vote_type", "prevote".into()),
            ("height", "1".into()),
            ("round", "2".into()),
            ("block_hash", "nil".into()),
            ("validator", validator.public_key().to_string()),
            ("signing_bytes", hex0x(&nil_vote.vote.signing_bytes(&chain))),
            ("signature", nil_vote.signature.to_string()),
            ("encoding", hex0x(&encode(&nil_vote))),
        ],
    });

    let commit = CommitCertificate::new(
        Height(1),
        Round(0),
        block_hash,
        vec![CommitSig {
            validator: validator.public_key(),
            signature: signed_vote.signature,
        }],
    )
    .expect("one signature is canonical");
    out.push(Vector {
        name: "commit-certificate",
        fields: vec![
            ("height", "1".into()),
            ("round", "0".into()),
            ("block_hash", block_hash.to_string()),
            ("encoding", hex0x(&encode(&commit))),
            ("hash", commit.hash().to_string()),
        ],
    });

    out
}

/// Parses the ```text blocks of a document that start with `vector: NAME`
/// into (name, [(field, value)]). Lines without `: ` are skipped.
pub fn parse_doc(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
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
        let Some(name) = block.first().and_then(|f| f.strip_prefix("vector: ")) else {
            continue;
        };
        let fields = block[1..]
            .iter()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.push((name.to_string(), fields));
    }
    out
}

/// Checks that `doc` lists exactly `vectors`, in order; the error shows
/// the block the code expects.
pub fn compare_doc(doc: &str, vectors: &[Vector]) -> Result<(), String> {
    let parsed = parse_doc(doc);
    let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = vectors.iter().map(|v| v.name).collect();
    if names != want {
        return Err(format!(
            "document lists vectors {names:?}, the code {want:?}"
        ));
    }
    for ((_, fields), v) in parsed.iter().zip(vectors) {
        let expected: Vec<(String, String)> = v
            .fields
            .iter()
            .map(|(k, val)| (k.to_string(), val.clone()))
            .collect();
        if *fields != expected {
            return Err(format!(
                "vector {} differs from the code; the code says:\n{}",
                v.name,
                render(v)
            ));
        }
    }
    Ok(())
}

/// The vectors as the fenced blocks that appear in `docs/spec.md`.
pub fn render(v: &Vector) -> String {
    let mut s = format!("```text\nvector: {}\n", v.name);
    for (k, val) in &v.fields {
        s.push_str(&format!("{k}: {val}\n"));
    }
    s.push_str("```\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn vectors_are_self_consistent() {
        // Every signature in the vectors verifies; this keeps the generator
        // honest independently of the document check.
        for v in super::all() {
            let get = |k: &str| {
                v.fields
                    .iter()
                    .find(|(f, _)| *f == k)
                    .map(|(_, x)| x.clone())
            };
            if let (Some(sb), Some(sig)) = (get("signing_bytes"), get("signature")) {
                let key = get("signer")
                    .or_else(|| get("validator"))
                    .unwrap()
                    .parse::<crate::PublicKey>()
                    .unwrap();
                let msg = crate::parse_hex(&sb).unwrap();
                let sig = sig.parse::<crate::Signature>().unwrap();
                key.verify(&msg, &sig).unwrap();
            }
        }
    }
}
