//! The blob protocol, `/palisade/blob/1`: a request-response protocol on
//! the node's libp2p swarm, one borsh frame each way, every one decoded
//! with a size bound and no trailing bytes (see `docs/files.md`, whose
//! vectors the tests check).
//!
//! Two questions: which pieces of a file does a peer hold, and send one
//! piece of it. A piece request carries the reader's permit; the answer is
//! the piece's verifiable encoding or a refusal that says why. One piece
//! per request keeps each answer small and lets a downloader spread its
//! requests over peers and drop a slow one at piece granularity.

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{decode_with_limit, encode, BoundedBytes, BoundedString, DecodeError};

use crate::{FileRoot, SignedReadPermit, MAX_ENCODED_PIECE_BYTES, MAX_FILE_BYTES, PIECE_BYTES};

/// The protocol name on the swarm.
pub const BLOB_PROTOCOL: &str = "/palisade/blob/1";
/// Bytes of the largest piece bitfield (a 1 TiB file's million pieces).
pub const MAX_BITFIELD_BYTES: usize = (MAX_FILE_BYTES / PIECE_BYTES / 8) as usize;
/// Largest request: a piece request with its permit is under 300 bytes.
pub const MAX_BLOB_REQUEST_BYTES: usize = 512;
/// Largest response: an encoded piece and its framing.
pub const MAX_BLOB_RESPONSE_BYTES: usize = MAX_ENCODED_PIECE_BYTES + 64;
/// Longest refusal message.
pub const MAX_REFUSAL_TEXT: usize = 256;

/// A request for a file's pieces.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BlobRequest {
    /// Which pieces of `root` do you hold?
    Have { root: FileRoot },
    /// Send piece `piece` of `root`, for the reader whose permit this is.
    Piece {
        root: FileRoot,
        piece: u64,
        permit: SignedReadPermit,
    },
}

/// What a peer holds of a file.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Holding {
    Nothing,
    /// Some pieces: bit `i` (the lowest bit of byte `i / 8` first) set for
    /// each piece `i` held.
    Partial {
        bits: BoundedBytes<MAX_BITFIELD_BYTES>,
    },
    Complete,
}

/// Why a peer will not send a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Refusal {
    /// No file with this root is on record (at the peer's latest height).
    Unknown = 0,
    /// The file was unpublished: no honest node serves it.
    Withdrawn = 1,
    /// The permit's account may not read the file.
    NotAReader = 2,
    /// The permit is void: another file or peer, expired, or a bad signature.
    BadPermit = 3,
    /// The peer does not hold that piece.
    NotHeld = 4,
    /// The peer is serving all it may now; ask again later or elsewhere.
    Busy = 5,
}

/// The answer to a [`BlobRequest`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BlobResponse {
    Have {
        holding: Holding,
    },
    /// The piece's bao encoding (see [`crate::encode_piece`]).
    Piece {
        encoded: BoundedBytes<MAX_ENCODED_PIECE_BYTES>,
    },
    Refused {
        reason: Refusal,
        message: BoundedString<MAX_REFUSAL_TEXT>,
    },
}

impl BlobRequest {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<BlobRequest, DecodeError> {
        decode_with_limit(bytes, "blob request", MAX_BLOB_REQUEST_BYTES)
    }
}

impl BlobResponse {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<BlobResponse, DecodeError> {
        decode_with_limit(bytes, "blob response", MAX_BLOB_RESPONSE_BYTES)
    }

    /// The bytes before a piece's encoding in a `Piece` answer: the tag
    /// and the encoding's length.
    pub fn piece_header(len: usize) -> [u8; 5] {
        let mut h = [1u8, 0, 0, 0, 0];
        h[1..].copy_from_slice(&(len as u32).to_le_bytes());
        h
    }

    /// [`decode`](BlobResponse::decode) of a buffer it may keep: a piece
    /// keeps the buffer's bytes instead of a copy of them.
    pub fn decode_owned(mut bytes: Vec<u8>) -> Result<BlobResponse, DecodeError> {
        if bytes.len() > MAX_BLOB_RESPONSE_BYTES || bytes.first() != Some(&1) {
            return BlobResponse::decode(&bytes);
        }
        let header = bytes.get(..5).ok_or_else(|| DecodeError::Malformed {
            what: "blob response",
            reason: "a piece answer shorter than its header".into(),
        })?;
        let mut n = [0u8; 4];
        n.copy_from_slice(&header[1..5]);
        let len = u32::from_le_bytes(n) as usize;
        if len > MAX_ENCODED_PIECE_BYTES || len + 5 != bytes.len() {
            // Too long, short or with bytes after it: the borsh decoder
            // says which.
            return BlobResponse::decode(&bytes);
        }
        bytes.drain(..5);
        let encoded = BoundedBytes::new(bytes).map_err(|n| DecodeError::Malformed {
            what: "blob response",
            reason: format!("a piece of {n} bytes"),
        })?;
        Ok(BlobResponse::Piece { encoded })
    }

    /// A refusal, its message cut to the bound.
    pub fn refused(reason: Refusal, message: &str) -> BlobResponse {
        let mut end = message.len().min(MAX_REFUSAL_TEXT);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        BlobResponse::Refused {
            reason,
            message: BoundedString::new(&message[..end]).unwrap_or_default(),
        }
    }
}
