//! Clients' transactions that arrive one per call (`eth_sendRawTransaction`,
//! `tx_submit`), admitted together.
//!
//! Why: a call handed to the admission workers alone costs two thread
//! switches and a signature check or sender recovery of one. A JSON-RPC
//! batch of 50 sends (what ethers and the ERC-20 bench send) paid that 50
//! times in a row. Here a call queues its transaction and waits for its
//! own answer. One job at a time admits what is queued: it takes
//! everything waiting, admits it as one batch (one batch of signature
//! checks or sender recoveries) and answers each caller, and repeats until
//! nothing waits. The call that finds no job running queues one. Under
//! load the batches grow by themselves; alone, a call waits for no one.
//! With one job at a time, transactions are admitted in the order their
//! calls were made, whatever the number of worker threads.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use palisade_runtime::StoreError;
use palisade_types::Hash;
use tokio::sync::oneshot;

use crate::background::Background;
use crate::mempool::AddError;

/// One transaction's answer.
pub type Admitted = Result<Hash, AddError>;

type Waiting<T> = Vec<(T, oneshot::Sender<Admitted>)>;

struct Queue<T> {
    waiting: Waiting<T>,
    /// Whether a job is queued or running; it clears this only when it
    /// finds nothing waiting.
    job: bool,
}

/// Items waiting for the next batch. It holds no admission code and no
/// node parts: the job that drains it carries those, so the node's
/// context can hold it without a cycle.
pub struct Intake<T> {
    queue: Mutex<Queue<T>>,
}

impl<T> std::fmt::Debug for Intake<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").finish_non_exhaustive()
    }
}

impl<T> Default for Intake<T> {
    fn default() -> Self {
        Intake {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                job: false,
            }),
        }
    }
}

fn backend(why: &str) -> AddError {
    AddError::Store(StoreError::Backend(why.into()))
}

const STOPPED: &str = "the transaction admission workers stopped";
const FAILED: &str = "transaction admission failed";

impl<T: Send + 'static> Intake<T> {
    /// Queues `item` now (before the future is first polled, so calls
    /// keep the order they were made in) and resolves with its answer.
    /// When no job is running, `admit` (one answer per item, in order)
    /// goes to `workers` as the job; otherwise it is dropped, as the
    /// running job will take `item` too. Call it from within a Tokio
    /// runtime.
    pub fn submit<F>(
        self: &Arc<Self>,
        item: T,
        workers: &Background,
        admit: F,
    ) -> impl Future<Output = Admitted> + Send + 'static
    where
        F: Fn(Vec<T>) -> Vec<Admitted> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.lock();
            q.waiting.push((item, tx));
            !std::mem::replace(&mut q.job, true)
        };
        if start {
            let job = Job {
                intake: self.clone(),
                admit,
                ran: false,
            };
            workers.queue(move || job.run());
        }
        async move { rx.await.unwrap_or_else(|_| Err(backend(STOPPED))) }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The job that admits what is waiting. Dropped unrun (the workers are
/// gone), it answers everyone waiting and lets the next call queue a job.
struct Job<T: Send + 'static, F: Fn(Vec<T>) -> Vec<Admitted>> {
    intake: Arc<Intake<T>>,
    admit: F,
    ran: bool,
}

impl<T: Send + 'static, F: Fn(Vec<T>) -> Vec<Admitted>> Job<T, F> {
    fn run(mut self) {
        self.ran = true;
        loop {
            let waiting = {
                let mut q = self.intake.lock();
                if q.waiting.is_empty() {
                    q.job = false;
                    return;
                }
                std::mem::take(&mut q.waiting)
            };
            let (items, answers): (Vec<T>, Vec<oneshot::Sender<Admitted>>) =
                waiting.into_iter().unzip();
            let n = items.len();
            let admitted =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.admit)(items)));
            let results = admitted.unwrap_or_default();
            if results.len() != n {
                tracing::error!(
                    batch = n,
                    answered = results.len(),
                    "transaction admission did not answer every transaction"
                );
            }
            let mut results = results.into_iter();
            for answer in answers {
                let r = results.next().unwrap_or_else(|| Err(backend(FAILED)));
                // The caller may have gone (a closed connection).
                let _ = answer.send(r);
            }
        }
    }
}

impl<T: Send + 'static, F: Fn(Vec<T>) -> Vec<Admitted>> Drop for Job<T, F> {
    fn drop(&mut self) {
        if !self.ran {
            let waiting = {
                let mut q = self.intake.lock();
                q.job = false;
                std::mem::take(&mut q.waiting)
            };
            for (_, answer) in waiting {
                let _ = answer.send(Err(backend(STOPPED)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(i: u32) -> Hash {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        Hash(h)
    }

    /// Keeps a worker busy until the returned sender sends.
    fn held(workers: &Background) -> std::sync::mpsc::Sender<()> {
        let (hold, release) = std::sync::mpsc::channel::<()>();
        workers.queue(move || {
            let _ = release.recv();
        });
        hold
    }

    /// Records each batch it is given; refuses odd items.
    fn recording(batches: Arc<Mutex<Vec<Vec<u32>>>>) -> impl Fn(Vec<u32>) -> Vec<Admitted> + Clone {
        move |items: Vec<u32>| {
            batches.lock().unwrap().push(items.clone());
            items
                .into_iter()
                .map(|i| {
                    if i % 2 == 0 {
                        Ok(hash_of(i))
                    } else {
                        Err(AddError::Duplicate)
                    }
                })
                .collect()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_made_together_are_admitted_together_in_order_each_with_its_answer() {
        let workers = Background::spawn("intake-test", 1, 0).unwrap();
        // Hold the only worker so that every call below queues up.
        let hold = held(&workers);
        let batches = Arc::new(Mutex::new(Vec::new()));
        let admit = recording(batches.clone());
        let intake = Arc::new(Intake::default());
        let calls: Vec<_> = (0..10u32)
            .map(|i| intake.submit(i, &workers, admit.clone()))
            .collect();
        hold.send(()).unwrap();
        let answers = futures::future::join_all(calls).await;
        for (i, a) in answers.into_iter().enumerate() {
            let i = u32::try_from(i).unwrap();
            match a {
                Ok(h) => assert!(i % 2 == 0 && h == hash_of(i), "item {i}"),
                Err(AddError::Duplicate) => assert!(i % 2 == 1, "item {i}"),
                Err(e) => panic!("item {i}: {e}"),
            }
        }
        assert_eq!(*batches.lock().unwrap(), vec![(0..10).collect::<Vec<_>>()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_after_a_batch_ran_gets_a_batch_of_its_own() {
        let workers = Background::spawn("intake-test", 1, 0).unwrap();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let admit = recording(batches.clone());
        let intake = Arc::new(Intake::default());
        assert_eq!(
            intake.submit(2, &workers, admit.clone()).await.unwrap(),
            hash_of(2)
        );
        assert_eq!(intake.submit(4, &workers, admit).await.unwrap(), hash_of(4));
        assert_eq!(*batches.lock().unwrap(), vec![vec![2], vec![4]]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_batch_answers_its_callers_and_the_next_call_is_served() {
        let workers = Background::spawn("intake-test", 1, 0).unwrap();
        let intake = Arc::new(Intake::default());
        let panics = |_: Vec<u32>| -> Vec<Admitted> { panic!("admission failed") };
        assert!(matches!(
            intake.submit(1, &workers, panics).await,
            Err(AddError::Store(_))
        ));
        let admit = recording(Arc::new(Mutex::new(Vec::new())));
        assert_eq!(intake.submit(2, &workers, admit).await.unwrap(), hash_of(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admission_that_answers_too_few_fails_the_rest_not_hangs_them() {
        let workers = Background::spawn("intake-test", 1, 0).unwrap();
        let hold = held(&workers);
        let intake = Arc::new(Intake::default());
        let first = |items: Vec<u32>| -> Vec<Admitted> {
            items.into_iter().take(1).map(|i| Ok(hash_of(i))).collect()
        };
        let a = intake.submit(2, &workers, first);
        let b = intake.submit(4, &workers, first);
        hold.send(()).unwrap();
        assert_eq!(a.await.unwrap(), hash_of(2));
        assert!(matches!(b.await, Err(AddError::Store(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_several_workers_one_batch_runs_at_a_time_in_arrival_order() {
        let workers = Background::spawn("intake-test", 4, 0).unwrap();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, busy) = (batches.clone(), running.clone());
        let admit = move |items: Vec<u32>| -> Vec<Admitted> {
            use std::sync::atomic::Ordering::SeqCst;
            assert!(!busy.swap(true, SeqCst), "two batches ran at once");
            std::thread::sleep(std::time::Duration::from_millis(2));
            seen.lock().unwrap().push(items.clone());
            busy.store(false, SeqCst);
            items.into_iter().map(|i| Ok(hash_of(i))).collect()
        };
        let intake = Arc::new(Intake::default());
        let mut calls = Vec::new();
        for i in 0..200u32 {
            calls.push(intake.submit(i, &workers, admit.clone()));
            if i == 0 {
                // The first batch runs before the rest are queued, so there
                // are several however slowly the workers get going.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while batches.lock().unwrap().is_empty() {
                    assert!(std::time::Instant::now() < deadline, "no batch ran");
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            } else if i % 7 == 0 {
                // Let the workers take what is queued so far.
                tokio::time::sleep(std::time::Duration::from_micros(300)).await;
            }
        }
        for (i, a) in futures::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(a.unwrap(), hash_of(u32::try_from(i).unwrap()));
        }
        let batches = batches.lock().unwrap();
        assert!(batches.len() > 1, "the test should span several batches");
        let order: Vec<u32> = batches.iter().flatten().copied().collect();
        assert_eq!(order, (0..200).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_dropped_unrun_answers_everyone_waiting_and_the_next_call_starts_one() {
        let intake: Arc<Intake<u32>> = Arc::new(Intake::default());
        let (tx, rx) = oneshot::channel();
        {
            let mut q = intake.queue.lock().unwrap();
            q.waiting.push((2, tx));
            q.job = true;
        }
        // What the workers' queue does with a job once they are gone.
        drop(Job {
            intake: intake.clone(),
            admit: recording(Arc::new(Mutex::new(Vec::new()))),
            ran: false,
        });
        assert!(matches!(rx.await, Ok(Err(AddError::Store(_)))));
        assert!(!intake.queue.lock().unwrap().job);
        let workers = Background::spawn("intake-test", 1, 0).unwrap();
        let admit = recording(Arc::new(Mutex::new(Vec::new())));
        assert_eq!(intake.submit(4, &workers, admit).await.unwrap(), hash_of(4));
    }
}
