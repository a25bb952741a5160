//! Read permits: a member's signed word that one node may fetch one file
//! for it, until a time.
//!
//! A download carries a permit signed with the reading account's key,
//! naming the file's root, the libp2p peer id of the node fetching, and an
//! expiry. A serving node checks, before sending a byte, that the
//! signature is the account's, that the permit names the peer that asks
//! (so a permit one node saw cannot be replayed by another) and that it
//! has not expired, and then that the account may read the file at its
//! latest committed height (the chain's record, not checked here).

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{signing_bytes, Domain};
use palisade_types::{Address, BoundedBytes, ChainId, Keypair, Signature};

use crate::FileRoot;

/// Bytes of the longest libp2p peer id (an identity-hashed public key).
pub const MAX_PEER_ID_BYTES: usize = 64;
/// Longest a permit may be valid for from the time it is checked: a
/// permit is for one download, not a standing grant.
pub const MAX_PERMIT_MS: u64 = 24 * 60 * 60 * 1000;

/// What the reading account signs.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ReadPermit {
    pub root: [u8; 32],
    /// The fetching node's libp2p peer id, as bytes.
    pub peer: BoundedBytes<MAX_PEER_ID_BYTES>,
    /// Unix milliseconds after which the permit is void.
    pub expires_ms: u64,
    /// The account it is issued by (its ed25519 public key).
    pub reader: Address,
}

/// What a permit is for: its signature's domain, so a permit signed for one
/// use never passes as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Fetching from peers: the node it names shows it to the peers it
    /// downloads from (`palisade/file-read-permit/v1`).
    Fetch,
    /// Reading the bytes from (or, the publisher, uploading them to) the
    /// node it names over HTTP (`palisade/file-access-permit/v1`); a peer
    /// that saw a fetch permit cannot read the file at that node with it.
    Access,
}

impl Purpose {
    fn domain(self) -> Domain {
        match self {
            Purpose::Fetch => Domain::FileReadPermit,
            Purpose::Access => Domain::FileAccessPermit,
        }
    }
}

/// A permit with the reader's signature over
/// `signing_bytes(domain of its purpose, chain_id, permit)`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedReadPermit {
    pub permit: ReadPermit,
    pub signature: Signature,
}

/// Why a permit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermitError {
    #[error("the permit is for another file")]
    OtherFile,
    #[error("the permit names another node: a permit is good only for the node it was issued to")]
    OtherPeer,
    #[error("the permit expired at {expires_ms} (now {now_ms})")]
    Expired { expires_ms: u64, now_ms: u64 },
    #[error("the permit is valid for more than {MAX_PERMIT_MS} ms from now")]
    TooLong,
    #[error("the permit's signature is not its reader's for this use (a permit to fetch from peers is not one to read at a node, and the other way round)")]
    BadSignature,
    #[error("a peer id is at most {MAX_PEER_ID_BYTES} bytes")]
    PeerIdTooLong,
}

impl ReadPermit {
    pub fn new(
        root: FileRoot,
        peer: &[u8],
        expires_ms: u64,
        reader: Address,
    ) -> Result<ReadPermit, PermitError> {
        Ok(ReadPermit {
            root: root.0,
            peer: BoundedBytes::new(peer.to_vec()).map_err(|_| PermitError::PeerIdTooLong)?,
            expires_ms,
            reader,
        })
    }

    pub fn signing_bytes(&self, chain_id: &ChainId, purpose: Purpose) -> Vec<u8> {
        signing_bytes(purpose.domain(), chain_id, self)
    }

    /// Signed by `key`, which must be the reader's, for `purpose`.
    pub fn sign(self, chain_id: &ChainId, key: &Keypair, purpose: Purpose) -> SignedReadPermit {
        let signature = key.sign(&self.signing_bytes(chain_id, purpose));
        SignedReadPermit {
            permit: self,
            signature,
        }
    }
}

impl SignedReadPermit {
    /// Checks the permit for `purpose`, for a request for `root` from (or
    /// at) `peer` at `now_ms`; the account it speaks for, whose right to
    /// read the file the caller then checks against the chain.
    pub fn check(
        &self,
        chain_id: &ChainId,
        purpose: Purpose,
        root: &FileRoot,
        peer: &[u8],
        now_ms: u64,
    ) -> Result<Address, PermitError> {
        let p = &self.permit;
        if p.root != root.0 {
            return Err(PermitError::OtherFile);
        }
        if &p.peer[..] != peer {
            return Err(PermitError::OtherPeer);
        }
        if p.expires_ms <= now_ms {
            return Err(PermitError::Expired {
                expires_ms: p.expires_ms,
                now_ms,
            });
        }
        if p.expires_ms - now_ms > MAX_PERMIT_MS {
            return Err(PermitError::TooLong);
        }
        p.reader
            .public_key()
            .verify(&p.signing_bytes(chain_id, purpose), &self.signature)
            .map_err(|_| PermitError::BadSignature)?;
        Ok(p.reader)
    }
}
