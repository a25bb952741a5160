//! A download in progress: verified pieces written into a partial file,
//! with a bitfield of the pieces it holds, so a download resumes after a
//! crash or restart and fetches only what is missing. The tree hashes
//! that arrive with each piece go into the file's outboard, so the pieces
//! held can be served to other peers before the download completes.
//!
//! Crash safety: a piece is verified against the root before a byte of it
//! is written; its hashes and bytes are synced to disk before its bit is
//! set, and the bits are synced before the piece counts as held. A crash
//! at any point leaves at worst a piece on disk whose bit is not set (it
//! is fetched again), never a bit set for bytes not on disk. Syncing is
//! batched ([`PartialFile::flush`]): pieces written since the last flush
//! become held together, three syncs for the batch instead of three per
//! piece (at 1 MiB pieces, per-piece syncs held a download to about 160
//! MB/s).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::BaoTree;

use crate::piece::verify_piece_saving;
use crate::{piece_count, piece_range, FileError, FileRoot, CHUNK_GROUP, MAX_FILE_BYTES};

/// A partially downloaded file: `<root>.partial` (the bytes, at their
/// offsets), `<root>.obao` (its outboard, filled in as pieces arrive) and
/// `<root>.pieces` (a bit per piece, piece 0 the lowest bit of byte 0) in
/// one directory.
#[derive(Debug)]
pub struct PartialFile {
    root: FileRoot,
    size: u64,
    data_path: PathBuf,
    data: File,
    outboard: PreOrderOutboard<File>,
    bits_path: PathBuf,
    bits_file: File,
    bits: Vec<u8>,
    /// Written and verified, not yet synced: held after the next flush.
    pending: Vec<u64>,
    /// A piece's verified bytes, reused from piece to piece.
    scratch: Vec<u8>,
}

pub(crate) fn hex_name(root: &FileRoot) -> String {
    hex::encode(root.0)
}

/// Opens (creating it if needed) the outboard file of a `size`-byte file
/// with root `root` at `path`, at its full length.
pub(crate) fn outboard_file(
    path: &Path,
    root: &FileRoot,
    size: u64,
    fresh: bool,
) -> Result<PreOrderOutboard<File>, FileError> {
    let tree = BaoTree::new(size, CHUNK_GROUP);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(fresh)
        .open(path)?;
    file.set_len(tree.outboard_size())?;
    Ok(PreOrderOutboard {
        root: root.hash(),
        tree,
        data: file,
    })
}

impl PartialFile {
    /// Opens the download of `root` (`size` bytes) in `dir`, resuming one
    /// already there.
    pub fn open(dir: &Path, root: FileRoot, size: u64) -> Result<PartialFile, FileError> {
        if size > MAX_FILE_BYTES {
            return Err(FileError::TooLarge(size));
        }
        std::fs::create_dir_all(dir)?;
        let name = hex_name(&root);
        let data_path = dir.join(format!("{name}.partial"));
        let bits_path = dir.join(format!("{name}.pieces"));
        // Piece bits without the bytes they describe are worth nothing.
        let fresh = !data_path.exists();
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path)?;
        data.set_len(size)?;
        let outboard = outboard_file(&dir.join(format!("{name}.obao")), &root, size, fresh)?;
        let mut bits_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&bits_path)?;
        let want = piece_count(size).div_ceil(8) as usize;
        let mut bits = Vec::with_capacity(want);
        bits_file.read_to_end(&mut bits)?;
        let count = piece_count(size);
        // Bits of the wrong length (a crash tore their first write) or set
        // past the last piece are not trusted: the download starts over
        // rather than staying stuck on them.
        let torn = bits.len() != want
            || (count..(bits.len() as u64 * 8)).any(|i| {
                bits.get((i / 8) as usize)
                    .is_some_and(|b| b & (1 << (i % 8)) != 0)
            });
        if fresh || torn {
            bits = vec![0; want];
            bits_file.set_len(0)?;
            bits_file.seek(SeekFrom::Start(0))?;
            bits_file.write_all(&bits)?;
            bits_file.sync_data()?;
        }
        let p = PartialFile {
            root,
            size,
            data_path,
            data,
            outboard,
            bits_path,
            bits_file,
            bits,
            pending: Vec::new(),
            scratch: Vec::new(),
        };
        Ok(p)
    }

    pub fn root(&self) -> FileRoot {
        self.root
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether piece `piece` is held (verified and on disk).
    pub fn has(&self, piece: u64) -> bool {
        let byte = (piece / 8) as usize;
        self.bits
            .get(byte)
            .is_some_and(|b| b & (1 << (piece % 8)) != 0)
    }

    /// The pieces not held yet, in order.
    pub fn missing(&self) -> Vec<u64> {
        (0..piece_count(self.size))
            .filter(|p| !self.has(*p))
            .collect()
    }

    /// The piece bits (piece 0 the lowest bit of byte 0).
    pub fn bits(&self) -> &[u8] {
        &self.bits
    }

    /// How many pieces are held.
    pub fn held(&self) -> u64 {
        self.bits.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    pub fn is_complete(&self) -> bool {
        (0..piece_count(self.size)).all(|p| self.has(p))
    }

    /// Verifies `encoded` as piece `piece` and, if it verifies, writes it;
    /// it is held once [`flush`](PartialFile::flush) has made it durable.
    /// A piece that does not verify changes nothing on disk.
    pub fn write_piece(&mut self, piece: u64, encoded: &[u8]) -> Result<(), FileError> {
        if self.has(piece) || self.pending.contains(&piece) {
            return crate::verify_piece(&self.root, self.size, piece, encoded).map(|_| ());
        }
        verify_piece_saving(
            &self.root,
            self.size,
            piece,
            encoded,
            &mut self.outboard,
            &mut self.scratch,
        )?;
        let range = piece_range(self.size, piece)?;
        self.data.seek(SeekFrom::Start(range.start))?;
        self.data.write_all(&self.scratch)?;
        self.pending.push(piece);
        Ok(())
    }

    /// Pieces written and not yet flushed.
    pub fn unflushed(&self) -> usize {
        self.pending.len()
    }

    /// Makes the pieces written since the last flush durable and held:
    /// their hashes and bytes synced, then their bits written and synced.
    pub fn flush(&mut self) -> Result<(), FileError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.outboard.data.sync_data()?;
        self.data.sync_data()?;
        let mut bits = self.bits.clone();
        for piece in &self.pending {
            if let Some(b) = bits.get_mut((*piece / 8) as usize) {
                *b |= 1 << (piece % 8);
            }
        }
        self.bits_file.seek(SeekFrom::Start(0))?;
        self.bits_file.write_all(&bits)?;
        self.bits_file.sync_data()?;
        self.bits = bits;
        // The pieces are on disk: their pages need not stay cached. A
        // download of a big file would otherwise fill the page cache with
        // pages nobody reads soon, and every new piece would need fresh
        // memory (on this project's VMs, the slowest part of a download).
        for piece in self.pending.drain(..) {
            if let Ok(r) = piece_range(self.size, piece) {
                let _ = rustix::fs::fadvise(
                    &self.data,
                    r.start,
                    std::num::NonZeroU64::new(r.end - r.start),
                    rustix::fs::Advice::DontNeed,
                );
            }
        }
        Ok(())
    }

    /// Moves the complete file to `dir/<root>` and removes its piece bits;
    /// an incomplete one stays as it is (and says what is missing).
    pub fn finish(mut self) -> Result<PathBuf, FileError> {
        self.flush()?;
        let missing = self.missing();
        if let Some(first) = missing.first() {
            return Err(FileError::Incomplete {
                missing: missing.len() as u64,
                first: *first,
            });
        }
        self.data.sync_all()?;
        let dir = self
            .data_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let done = dir.join(hex_name(&self.root));
        std::fs::rename(&self.data_path, &done)?;
        // The rename is durable before the bits go: a crash in between
        // leaves a complete file and stale bits, never a lost file.
        File::open(&dir)?.sync_all()?;
        std::fs::remove_file(&self.bits_path)?;
        Ok(done)
    }
}

impl Drop for PartialFile {
    /// A download put away (not one a crash ends) keeps what it wrote.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
