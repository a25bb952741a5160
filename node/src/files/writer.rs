//! A download's disk side, on a thread of its own: verifies and writes
//! the pieces that come in, and syncs them in batches, while the download
//! keeps asking peers for more. (Inline, every batch's sync stalled the
//! requests behind it.)

use std::time::Duration;

use libp2p::PeerId;
use palisade_files::{FileError, PartialFile};
use palisade_types::BoundedBytes;
use tokio::sync::mpsc;

/// Pieces written between syncs: a crash loses at most these (they are
/// fetched again), and the download syncs once per batch, not per piece.
const FLUSH_EVERY: usize = 16;
/// Longest a written piece waits for its sync.
const FLUSH_AFTER: Duration = Duration::from_millis(500);
/// Pieces queued for the disk: past it, the download waits (memory stays
/// bounded at about this many MiB, beside the requests in flight).
const QUEUE: usize = 16;

type Piece = BoundedBytes<{ palisade_files::MAX_ENCODED_PIECE_BYTES }>;

/// What became of a piece handed to the writer.
#[derive(Debug)]
pub(crate) struct Written {
    pub peer: PeerId,
    pub piece: u64,
    pub bytes: u64,
    /// `Err` with a verification error: the peer sent a bad piece; with an
    /// IO error: the disk failed (see [`Writer::failed`]).
    pub result: Result<(), FileError>,
}

pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<(PeerId, u64, Piece)>>,
    /// Each piece's result, or (last) why the writer stopped: a disk error
    /// the download must not wait out.
    pub done: mpsc::Receiver<Result<Written, String>>,
    thread: tokio::task::JoinHandle<Result<PartialFile, String>>,
}

impl Writer {
    pub fn start(mut partial: PartialFile) -> Writer {
        let (jobs, mut rx) = mpsc::channel::<(PeerId, u64, Piece)>(QUEUE);
        let (done_tx, done) = mpsc::channel::<Result<Written, String>>(QUEUE);
        let runtime = tokio::runtime::Handle::current();
        let thread = tokio::task::spawn_blocking(move || -> Result<PartialFile, String> {
            let report = done_tx.clone();
            let flush = |p: &mut PartialFile| {
                p.flush().map_err(|e| {
                    let why = format!("syncing pieces: {e}");
                    let _ = report.blocking_send(Err(why.clone()));
                    why
                })
            };
            // When the oldest piece not yet synced was written.
            let mut oldest: Option<std::time::Instant> = None;
            loop {
                // Waits for a piece, or syncs what waits once it has waited
                // its time.
                let job = match oldest {
                    None => rx.blocking_recv(),
                    Some(t) => {
                        let left = FLUSH_AFTER.saturating_sub(t.elapsed());
                        match runtime.block_on(tokio::time::timeout(left, rx.recv())) {
                            Ok(j) => j,
                            Err(_) => {
                                flush(&mut partial)?;
                                oldest = None;
                                continue;
                            }
                        }
                    }
                };
                let Some((peer, piece, encoded)) = job else {
                    flush(&mut partial)?;
                    return Ok(partial);
                };
                let result = partial.write_piece(piece, &encoded);
                let disk_failed = matches!(result, Err(FileError::Io(_)));
                let written = Written {
                    peer,
                    piece,
                    bytes: encoded.len() as u64,
                    result,
                };
                if disk_failed {
                    let _ = done_tx.blocking_send(Ok(written));
                    return Err(format!("writing piece {piece}: the disk failed"));
                }
                // Nobody listening (the download is done, and this was a
                // second copy of a piece): nothing to report.
                let _ = done_tx.blocking_send(Ok(written));
                if partial.unflushed() > 0 && oldest.is_none() {
                    oldest = Some(std::time::Instant::now());
                }
                let due = oldest.is_some_and(|t| t.elapsed() >= FLUSH_AFTER);
                if partial.unflushed() >= FLUSH_EVERY || due {
                    flush(&mut partial)?;
                    oldest = None;
                }
            }
        });
        Writer {
            jobs: Some(jobs),
            done,
            thread,
        }
    }

    /// Queues a piece (waits while the queue is full).
    pub async fn submit(&self, peer: PeerId, piece: u64, encoded: Piece) -> Result<(), String> {
        match &self.jobs {
            Some(j) => j
                .send((peer, piece, encoded))
                .await
                .map_err(|_| "the disk writer stopped".to_string()),
            None => Err("the disk writer is closed".into()),
        }
    }

    /// Syncs what was written and hands the file back.
    pub async fn close(mut self) -> Result<PartialFile, String> {
        self.jobs = None;
        // Results nobody reads any more must not block the thread.
        self.done.close();
        while self.done.recv().await.is_some() {}
        self.thread.await.map_err(|e| e.to_string())?
    }
}
