//! Worker threads for CPU-heavy work that the consensus path never waits
//! for — signature checks and mempool admission of transactions, gossiped
//! or submitted over RPC — run at a lower scheduling priority than the
//! rest of the node.
//!
//! Why: on a busy machine the node's threads compete for cores with each
//! other (and, on a devnet, with other nodes). Proposing, validating and
//! committing a block hold up every pending transaction at once;
//! admitting one more gossip batch holds up only that batch. With equal
//! priority the kernel shares the cores evenly, so a block's execution
//! waits behind admission work and every height takes longer. A higher
//! nice value leaves the work as it is (the scheduler still runs it
//! whenever a core is free) but lets block processing go first when both
//! want a core.
//!
//! Raising one's own nice value needs no privilege. Where the platform
//! refuses, the worker logs it and runs at normal priority.

use std::future::Future;
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, watch};

type Job = Box<dyn FnOnce() + Send>;

/// Jobs queued for the worker beyond the one it runs. Callers of `run`
/// await each job, and each client intake queues at most one job at a
/// time ([`crate::intake`]), so the queue stays short; the bound only
/// stops a runaway caller.
const QUEUE: usize = 64;

/// Handle to the worker threads; they end when the last handle is dropped
/// and the queue is drained.
#[derive(Debug, Clone)]
pub struct Background {
    jobs: mpsc::SyncSender<Job>,
    /// How many of the threads still run.
    live: watch::Receiver<usize>,
}

/// Counts a worker thread out when it ends, however it ends.
struct Alive(Arc<watch::Sender<usize>>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Background {
    /// Starts `threads` (at least one) worker threads named `name`, `nice`
    /// steps below the priority of the thread that calls this (0 keeps it).
    pub fn spawn(name: &str, threads: usize, nice: i32) -> std::io::Result<Background> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let (count, live) = watch::channel(0usize);
        let count = Arc::new(count);
        for _ in 0..threads.max(1) {
            let rx = rx.clone();
            let thread = name.to_owned();
            count.send_modify(|n| *n += 1);
            let alive = Alive(count.clone());
            let spawned = std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    let _alive = alive;
                    if nice != 0 {
                        if let Err(e) = lower_priority(nice) {
                            tracing::warn!(thread, error = %e, "could not lower the priority of a background thread; it runs at normal priority");
                        }
                    }
                    loop {
                        // Held only while waiting for the next job, so one
                        // thread waits and the others run.
                        let next = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            // A thread that failed to start dropped its `Alive` with the
            // closure; the error goes to the caller.
            spawned?;
        }
        Ok(Background { jobs, live })
    }

    /// How many of the worker threads still run.
    pub fn live_threads(&self) -> usize {
        *self.live.borrow()
    }

    /// Completes when every worker thread has ended (for supervision: while
    /// the node runs, they never should). Holds no handle, so it does not
    /// keep the workers alive itself.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut live = self.live.clone();
        async move {
            // An error means every thread (and sender) is gone: stopped too.
            let _ = live.wait_for(|n| *n == 0).await;
        }
    }

    /// Runs `f` on a worker from a thread that may block (a blocking-pool
    /// thread, say) and returns its result. `None` if the workers are gone
    /// or `f` panicked.
    pub fn run_blocking<R, F>(&self, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            if let Ok(out) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(out);
            }
        });
        self.jobs.send(job).ok()?;
        rx.recv().ok()
    }

    /// Queues `f` for a worker and returns at once; call it from within a
    /// Tokio runtime. A full queue is waited on from a blocking-pool
    /// thread, not here. `f` is dropped unrun when the workers are gone
    /// (so whatever it owns can tell those waiting on it), and a panic in
    /// it ends only `f`.
    pub fn queue<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let job: Job = Box::new(move || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        });
        if let Err(mpsc::TrySendError::Full(job)) = self.jobs.try_send(job) {
            let jobs = self.jobs.clone();
            tokio::task::spawn_blocking(move || jobs.send(job));
        }
    }

    /// Runs `f` on the worker and waits for its result without blocking
    /// the async runtime. `None` if the worker is gone or `f` panicked.
    pub async fn run<R, F>(&self, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            if let Ok(out) = out {
                let _ = tx.send(out);
            }
        });
        // A full queue means jobs are waiting already; hand this one over
        // from a blocking thread rather than stall the async worker.
        let jobs = self.jobs.clone();
        let sent = match jobs.try_send(job) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Disconnected(_)) => false,
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || jobs.send(job).is_ok())
                    .await
                    .unwrap_or(false)
            }
        };
        if !sent {
            return None;
        }
        rx.await.ok()
    }
}

/// Raises the calling thread's nice value by `by` (Linux: `setpriority` on
/// `PRIO_PROCESS` with id 0 changes only the calling thread).
#[cfg(target_os = "linux")]
fn lower_priority(by: i32) -> std::io::Result<()> {
    let now = rustix::process::getpriority_process(None)?;
    rustix::process::setpriority_process(None, now.saturating_add(by).min(19))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_by: i32) -> std::io::Result<()> {
    // Elsewhere setpriority applies to the whole process, which would slow
    // consensus down with it.
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "per-thread priority is only set on Linux",
    ))
}
