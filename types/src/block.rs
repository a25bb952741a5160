use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_HEADER_BYTES};
use crate::{
    merkle, BoundedVec, ChainId, CommitCertificate, EthTransaction, Hash, Height, PublicKey,
    SignedTransaction, Timestamp, Wire,
};

/// Block header. Its hash is the block hash that votes and commits refer to.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    pub height: Height,
    /// Proposer's clock when it built the block, in Unix milliseconds.
    pub time: Timestamp,
    /// Hash of the block at `height - 1`; at height 1 the genesis hash.
    pub last_block_hash: Hash,
    /// Merkle root over the transaction hashes, in block order.
    pub tx_root: Hash,
    /// State root after executing this block's transactions.
    pub state_root: Hash,
    /// Merkle root over the encoded receipts, in block order.
    pub receipts_root: Hash,
    /// Hash of the validator set that commits this block.
    pub validators_hash: Hash,
    /// Hash of the validator set for `height + 1`.
    pub next_validators_hash: Hash,
    /// Consensus key of the proposer.
    pub proposer: PublicKey,
    /// Hash of `last_commit` (the commit of `height - 1`); zero at height 1.
    pub last_commit_hash: Hash,
}

/// A block: header, transactions, and the commit certificate of the previous
/// block (absent at height 1).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: BoundedVec<SignedTransaction, MAX_BLOCK_TXS>,
    /// Ethereum transactions, executed after `txs` (together at most
    /// `MAX_BLOCK_TXS`).
    pub eth_txs: BoundedVec<EthTransaction, MAX_BLOCK_TXS>,
    pub last_commit: Option<CommitCertificate>,
}

/// A block whose parts disagree with its header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("tx_root {header} does not match the transactions ({computed})")]
    TxRoot { header: Hash, computed: Hash },
    #[error("last_commit_hash does not match the included last commit")]
    LastCommitHash,
    #[error("block at height 1 must not carry a last commit")]
    UnexpectedLastCommit,
    #[error("block above height 1 must carry the previous block's commit")]
    MissingLastCommit,
    #[error("last commit is for height {commit}, expected {expected}")]
    LastCommitHeight { commit: Height, expected: Height },
    #[error(
        "last commit is for block {commit}, but the header says the previous block is {header}"
    )]
    LastCommitBlock { commit: Hash, header: Hash },
    #[error("block height must be at least 1")]
    ZeroHeight,
    #[error("block has {0} transactions; at most {MAX_BLOCK_TXS} of both kinds")]
    TooManyTxs(usize),
    #[error("transaction {index} is for chain {found}, not {expected}")]
    TxChainId {
        index: usize,
        found: ChainId,
        expected: ChainId,
    },
}

impl BlockHeader {
    /// The block hash: SHA-256 of the header's canonical encoding.
    pub fn hash(&self) -> Hash {
        crate::hash_encoding(self)
    }
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn height(&self) -> Height {
        self.header.height
    }

    /// Merkle root over the hashes of `txs`, then of `eth_txs` (keccak256
    /// of their bytes), as `tx_root` must be.
    pub fn compute_tx_root(txs: &[SignedTransaction], eth_txs: &[EthTransaction]) -> Hash {
        let hashes: Vec<Hash> = txs
            .iter()
            .map(SignedTransaction::hash)
            .chain(eth_txs.iter().map(EthTransaction::hash))
            .collect();
        merkle::root(&hashes)
    }

    /// How many bytes of transactions (their encodings, summed) a block
    /// with this header and last commit can carry and still encode within
    /// [`MAX_BLOCK_BYTES`], the bound every node decodes blocks with: the
    /// bound less the header, the transaction list's length prefix and the
    /// optional last commit. Only `header`'s length matters, which its
    /// chain id alone sets, so a header whose hashes are not yet known
    /// gives the same answer.
    pub fn room_for_txs(header: &BlockHeader, last_commit: Option<&CommitCertificate>) -> usize {
        let overhead = crate::encoded_len(header)
            + 4 // u32 length of `txs`
            + 4 // u32 length of `eth_txs`
            + 1 // tag of the `Option`
            + last_commit.map_or(0, crate::encoded_len);
        MAX_BLOCK_BYTES.saturating_sub(overhead)
    }

    /// The hash of each transaction, in order: `txs`, then `eth_txs`.
    pub fn tx_hashes(&self) -> Vec<Hash> {
        self.txs
            .iter()
            .map(SignedTransaction::hash)
            .chain(self.eth_txs.iter().map(EthTransaction::hash))
            .collect()
    }

    /// Transactions of both kinds.
    pub fn tx_count(&self) -> usize {
        self.txs.len() + self.eth_txs.len()
    }

    /// Checks what can be checked from the block alone: the number of
    /// transactions, the tx root, every
    /// transaction's chain id, and that `last_commit` is present exactly above
    /// height 1, is for the previous height and block, and matches its hash.
    /// Signatures, state and validators need context and are checked by the
    /// runtime and consensus.
    pub fn validate_basic(&self) -> Result<(), BlockError> {
        self.validate_basic_hashed(&self.tx_hashes())
    }

    /// [`Block::validate_basic`] with the transactions' hashes already
    /// computed (`tx_hashes` must be [`Block::tx_hashes`]; a list of
    /// another length fails the tx-root check). A node hashes each
    /// transaction of a block once and uses the hashes everywhere.
    pub fn validate_basic_hashed(&self, tx_hashes: &[Hash]) -> Result<(), BlockError> {
        let h = &self.header;
        if h.height == Height::GENESIS {
            return Err(BlockError::ZeroHeight);
        }
        if self.tx_count() > MAX_BLOCK_TXS {
            return Err(BlockError::TooManyTxs(self.tx_count()));
        }
        let computed = if tx_hashes.len() == self.tx_count() {
            merkle::root(tx_hashes)
        } else {
            Self::compute_tx_root(&self.txs, &self.eth_txs)
        };
        if computed != h.tx_root {
            return Err(BlockError::TxRoot {
                header: h.tx_root,
                computed,
            });
        }
        if let Some((index, tx)) = self
            .txs
            .iter()
            .enumerate()
            .find(|(_, tx)| tx.tx.chain_id != h.chain_id)
        {
            return Err(BlockError::TxChainId {
                index,
                found: tx.tx.chain_id.clone(),
                expected: h.chain_id.clone(),
            });
        }
        match (&self.last_commit, h.height.prev()) {
            (Some(_), Some(Height::GENESIS)) => Err(BlockError::UnexpectedLastCommit),
            (None, Some(Height::GENESIS)) => {
                if h.last_commit_hash != Hash::ZERO {
                    return Err(BlockError::LastCommitHash);
                }
                Ok(())
            }
            (None, _) => Err(BlockError::MissingLastCommit),
            (Some(c), prev) => {
                let expected = prev.unwrap_or(Height::GENESIS);
                if c.height != expected {
                    return Err(BlockError::LastCommitHeight {
                        commit: c.height,
                        expected,
                    });
                }
                if c.block_hash != h.last_block_hash {
                    return Err(BlockError::LastCommitBlock {
                        commit: c.block_hash,
                        header: h.last_block_hash,
                    });
                }
                if c.hash() != h.last_commit_hash {
                    return Err(BlockError::LastCommitHash);
                }
                Ok(())
            }
        }
    }
}

impl Wire for BlockHeader {
    const NAME: &'static str = "block header";
    const MAX_ENCODED_LEN: usize = MAX_HEADER_BYTES;
}

impl Wire for Block {
    const NAME: &'static str = "block";
    const MAX_ENCODED_LEN: usize = MAX_BLOCK_BYTES;
}
