//! A snapshot as one file:
//!
//! ```text
//! "PALSNAP1" | chunk 0 | chunk 1 | ... | manifest | manifest length (u32 LE) | "PALSNAP1"
//! ```
//!
//! The chunks come first so a snapshot is written in one pass (their
//! hashes go into the manifest, written last); a reader finds the manifest
//! from the end, and chunk i at 8 + the lengths of the chunks before it.
//! A file is written as `NAME.partial`, synced, and renamed, so a file under
//! its final name is always whole.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use palisade_runtime::StateStore;
use palisade_types::{decode, encode, sha256, BoundedVec, Wire};

use super::chunks::{write_chunks, ChunkError, Counts};
use super::manifest::{ChunkInfo, Manifest, MAX_CHUNKS};

pub const MAGIC: &[u8; 8] = b"PALSNAP1";
const TRAILER_BYTES: u64 = 4 + 8;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Palisade snapshot: {why}")]
    NotASnapshot { path: PathBuf, why: String },
    #[error("{path}: {source}")]
    Chunks { path: PathBuf, source: ChunkError },
    #[error("{path}: more than {MAX_CHUNKS} chunks of state")]
    TooManyChunks { path: PathBuf },
}

/// An open snapshot file.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: File,
    manifest: Manifest,
    /// Where each chunk starts.
    offsets: Vec<u64>,
}

impl SnapshotFile {
    /// Opens `path` and reads its manifest (bounded, checked against the
    /// file's length); the chunks are read on demand.
    pub fn open(path: &Path) -> Result<SnapshotFile, FileError> {
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let not = |why: String| FileError::NotASnapshot {
            path: path.to_path_buf(),
            why,
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < MAGIC.len() as u64 + TRAILER_BYTES {
            return Err(not(format!("{len} bytes is too short")));
        }
        let mut head = [0u8; 8];
        file.read_exact(&mut head).map_err(io)?;
        let mut trailer = [0u8; TRAILER_BYTES as usize];
        file.seek(SeekFrom::End(-(TRAILER_BYTES as i64)))
            .map_err(io)?;
        file.read_exact(&mut trailer).map_err(io)?;
        if &head != MAGIC || &trailer[4..] != MAGIC {
            return Err(not("no snapshot signature".into()));
        }
        let manifest_len = u64::from(u32::from_le_bytes([
            trailer[0], trailer[1], trailer[2], trailer[3],
        ]));
        if manifest_len > Manifest::MAX_ENCODED_LEN as u64 || manifest_len + TRAILER_BYTES + 8 > len
        {
            return Err(not(format!("manifest length {manifest_len} out of range")));
        }
        let manifest_at = len - TRAILER_BYTES - manifest_len;
        let mut raw = vec![0u8; manifest_len as usize];
        file.read_exact_at(&mut raw, manifest_at).map_err(io)?;
        let manifest: Manifest = decode(&raw).map_err(|e| not(e.to_string()))?;
        let mut offsets = Vec::with_capacity(manifest.chunks.len());
        let mut at = MAGIC.len() as u64;
        for c in manifest.chunks.iter() {
            offsets.push(at);
            at += u64::from(c.bytes);
        }
        if at != manifest_at {
            return Err(not(format!(
                "the chunks take {} bytes, the file has {}",
                at - 8,
                manifest_at - 8
            )));
        }
        Ok(SnapshotFile {
            path: path.to_path_buf(),
            file,
            manifest,
            offsets,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Chunk `i`'s bytes, checked against the manifest's hash of it.
    pub fn chunk(&self, i: usize) -> Result<Vec<u8>, FileError> {
        let (Some(info), Some(at)) = (self.manifest.chunks.get(i), self.offsets.get(i)) else {
            return Err(FileError::NotASnapshot {
                path: self.path.clone(),
                why: format!("no chunk {i}"),
            });
        };
        let mut buf = vec![0u8; info.bytes as usize];
        self.file
            .read_exact_at(&mut buf, *at)
            .map_err(|source| FileError::Io {
                path: self.path.clone(),
                source,
            })?;
        if sha256(&buf) != info.hash {
            return Err(FileError::NotASnapshot {
                path: self.path.clone(),
                why: format!("chunk {i} does not match its hash (damaged file)"),
            });
        }
        Ok(buf)
    }
}

/// Writes the snapshot of the tree under `base.state_root()` to
/// `path`: `base` is the manifest without its chunks. Returns the full
/// manifest and what the tree held.
pub fn write(
    store: &dyn StateStore,
    mut base: Manifest,
    path: &Path,
) -> Result<(Manifest, Counts), FileError> {
    let partial = partial_path(path);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| FileError::Io { path: p, source }
    };
    let result = (|| {
        let file = File::create(&partial).map_err(io(&partial))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC).map_err(io(&partial))?;
        let mut chunks = Vec::new();
        let counts = write_chunks(store, base.state_root(), |chunk| {
            chunks.push(ChunkInfo {
                bytes: chunk.len() as u32,
                hash: sha256(&chunk),
            });
            out.write_all(&chunk)
        })
        .map_err(|source| FileError::Chunks {
            path: path.to_path_buf(),
            source,
        })?;
        base.chunks = BoundedVec::new(chunks).map_err(|_| FileError::TooManyChunks {
            path: path.to_path_buf(),
        })?;
        let manifest = encode(&base);
        out.write_all(&manifest).map_err(io(&partial))?;
        out.write_all(&(manifest.len() as u32).to_le_bytes())
            .map_err(io(&partial))?;
        out.write_all(MAGIC).map_err(io(&partial))?;
        let file = out.into_inner().map_err(|e| io(&partial)(e.into_error()))?;
        file.sync_all().map_err(io(&partial))?;
        std::fs::rename(&partial, path).map_err(io(path))?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok((base, counts))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}
