//! Clients' transactions that arrive one per call (`eth_sendRawTransaction`,
//! `tx_submit`), admitted together.
//!
//! Why: a call handed to the admission workers alone costs two thread
//! switches and a signature check or sender recovery of one. A JSON-RPC
//! batch of 50 sends (what ethers and the ERC-20 bench send) paid that 50
//! times in a row. Here a call queues its transaction and waits for its
//! own answer; the call that finds the queue empty also queues one job
//! on the workers, and that job admits everything queued by the time it
//! runs, in arrival order, with one batch of signature checks or sender
//! recoveries. Under load the batches grow by themselves; alone, a call
//! waits for no one.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use palisade_runtime::StoreError;
use palisade_types::Hash;
use tokio::sync::oneshot;

use crate::background::Background;
use crate::mempool::AddError;

/// One transaction's answer.
pub type Admitted = Result<Hash, AddError>;

type Waiting<T> = Vec<(T, oneshot::Sender<Admitted>)>;

/// Items waiting for the next batch. It holds no admission code and no
/// node parts: the job that drains it carries those, so the node's
/// context can hold it without a cycle.
pub struct Intake<T> {
    waiting: Mutex<Waiting<T>>,
}

impl<T> std::fmt::Debug for Intake<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").finish_non_exhaustive()
    }
}

impl<T> Default for Intake<T> {
    fn default() -> Self {
        Intake {
            waiting: Mutex::new(Vec::new()),
        }
    }
}

fn stopped() -> AddError {
    AddError::Store(StoreError::Backend(
        "the transaction admission workers stopped".into(),
    ))
}

impl<T: Send + 'static> Intake<T> {
    /// Queues `item` now (before the future is first polled, so calls
    /// keep the order they were made in) and resolves with its answer.
    /// When the queue was empty, `admit` (one answer per item, in order)
    /// goes to `workers` to admit the batch; otherwise it is dropped, as
    /// a job is on its way. Call it from within a Tokio runtime.
    pub fn submit<F>(
        self: &Arc<Self>,
        item: T,
        workers: &Background,
        admit: F,
    ) -> impl Future<Output = Admitted> + Send + 'static
    where
        F: FnOnce(Vec<T>) -> Vec<Admitted> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push((item, tx));
            waiting.len() == 1
        };
        if first {
            let batch = Batch {
                intake: self.clone(),
                admit: Some(admit),
            };
            workers.queue(move || batch.run());
        }
        async move { rx.await.unwrap_or_else(|_| Err(stopped())) }
    }

    fn take(&self) -> Waiting<T> {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The job that admits what is waiting. Dropped unrun (the workers are
/// gone), it answers everyone waiting: no later call would queue another
/// job while they wait.
struct Batch<T: Send + 'static, F: FnOnce(Vec<T>) -> Vec<Admitted>> {
    intake: Arc<Intake<T>>,
    /// Taken when the job runs.
    admit: Option<F>,
}

impl<T: Send + 'static, F: FnOnce(Vec<T>) -> Vec<Admitted>> Batch<T, F> {
    fn run(mut self) {
        let Some(admit) = self.admit.take() else {
            return;
        };
        let (items, answers): (Vec<T>, Vec<oneshot::Sender<Admitted>>) =
            self.intake.take().into_iter().unzip();
        let n = items.len();
        // A panic here drops `answers`: each caller hears that admission
        // stopped.
        let mut results = admit(items).into_iter();
        for answer in answers {
            let r = results.next().unwrap_or_else(|| {
                Err(AddError::Store(StoreError::Backend(format!(
                    "admission answered fewer than the {n} transactions it was given"
                ))))
            });
            // The caller may have gone (a closed connection).
            let _ = answer.send(r);
        }
    }
}

impl<T: Send + 'static, F: FnOnce(Vec<T>) -> Vec<Admitted>> Drop for Batch<T, F> {
    fn drop(&mut self) {
        if self.admit.is_some() {
            for (_, answer) in self.intake.take() {
                let _ = answer.send(Err(stopped()));
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
        let (hold, release) = std::sync::mpsc::channel::<()>();
        workers.queue(move || {
            let _ = release.recv();
        });
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
        let (hold, release) = std::sync::mpsc::channel::<()>();
        workers.queue(move || {
            let _ = release.recv();
        });
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
    async fn a_batch_dropped_unrun_answers_everyone_waiting() {
        let intake: Arc<Intake<u32>> = Arc::new(Intake::default());
        let (tx, rx) = oneshot::channel();
        intake.waiting.lock().unwrap().push((2, tx));
        // What the workers' queue does with a job once they are gone.
        drop(Batch {
            intake: intake.clone(),
            admit: Some(recording(Arc::new(Mutex::new(Vec::new())))),
        });
        assert!(matches!(rx.await, Ok(Err(AddError::Store(_)))));
        assert!(intake.waiting.lock().unwrap().is_empty());
    }
}
