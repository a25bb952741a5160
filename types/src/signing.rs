use borsh::BorshSerialize;

use crate::ChainId;

/// The kind of message a signature is for. Each kind has its own tag in the
/// signing bytes, so a signature over one kind never verifies as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Transaction,
    Vote,
    Proposal,
    /// A member's permit for one node to fetch one shared file for it
    /// from its peers (the node shows it to them).
    FileReadPermit,
    /// A member's permit to read (or, its publisher, to upload) a file's
    /// bytes at one node over HTTP: never shown to peers, so a peer that
    /// saw the other kind cannot use it there.
    FileAccessPermit,
}

impl Domain {
    pub const fn tag(self) -> &'static str {
        match self {
            Domain::Transaction => "palisade/tx/v1",
            Domain::Vote => "palisade/vote/v1",
            Domain::Proposal => "palisade/proposal/v1",
            Domain::FileReadPermit => "palisade/file-read-permit/v1",
            Domain::FileAccessPermit => "palisade/file-access-permit/v1",
        }
    }
}

/// The bytes an ed25519 signature covers:
/// `borsh(tag: string) || borsh(chain_id: string) || borsh(body)`.
/// Tag and chain id are length-prefixed, so no two (kind, chain, body)
/// triples share signing bytes.
pub fn signing_bytes<T: BorshSerialize>(domain: Domain, chain_id: &ChainId, body: &T) -> Vec<u8> {
    let mut out = crate::encode(&domain.tag());
    out.extend_from_slice(&crate::encode(chain_id));
    out.extend_from_slice(&crate::encode(body));
    out
}
