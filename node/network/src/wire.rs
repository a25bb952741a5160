//! What travels between nodes: the gossip payloads (consensus messages,
//! transaction batches) and the block-sync request/response. Each is borsh,
//! decoded with a hard size bound and no trailing bytes (see
//! `docs/p2p.md`, whose vectors the tests check).

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_consensus::Message;
use palisade_types::{
    decode_with_limit, encode, limits, Block, CommitCertificate, DecodeError, EthTransaction,
    Height, SetChange, SignedProposal, SignedTransaction, SignedVote, Wire,
};

/// Largest consensus gossip message: a proposal with a full block.
pub const MAX_CONSENSUS_MSG_BYTES: usize = limits::MAX_BLOCK_BYTES + 4 * 1024;
/// Largest transaction batch on the gossip topic.
pub const MAX_TX_BATCH_BYTES: usize = 1024 * 1024;
/// Most blocks asked for (and returned) in one sync request.
pub const MAX_SYNC_BLOCKS: u32 = 256;
/// A sync response stops adding blocks once past this many bytes, so a
/// response is at most this plus one block and its certificate.
pub const SYNC_SOFT_LIMIT_BYTES: usize = 8 * 1024 * 1024;
/// Largest sync response accepted.
pub const MAX_SYNC_RESPONSE_BYTES: usize =
    SYNC_SOFT_LIMIT_BYTES + limits::MAX_BLOCK_BYTES + limits::MAX_COMMIT_BYTES + 64;
/// Largest sync request accepted.
pub const MAX_SYNC_REQUEST_BYTES: usize = 64;

/// A consensus message on the gossip topic.
///
/// `nonce` is not signed and means nothing to consensus: it makes a
/// deliberate re-broadcast of the same vote a new gossip message (gossipsub
/// drops repeats of a message id it has seen), so a peer that missed the
/// first copy during a partition still gets one.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsensusGossip {
    pub nonce: u64,
    pub payload: ConsensusPayload,
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[allow(clippy::large_enum_variant)] // Decoded once and moved, never stored in bulk.
pub enum ConsensusPayload {
    Proposal {
        proposal: SignedProposal,
        block: Block,
    },
    Vote(SignedVote),
}

impl ConsensusGossip {
    pub fn new(nonce: u64, m: &Message) -> ConsensusGossip {
        let payload = match m {
            Message::Proposal { proposal, block } => ConsensusPayload::Proposal {
                proposal: proposal.clone(),
                block: (**block).clone(),
            },
            Message::Vote(v) => ConsensusPayload::Vote(v.clone()),
        };
        ConsensusGossip { nonce, payload }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<ConsensusGossip, DecodeError> {
        decode_with_limit(bytes, "consensus message", MAX_CONSENSUS_MSG_BYTES)
    }

    pub fn into_message(self) -> Message {
        match self.payload {
            ConsensusPayload::Proposal { proposal, block } => Message::Proposal {
                proposal,
                block: Arc::new(block),
            },
            ConsensusPayload::Vote(v) => Message::Vote(v),
        }
    }
}

/// A batch of transactions on the gossip topic.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxBatch {
    pub txs: Vec<SignedTransaction>,
}

impl TxBatch {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<TxBatch, DecodeError> {
        decode_with_limit(bytes, "transaction batch", MAX_TX_BATCH_BYTES)
    }
}

/// A batch of Ethereum transactions (raw EIP-2718 bytes) on their gossip
/// topic.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EthTxBatch {
    pub txs: Vec<EthTransaction>,
}

impl EthTxBatch {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<EthTxBatch, DecodeError> {
        decode_with_limit(bytes, "Ethereum transaction batch", MAX_TX_BATCH_BYTES)
    }
}

/// A block-sync request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncRequest {
    /// The peer's latest committed height.
    Status,
    /// Committed blocks `from, from+1, ...`, at most `count` (and at most
    /// [`MAX_SYNC_BLOCKS`]).
    Blocks { from: Height, count: u32 },
    /// The snapshots the peer offers (state sync).
    Snapshots,
    /// Chunk `index` of the peer's snapshot of `height`.
    Chunk { height: Height, index: u32 },
    /// The validator-set changes the peer knows of after height `after`,
    /// oldest first (state sync's walk from a trusted set to a snapshot's).
    SetChanges { after: Height },
}

/// Most validator-set changes in one answer.
pub const MAX_SET_CHANGES: usize = 16;
const _: () = assert!(MAX_SET_CHANGES * SetChange::MAX_ENCODED_LEN < MAX_SYNC_RESPONSE_BYTES);

/// Most snapshots a peer offers at once.
pub const MAX_OFFERED_SNAPSHOTS: usize = 2;

/// A block with the certificate that committed it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommittedBlock {
    pub block: Block,
    pub commit: CommitCertificate,
}

/// The answer to a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncResponse {
    Status {
        height: Height,
    },
    /// Consecutive blocks starting at the requested height (possibly
    /// none: the peer does not have it), and the peer's latest height.
    Blocks {
        latest: Height,
        blocks: Vec<CommittedBlock>,
    },
    /// The requested height is below the first block the peer keeps
    /// (it prunes, or started from a snapshot).
    Pruned {
        latest: Height,
        earliest: Height,
    },
    /// The manifests of the snapshots the peer offers, newest first, each
    /// in its own encoding (docs/snapshots.md); at most
    /// [`MAX_OFFERED_SNAPSHOTS`].
    Snapshots {
        manifests: Vec<Vec<u8>>,
    },
    /// The chunk asked for; `None` when the peer no longer offers that
    /// snapshot.
    Chunk {
        chunk: Option<Vec<u8>>,
    },
    /// Validator-set changes after the height asked for, oldest first; at
    /// most [`MAX_SET_CHANGES`]. Fewer means the peer knows of no more.
    SetChanges {
        changes: Vec<SetChange>,
    },
}

impl SyncRequest {
    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, DecodeError> {
        let r: SyncRequest = decode_with_limit(bytes, "sync request", MAX_SYNC_REQUEST_BYTES)?;
        if let SyncRequest::Blocks { count, .. } = r {
            if count == 0 || count > MAX_SYNC_BLOCKS {
                return Err(DecodeError::Malformed {
                    what: "sync request",
                    reason: format!("block count {count} is not in 1..={MAX_SYNC_BLOCKS}"),
                });
            }
        }
        Ok(r)
    }
}

impl SyncResponse {
    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, DecodeError> {
        let r: SyncResponse = decode_with_limit(bytes, "sync response", MAX_SYNC_RESPONSE_BYTES)?;
        let (count, most, what) = match &r {
            SyncResponse::Blocks { blocks, .. } => {
                (blocks.len(), MAX_SYNC_BLOCKS as usize, "blocks")
            }
            SyncResponse::SetChanges { changes } => {
                (changes.len(), MAX_SET_CHANGES, "validator-set changes")
            }
            SyncResponse::Snapshots { manifests } => {
                (manifests.len(), MAX_OFFERED_SNAPSHOTS, "snapshots offered")
            }
            // Bounded by their encoding alone.
            SyncResponse::Status { .. }
            | SyncResponse::Pruned { .. }
            | SyncResponse::Chunk { .. } => (0, 0, ""),
        };
        if count > most {
            return Err(DecodeError::Malformed {
                what: "sync response",
                reason: format!("{count} {what}, at most {most}"),
            });
        }
        Ok(r)
    }
}

/// Largest file announcement.
pub const MAX_FILE_ANNOUNCEMENT_BYTES: usize = 128;

/// A gossiped hint that `holder` holds (some or all of) a file.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FileAnnouncement {
    /// The holder's libp2p peer id, as bytes.
    pub holder: palisade_types::BoundedBytes<64>,
    pub root: [u8; 32],
    pub complete: bool,
}

impl FileAnnouncement {
    pub fn new(
        holder: libp2p::PeerId,
        root: palisade_files::FileRoot,
        complete: bool,
    ) -> FileAnnouncement {
        FileAnnouncement {
            holder: palisade_types::BoundedBytes::new(holder.to_bytes()).unwrap_or_default(),
            root: root.0,
            complete,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<FileAnnouncement, DecodeError> {
        decode_with_limit(bytes, "file announcement", MAX_FILE_ANNOUNCEMENT_BYTES)
    }
}
