//! Pieces: a file's outboard, a piece's bao encoding, and its verification.

use std::ops::Range;

use bao_tree::io::outboard::PreOrderMemOutboard;
use bao_tree::io::sync::{
    encode_ranges_validated, DecodeResponseIter, Outboard, OutboardMut, ReadAt,
};
use bao_tree::io::BaoContentItem;
use bao_tree::{BaoTree, ChunkNum, ChunkRanges};

use crate::{
    FileError, FileRoot, CHUNK_GROUP, MAX_ENCODED_PIECE_BYTES, MAX_FILE_BYTES, PIECE_BYTES,
};

/// A file ready to serve: its root, its size and its outboard (the tree's
/// hashes down to 16 KiB groups, about 0.4% of the file).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub root: FileRoot,
    pub size: u64,
    outboard: PreOrderMemOutboard,
}

impl Prepared {
    /// Hashes `data` (the whole file) and builds its outboard.
    pub fn of(data: &[u8]) -> Result<Prepared, FileError> {
        let size = data.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(FileError::TooLarge(size));
        }
        let outboard = PreOrderMemOutboard::create(data, CHUNK_GROUP);
        Ok(Prepared {
            root: FileRoot(*outboard.root.as_bytes()),
            size,
            outboard,
        })
    }

    /// The outboard's bytes (what a holder stores beside the file).
    pub fn outboard(&self) -> &[u8] {
        &self.outboard.data
    }
}

/// How many pieces a file of `size` bytes has (an empty file has one,
/// empty, piece: its root still has to be checked).
pub fn piece_count(size: u64) -> u64 {
    size.div_ceil(PIECE_BYTES).max(1)
}

/// The bytes of piece `piece` of a file of `size` bytes.
pub fn piece_range(size: u64, piece: u64) -> Result<Range<u64>, FileError> {
    let count = piece_count(size);
    if piece >= count || size > MAX_FILE_BYTES {
        return Err(FileError::NoSuchPiece { piece, size, count });
    }
    let start = piece * PIECE_BYTES;
    Ok(start..(start + PIECE_BYTES).min(size))
}

/// The 1 KiB BLAKE3 chunks of piece `piece` (pieces are whole groups).
fn chunks(size: u64, piece: u64) -> Result<ChunkRanges, FileError> {
    let r = piece_range(size, piece)?;
    Ok(ChunkRanges::from(
        ChunkNum::full_chunks(r.start)..ChunkNum::chunks(r.end).max(ChunkNum(1)),
    ))
}

/// Piece `piece` of `file` (whose bytes are `data`) in its verifiable
/// encoding, appended to `out`. The bytes are checked against the outboard
/// as they are read, so a holder whose copy rotted on disk sends an error,
/// not bad data.
pub fn encode_piece(
    file: &Prepared,
    data: &[u8],
    piece: u64,
    out: &mut Vec<u8>,
) -> Result<(), FileError> {
    encode_piece_from(data, &file.outboard, file.size, piece, out)
}

/// Piece `piece` of a `size`-byte file whose bytes are read from `data`
/// and whose tree hashes from `outboard`, appended to `out` (checked as
/// [`encode_piece`] does).
pub(crate) fn encode_piece_from(
    data: impl ReadAt,
    outboard: impl Outboard,
    size: u64,
    piece: u64,
    out: &mut Vec<u8>,
) -> Result<(), FileError> {
    let ranges = chunks(size, piece)?;
    encode_ranges_validated(data, outboard, &ranges, out).map_err(|e| FileError::Corrupt {
        piece,
        why: format!("the local copy: {e}"),
    })
}

/// Checks `encoded`, said to be piece `piece` of the file with root `root`
/// and `size` bytes (both from the chain's record), group by group against
/// the root, and returns the piece's bytes. Nothing is returned unless
/// every byte verified and nothing follows the encoding.
pub fn verify_piece(
    root: &FileRoot,
    size: u64,
    piece: u64,
    encoded: &[u8],
) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    verify_piece_saving(root, size, piece, encoded, Discard, &mut bytes)?;
    Ok(bytes)
}

/// Keeps no tree hashes.
struct Discard;

impl OutboardMut for Discard {
    fn save(
        &mut self,
        _: bao_tree::TreeNode,
        _: &(blake3::Hash, blake3::Hash),
    ) -> std::io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`verify_piece`] into `bytes` (cleared first; a buffer reused across
/// pieces), saving each pair of tree hashes that verified into `outboard`
/// (so a partial holder can later encode the pieces it holds).
pub(crate) fn verify_piece_saving(
    root: &FileRoot,
    size: u64,
    piece: u64,
    encoded: &[u8],
    mut outboard: impl OutboardMut,
    bytes: &mut Vec<u8>,
) -> Result<(), FileError> {
    if encoded.len() > MAX_ENCODED_PIECE_BYTES {
        return Err(FileError::EncodingTooLarge {
            piece,
            got: encoded.len(),
        });
    }
    let range = piece_range(size, piece)?;
    let ranges = chunks(size, piece)?;
    let tree = BaoTree::new(size, CHUNK_GROUP);
    let mut reader = encoded;
    bytes.clear();
    bytes.reserve((range.end - range.start) as usize);
    for item in DecodeResponseIter::new(root.hash(), tree, &mut reader, &ranges) {
        match item {
            Ok(BaoContentItem::Leaf(leaf)) => {
                if leaf.offset != range.start + bytes.len() as u64 {
                    return Err(FileError::Corrupt {
                        piece,
                        why: format!("a group at byte {} out of order", leaf.offset),
                    });
                }
                bytes.extend_from_slice(&leaf.data);
            }
            Ok(BaoContentItem::Parent(p)) => outboard.save(p.node, &p.pair)?,
            Err(e) => {
                return Err(FileError::Corrupt {
                    piece,
                    why: e.to_string(),
                })
            }
        }
    }
    if !reader.is_empty() {
        return Err(FileError::TrailingBytes {
            piece,
            extra: reader.len(),
        });
    }
    if bytes.len() as u64 != range.end - range.start {
        return Err(FileError::Corrupt {
            piece,
            why: format!(
                "{} bytes verified of {}",
                bytes.len(),
                range.end - range.start
            ),
        });
    }
    Ok(())
}
