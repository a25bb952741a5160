//! A node's files on disk (`data/blobs/`): complete files with their
//! outboards, downloads in progress, and the imports that add files.
//!
//! Layout, all in one directory, named by the root's 64 hex digits:
//! `<root>` a complete file, `<root>.obao` its outboard (kept for complete
//! and partial files alike), `<root>.partial` and `<root>.pieces` a
//! download in progress ([`PartialFile`]). A complete file appears under
//! its name only once its bytes and outboard are on disk (written under
//! temporary names, synced, then renamed), so a name without a suffix is
//! always a whole, verified file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::BaoTree;

use crate::partial::hex_name;
use crate::piece::encode_piece_from;
use crate::{piece_count, FileError, FileRoot, PartialFile, CHUNK_GROUP, MAX_FILE_BYTES};

/// What a store holds of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Nothing,
    /// A download in progress: the bits of the pieces held, and how many.
    Partial {
        bits: Vec<u8>,
        pieces: u64,
    },
    Complete,
}

/// One file in the store, as [`BlobStore::list`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub root: FileRoot,
    pub complete: bool,
    /// Bytes on disk (the file, its outboard and piece bits).
    pub disk_bytes: u64,
}

/// The files of one node, in one directory.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
}

static IMPORTS: AtomicU64 = AtomicU64::new(0);

/// Copies what it reads into `out`, so a file is hashed as it is copied.
struct Tee<R, W> {
    from: R,
    to: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.from.read(buf)?;
        self.to.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl BlobStore {
    /// Opens the store in `dir`, creating it, and removes imports that a
    /// crash interrupted.
    pub fn open(dir: &Path) -> Result<BlobStore, FileError> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with("import-") {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(BlobStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, root: &FileRoot, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", hex_name(root)))
    }

    /// The path of the complete file `root`, if held.
    pub fn complete_path(&self, root: &FileRoot) -> Option<PathBuf> {
        let p = self.path(root, "");
        p.is_file().then_some(p)
    }

    /// Adds the file at `src`: copies it into the store while hashing it
    /// and building its outboard (one pass, in memory only a group at a
    /// time). Returns its root and size. A source shorter than it said
    /// is an error; bytes past its size are not read.
    pub fn import(&self, src: &Path) -> Result<(FileRoot, u64), FileError> {
        let from = File::open(src)?;
        let size = from.metadata()?.len();
        self.import_checked(from, size, None)
    }

    /// Adds a file of `size` bytes read from `from` (an upload), keeping it
    /// only if its root is `expect`. Returns the root the bytes have.
    pub fn import_from(
        &self,
        from: impl Read,
        size: u64,
        expect: &FileRoot,
    ) -> Result<(FileRoot, u64), FileError> {
        self.import_checked(from, size, Some(expect))
    }

    fn import_checked(
        &self,
        from: impl Read,
        size: u64,
        expect: Option<&FileRoot>,
    ) -> Result<(FileRoot, u64), FileError> {
        if size > MAX_FILE_BYTES {
            return Err(FileError::TooLarge(size));
        }
        let n = IMPORTS.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("import-{}-{n}.tmp", std::process::id()));
        let tmp_obao = self
            .dir
            .join(format!("import-{}-{n}.obao.tmp", std::process::id()));
        let result = self.import_as(from, size, &tmp, &tmp_obao, expect);
        // Whatever happened, no temporary file stays behind.
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&tmp_obao);
        result
    }

    fn import_as(
        &self,
        from: impl Read,
        size: u64,
        tmp: &Path,
        tmp_obao: &Path,
        expect: Option<&FileRoot>,
    ) -> Result<(FileRoot, u64), FileError> {
        let tree = BaoTree::new(size, CHUNK_GROUP);
        let mut copy = io::BufWriter::with_capacity(1 << 20, File::create(tmp)?);
        let obao = File::create(tmp_obao)?;
        obao.set_len(tree.outboard_size())?;
        let mut outboard = PreOrderOutboard {
            root: blake3::hash(&[]),
            tree,
            data: obao,
        };
        let tee = Tee {
            from: io::BufReader::with_capacity(1 << 20, from.take(size)),
            to: &mut copy,
        };
        let hash = bao_tree::io::sync::outboard(tee, tree, &mut outboard).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                FileError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was read",
                ))
            } else {
                FileError::Io(e)
            }
        })?;
        let root = FileRoot(*hash.as_bytes());
        if expect.is_some_and(|e| *e != root) {
            return Ok((root, size));
        }
        let copied = copy
            .into_inner()
            .map_err(|e| FileError::Io(e.into_error()))?;
        copied.sync_all()?;
        outboard.data.sync_all()?;
        if self.complete_path(&root).is_none() {
            std::fs::rename(tmp_obao, self.path(&root, ".obao"))?;
            std::fs::rename(tmp, self.path(&root, ""))?;
            File::open(&self.dir)?.sync_all()?;
        }
        Ok((root, size))
    }

    /// What the store holds of `root` (a `size`-byte file).
    pub fn held(&self, root: &FileRoot, size: u64) -> Result<Held, FileError> {
        if self.complete_path(root).is_some() {
            return Ok(Held::Complete);
        }
        let bits_path = self.path(root, ".pieces");
        if !self.path(root, ".partial").is_file() || !bits_path.is_file() {
            return Ok(Held::Nothing);
        }
        let mut bits = std::fs::read(&bits_path)?;
        bits.truncate(piece_count(size).div_ceil(8) as usize);
        let pieces = bits.iter().map(|b| u64::from(b.count_ones())).sum();
        Ok(Held::Partial { bits, pieces })
    }

    /// Opens (or resumes) the download of `root`.
    pub fn partial(&self, root: FileRoot, size: u64) -> Result<PartialFile, FileError> {
        PartialFile::open(&self.dir, root, size)
    }

    /// Piece `piece` of `root` (a `size`-byte file) in its verifiable
    /// encoding, appended to `out`, from a complete copy or from a
    /// download in progress that holds the piece.
    pub fn encode_piece(
        &self,
        root: &FileRoot,
        size: u64,
        piece: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), FileError> {
        let data_path = match self.held(root, size)? {
            Held::Complete => self.path(root, ""),
            Held::Partial { bits, .. }
                if bits
                    .get((piece / 8) as usize)
                    .is_some_and(|b| b & (1 << (piece % 8)) != 0) =>
            {
                self.path(root, ".partial")
            }
            _ => return Err(FileError::NotHeld { piece }),
        };
        let data = File::open(&data_path)?;
        let len = data.metadata()?.len();
        if len != size {
            return Err(FileError::Corrupt {
                piece,
                why: format!("the local copy has {len} bytes, the record says {size}"),
            });
        }
        let obao = OpenOptions::new()
            .read(true)
            .open(self.path(root, ".obao"))?;
        let outboard = PreOrderOutboard {
            root: root.hash(),
            tree: BaoTree::new(size, CHUNK_GROUP),
            data: obao,
        };
        encode_piece_from(&data, &outboard, size, piece, out)
    }

    /// Deletes everything the store holds of `root`; returns the bytes
    /// freed.
    pub fn remove(&self, root: &FileRoot) -> Result<u64, FileError> {
        let mut freed = 0;
        for suffix in ["", ".partial", ".pieces", ".obao"] {
            let p = self.path(root, suffix);
            match std::fs::metadata(&p) {
                Ok(m) => {
                    std::fs::remove_file(&p)?;
                    freed += m.len();
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(freed)
    }

    /// Every file the store holds, complete or partial, by root.
    pub fn list(&self) -> Result<Vec<Stored>, FileError> {
        let mut out: std::collections::BTreeMap<FileRoot, Stored> = Default::default();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let (stem, suffix) = name.split_at(name.find('.').unwrap_or(name.len()));
            let Ok(root) = stem.parse::<FileRoot>() else {
                continue;
            };
            if stem.len() != 64 {
                continue;
            }
            let len = entry.metadata()?.len();
            let s = out.entry(root).or_insert(Stored {
                root,
                complete: false,
                disk_bytes: 0,
            });
            s.disk_bytes += len;
            if suffix.is_empty() {
                s.complete = true;
            }
        }
        Ok(out.into_values().collect())
    }
}
