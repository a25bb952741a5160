//! What a snapshot says of itself: the certified block whose post-state the
//! chunks rebuild, the certified block after it whose header names that
//! state's root, and the chunks' sizes and hashes.

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{
    sha256, BlockHeader, BoundedVec, ChainId, CommitCertificate, Hash, Height, SetChange,
    SetChangeError, ValidatorSet, Wire,
};

/// Version of the snapshot format ([`super::file`], [`super::chunks`]).
/// 2: the manifest carries the block after the snapshot's, whose header
/// names the snapshot's state root (a header names its parent's results).
pub const FORMAT: u32 = 2;
/// Most chunks in one snapshot: 64 GiB of state at 1 MiB a chunk.
pub const MAX_CHUNKS: usize = 65_536;

/// One chunk: its length and SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ChunkInfo {
    pub bytes: u32,
    pub hash: Hash,
}

/// A snapshot's description. Everything in it is checked before a byte
/// of state is kept: the certificate against the validator set, the set
/// against what the node trusts ([`Trust`]), and each chunk against its
/// hash here and the header's state root ([`super::chunks::Verifier`]).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Manifest {
    pub format: u32,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    /// The block whose post-state the snapshot holds.
    pub header: BlockHeader,
    /// The certificate that decided it.
    pub commit: CommitCertificate,
    /// The set that decided it (hashes to `header.validators_hash`).
    pub validators: ValidatorSet,
    /// The set that decides the next height (`header.next_validators_hash`).
    pub next_validators: ValidatorSet,
    /// The block after it: its header names the state root (and receipts
    /// root) after the snapshot's block.
    pub next_header: BlockHeader,
    /// The certificate that decided the block after it, by `next_validators`.
    pub next_commit: CommitCertificate,
    pub chunks: BoundedVec<ChunkInfo, MAX_CHUNKS>,
}

impl Wire for Manifest {
    const NAME: &'static str = "snapshot manifest";
    const MAX_ENCODED_LEN: usize = 4
        + palisade_types::limits::MAX_CHAIN_ID_LEN
        + 4
        + 32
        + 2 * BlockHeader::MAX_ENCODED_LEN
        + 2 * CommitCertificate::MAX_ENCODED_LEN
        + 2 * ValidatorSet::MAX_ENCODED_LEN
        + 4
        + MAX_CHUNKS * 36;
}

/// What a node trusts to accept a snapshot's validator set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// A set the node knows decides height `from`: the genesis set at
    /// height 1, or, for a node that has blocks, the set its own chain
    /// names for its next height.
    validators: ValidatorSet,
    from: Height,
    /// A block hash the operator got from a source they trust, at its
    /// height: a snapshot of exactly that block is accepted under any set,
    /// and a snapshot of any other height is refused.
    block: Option<(Height, Hash)>,
    /// Validator-set changes since `from`, oldest first, each checked
    /// against the set known before it ([`Trust::walk`]).
    walked: Vec<SetChange>,
}

impl Trust {
    pub fn new(validators: ValidatorSet, from: Height, block: Option<(Height, Hash)>) -> Trust {
        Trust {
            validators,
            from,
            block,
            walked: Vec::new(),
        }
    }

    /// Trust in the genesis validators (and `block`, if given).
    pub fn genesis(validators: ValidatorSet, block: Option<(Height, Hash)>) -> Trust {
        Trust::new(validators, Height(1), block)
    }

    /// The operator's trusted block, if any.
    pub fn block(&self) -> Option<(Height, Hash)> {
        self.block
    }

    /// The set known to decide `height`, as far as the walk has come
    /// (changes after it not yet walked are not known).
    pub fn set_at(&self, height: Height) -> &ValidatorSet {
        self.walked
            .iter()
            .rev()
            .find(|c| c.height() < height)
            .map_or(&self.validators, |c| &c.next_validators)
    }

    /// The height after which changes are still to be walked.
    pub fn walked_to(&self) -> Height {
        self.walked
            .last()
            .map_or(Height(self.from.get().saturating_sub(1)), SetChange::height)
    }

    /// Takes in the next change, once it verifies against the set known
    /// to decide its block: the set after it becomes known.
    pub fn walk(&mut self, chain_id: &ChainId, change: SetChange) -> Result<(), SetChangeError> {
        if change.height() <= self.walked_to() {
            return Err(SetChangeError::OutOfOrder(change.height()));
        }
        change.verify(chain_id, self.set_at(change.height()))?;
        self.walked.push(change);
        Ok(())
    }

    /// The changes walked below `height`, oldest first.
    pub fn walked_below(&self, height: Height) -> Vec<SetChange> {
        self.walked
            .iter()
            .filter(|c| c.height() < height)
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("snapshot format {0} is not supported (this build reads {FORMAT})")]
    Format(u32),
    #[error("snapshot is of chain {found}, this node's is {expected}")]
    Chain { found: String, expected: String },
    #[error("snapshot is of genesis {found}, this node's is {expected}")]
    Genesis { found: Hash, expected: Hash },
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
    #[error("snapshot's commit certificate does not verify: {0}")]
    Certificate(String),
    #[error("snapshot of height {height} is decided by validators this node cannot trust from what it has: give the block hash at that height (--trust-height {height} --trust-hash 0x...) from a source you trust")]
    Untrusted { height: Height },
    #[error(
        "snapshot of height {height} is older than height {from}, which this node already has"
    )]
    TooOld { height: Height, from: Height },
    #[error("the trusted block is at height {trusted}, the snapshot is of height {height}")]
    TrustHeight { trusted: Height, height: Height },
    #[error("snapshot's block at height {height} is {found}, not the trusted {expected}")]
    TrustMismatch {
        height: Height,
        found: Hash,
        expected: Hash,
    },
}

impl Manifest {
    pub fn height(&self) -> Height {
        self.header.height
    }

    /// The root of the snapshot's state: the state after its block, as
    /// the header of the block after it names it.
    pub fn state_root(&self) -> Hash {
        self.next_header.state_root
    }

    /// The root of the receipts of the snapshot's block.
    pub fn receipts_root(&self) -> Hash {
        self.next_header.receipts_root
    }

    /// Total bytes of the chunks.
    pub fn state_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.bytes)).sum()
    }

    /// Identifies the snapshot: the same tree at the same block gives the
    /// same manifest on every node.
    pub fn id(&self) -> Hash {
        sha256(&palisade_types::encode(self))
    }

    /// The block after the snapshot's follows it and is decided by the set
    /// the snapshot's header names for it (so, once the snapshot's own
    /// certificate is trusted, so is the state root its header names).
    fn check_next_block(&self) -> Result<(), ManifestError> {
        let bad = |why: &str| Err(ManifestError::Inconsistent(why.into()));
        let next = &self.next_header;
        if Some(next.height) != self.header.height.next().ok()
            || next.chain_id != self.header.chain_id
        {
            return bad("the next header is not of the next height");
        }
        if next.last_block_hash != self.header.hash() {
            return bad("the next header does not follow the snapshot's block");
        }
        if next.validators_hash != self.next_validators.hash() {
            return bad("the next header's validator set is not the next validator set");
        }
        if self.next_commit.height != next.height || self.next_commit.block_hash != next.hash() {
            return bad("the next certificate is for another block");
        }
        self.next_commit
            .verify(&self.chain_id, &self.next_validators)
            .map_err(|e| ManifestError::Certificate(format!("of the next block: {e}")))?;
        Ok(())
    }

    /// Checks that this manifest is of `chain_id`/`genesis_hash`, is
    /// internally consistent, carries a certificate of +2/3 of its set,
    /// and that the set (or the block) is one `trust` accepts.
    pub fn check(
        &self,
        chain_id: &ChainId,
        genesis_hash: Hash,
        trust: &Trust,
    ) -> Result<(), ManifestError> {
        if self.format != FORMAT {
            return Err(ManifestError::Format(self.format));
        }
        if &self.chain_id != chain_id || &self.header.chain_id != chain_id {
            return Err(ManifestError::Chain {
                found: self.header.chain_id.to_string(),
                expected: chain_id.to_string(),
            });
        }
        if self.genesis_hash != genesis_hash {
            return Err(ManifestError::Genesis {
                found: self.genesis_hash,
                expected: genesis_hash,
            });
        }
        let bad = |why: &str| Err(ManifestError::Inconsistent(why.into()));
        let h = self.header.height;
        if h == Height::GENESIS {
            return bad("a snapshot is of a block, not of genesis");
        }
        if self.commit.height != h || self.commit.block_hash != self.header.hash() {
            return bad("the certificate is for another block");
        }
        if self.validators.hash() != self.header.validators_hash {
            return bad("the validator set is not the header's");
        }
        if self.next_validators.hash() != self.header.next_validators_hash {
            return bad("the next validator set is not the header's");
        }
        self.check_next_block()?;
        if self
            .chunks
            .iter()
            .any(|c| c.bytes == 0 || c.bytes as usize > super::chunks::MAX_CHUNK_BYTES)
        {
            return bad("a chunk's size is out of range");
        }
        if self.chunks.is_empty() != (self.state_root() == palisade_runtime::smt::EMPTY) {
            return bad("chunks and state root disagree");
        }
        if h < trust.from {
            return Err(ManifestError::TooOld {
                height: h,
                from: trust.from,
            });
        }
        self.commit
            .verify(chain_id, &self.validators)
            .map_err(|e| ManifestError::Certificate(e.to_string()))?;
        match trust.block {
            Some((th, expected)) if th == h => {
                let found = self.header.hash();
                if found != expected {
                    return Err(ManifestError::TrustMismatch {
                        height: h,
                        found,
                        expected,
                    });
                }
                Ok(())
            }
            Some((trusted, _)) => Err(ManifestError::TrustHeight { trusted, height: h }),
            None if self.validators.hash() == trust.set_at(h).hash() => Ok(()),
            None => Err(ManifestError::Untrusted { height: h }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_types::{Keypair, Round, Timestamp, Validator};

    fn keys() -> Vec<Keypair> {
        (1..=4).map(|n| Keypair::from_seed([n; 32])).collect()
    }

    fn set() -> ValidatorSet {
        let members = keys()
            .iter()
            .map(|k| Validator {
                public_key: k.public_key(),
                power: 1,
            })
            .collect();
        ValidatorSet::new(members).unwrap()
    }

    fn chain() -> ChainId {
        ChainId::new("manifest-test").unwrap()
    }

    fn header(height: u64, last_block_hash: Hash, state_root: Hash) -> BlockHeader {
        BlockHeader {
            chain_id: chain(),
            height: Height(height),
            time: Timestamp(height),
            last_block_hash,
            tx_root: Hash::ZERO,
            state_root,
            receipts_root: Hash::ZERO,
            validators_hash: set().hash(),
            next_validators_hash: set().hash(),
            proposer: keys()[0].public_key(),
            last_commit_hash: Hash::ZERO,
        }
    }

    /// Precommits of the first `signers` validators for `hd`.
    fn commit(hd: &BlockHeader, signers: usize) -> CommitCertificate {
        let keys: Vec<Keypair> = keys().into_iter().take(signers).collect();
        CommitCertificate::signed(&chain(), hd.height, Round(0), hd.hash(), &keys).unwrap()
    }

    /// A snapshot of height 5 of an empty state: block 6 names its root.
    fn manifest() -> Manifest {
        let h5 = header(5, Hash([1; 32]), Hash([2; 32]));
        let h6 = header(6, h5.hash(), palisade_runtime::smt::EMPTY);
        Manifest {
            format: FORMAT,
            chain_id: chain(),
            genesis_hash: Hash([9; 32]),
            commit: commit(&h5, 4),
            header: h5,
            validators: set(),
            next_validators: set(),
            next_commit: commit(&h6, 4),
            next_header: h6,
            chunks: BoundedVec::default(),
        }
    }

    fn check(m: &Manifest) -> Result<(), ManifestError> {
        m.check(&chain(), Hash([9; 32]), &Trust::genesis(set(), None))
    }

    #[test]
    fn the_next_block_certifies_the_state_root() {
        let m = manifest();
        assert_eq!(check(&m), Ok(()));
        assert_eq!(m.state_root(), palisade_runtime::smt::EMPTY);

        // Another state root in the next header: its certificate no longer
        // names it.
        let mut other = manifest();
        other.next_header.state_root = Hash([3; 32]);
        assert_eq!(
            check(&other),
            Err(ManifestError::Inconsistent(
                "the next certificate is for another block".into()
            ))
        );

        // Re-signed by too few validators.
        let mut weak = manifest();
        weak.next_commit = commit(&weak.next_header, 2);
        assert!(matches!(check(&weak), Err(ManifestError::Certificate(_))));

        // A next header that does not follow the snapshot's block, or is
        // not the next height, even when correctly certified.
        for tamper in [
            (|h: &mut BlockHeader| h.last_block_hash = Hash([4; 32])) as fn(&mut BlockHeader),
            |h: &mut BlockHeader| h.height = Height(7),
        ] {
            let mut m = manifest();
            tamper(&mut m.next_header);
            m.next_commit = commit(&m.next_header, 4);
            match check(&m) {
                Err(ManifestError::Inconsistent(why)) => {
                    assert!(why.contains("next header"), "{why}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
