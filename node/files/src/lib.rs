//! Files shared among a network's members: what identifies a file and how
//! a piece of it is checked before a byte of it is kept.
//!
//! A file is named by its BLAKE3 hash (its *root*, [`FileRoot`]) and its
//! size, both recorded on chain when it is published. A holder keeps, beside
//! the bytes, an *outboard*: the BLAKE3 tree's inner hashes down to groups
//! of 16 KiB ([`CHUNK_GROUP`]). A file travels in 1 MiB pieces
//! ([`PIECE_BYTES`]); a piece is sent as its bytes interleaved with the tree
//! hashes that link them to the root ([`encode_piece`], the bao encoding of
//! that range), and the receiver checks it group by group against the root
//! it already trusts ([`verify_piece`]), so a corrupt or forged piece is
//! refused at its first bad group and nothing unverified is ever written.
//! This is the scheme of BitTorrent v2 and iroh-blobs; the tree code is the
//! `bao-tree` crate's.
//!
//! A download in progress is a [`PartialFile`]: verified pieces written in
//! place with a durable bitfield, so it resumes after a crash. The network
//! protocol and swarming build on these.

mod partial;
mod permit;
mod piece;
mod store;
pub mod swarm;
pub mod wire;

pub use partial::PartialFile;
pub use permit::{
    PermitError, Purpose, ReadPermit, SignedReadPermit, MAX_PEER_ID_BYTES, MAX_PERMIT_MS,
};
pub use piece::{encode_piece, piece_count, piece_range, verify_piece, Prepared};
pub use store::{BlobStore, Held, Stored};

use bao_tree::BlockSize;

/// Chunk groups of 16 KiB: the unit a piece is verified in, and the
/// granularity of the outboard (64 bytes of hashes per 16 KiB of data).
pub const CHUNK_GROUP: BlockSize = BlockSize::from_chunk_log(4);
/// Bytes of one piece (the last piece of a file may be shorter).
pub const PIECE_BYTES: u64 = 1 << 20;
/// Largest file: 1 TiB (a million pieces).
pub const MAX_FILE_BYTES: u64 = 1 << 40;
/// Most bytes an encoded piece may take: the piece, and at most 64 bytes of
/// hashes per 16 KiB group plus a path of 64-byte pairs to the root.
pub const MAX_ENCODED_PIECE_BYTES: usize =
    PIECE_BYTES as usize + (PIECE_BYTES as usize / (16 * 1024)) * 64 + 64 * 64;

/// A file's BLAKE3 hash: its name on chain and in the network.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
pub struct FileRoot(pub [u8; 32]);

impl FileRoot {
    /// The root of `data` held in memory (the BLAKE3 hash of its bytes).
    pub fn of(data: &[u8]) -> FileRoot {
        FileRoot(*blake3::hash(data).as_bytes())
    }

    /// The root and size of the bytes `from` yields, read to its end.
    pub fn of_reader(mut from: impl std::io::Read) -> std::io::Result<(FileRoot, u64)> {
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
        }
        Ok((FileRoot(*h.finalize().as_bytes()), size))
    }

    pub(crate) fn hash(&self) -> blake3::Hash {
        blake3::Hash::from_bytes(self.0)
    }
}

impl std::fmt::Display for FileRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for FileRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileRoot({self})")
    }
}

impl std::str::FromStr for FileRoot {
    type Err = FileError;

    fn from_str(s: &str) -> Result<FileRoot, FileError> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out)
            .map_err(|_| FileError::BadRoot(s.chars().take(80).collect()))?;
        Ok(FileRoot(out))
    }
}

impl serde::Serialize for FileRoot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for FileRoot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a file or piece was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("a file root is 0x and 64 hex digits, not {0:?}")]
    BadRoot(String),
    #[error("a file is at most {MAX_FILE_BYTES} bytes; this one is {0}")]
    TooLarge(u64),
    #[error("piece {piece} is past the end of a {size}-byte file ({count} pieces)")]
    NoSuchPiece { piece: u64, size: u64, count: u64 },
    #[error("piece {piece} does not verify against the root: {why}")]
    Corrupt { piece: u64, why: String },
    #[error("piece {piece}: {extra} bytes after its encoding")]
    TrailingBytes { piece: u64, extra: usize },
    #[error(
        "piece {piece}: an encoded piece is at most {MAX_ENCODED_PIECE_BYTES} bytes, got {got}"
    )]
    EncodingTooLarge { piece: u64, got: usize },
    #[error("piece {piece} is not held here")]
    NotHeld { piece: u64 },
    #[error("the download is incomplete: {missing} pieces missing, the first {first}")]
    Incomplete { missing: u64, first: u64 },
    #[error("file IO: {0}")]
    Io(#[from] std::io::Error),
}
