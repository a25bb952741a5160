//! Supervision of the node's long-running tasks (network, sync, admission,
//! gossip, RPC, metrics, ...).
//!
//! Each of them runs for as long as the node does, so one that ends while
//! the node runs (it returned, or it panicked) is a failure: the node has
//! lost a part and must not go on looking alive without it. Restarting is
//! not safe in general (a task owns its channel ends; the part it talks to
//! may be gone too), so the node stops: [`Supervisor::next_exit`] names the
//! task and why it ended, [`crate::health`] reports it, and `Node::run`
//! returns the error, which the binary prints before it exits non-zero.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinError, JoinHandle, JoinSet};

use crate::health::NodeHealth;

/// TEST ONLY: a task made to panic, to test supervision end to end
/// (`palisade-test-node --fail-task TASK:MS start|dev ...`, a test-only
/// binary in `tests/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFault {
    pub task: String,
    pub after: Duration,
}

/// Parses `TASK:MS`.
pub fn parse_fault(s: &str) -> Result<TaskFault, String> {
    let (task, ms) = s.rsplit_once(':').ok_or("expected TASK:MS")?;
    let ms: u64 = ms
        .parse()
        .map_err(|_| format!("{ms:?} is not milliseconds"))?;
    Ok(TaskFault {
        task: task.to_string(),
        after: Duration::from_millis(ms),
    })
}

/// A supervised task that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExit {
    pub task: &'static str,
    pub why: String,
}

/// The node's long-running tasks.
#[derive(Debug)]
pub struct Supervisor {
    tasks: JoinSet<()>,
    names: HashMap<tokio::task::Id, &'static str>,
    /// Tasks spawned elsewhere and watched here: aborted with the rest.
    foreign: Vec<AbortHandle>,
    health: Arc<NodeHealth>,
    fault: Option<TaskFault>,
}

/// Why a task that was joined with `e` ended: its panic message, or that
/// it was cancelled.
pub fn why(e: JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".into();
    }
    let payload = e.into_panic();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {msg}")
}

impl Supervisor {
    pub fn new(health: Arc<NodeHealth>) -> Supervisor {
        Supervisor {
            tasks: JoinSet::new(),
            names: HashMap::new(),
            foreign: Vec::new(),
            health,
            fault: None,
        }
    }

    /// TEST ONLY: the task named in `fault` panics after its delay.
    pub fn with_fault(mut self, fault: Option<TaskFault>) -> Supervisor {
        self.fault = fault;
        self
    }

    /// Runs `task` under supervision as `name`.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = match &self.fault {
            Some(f) if f.task == name => {
                tracing::warn!(
                    task = name,
                    after_ms = f.after.as_millis() as u64,
                    "TEST ONLY: this task will be made to fail"
                );
                let after = f.after;
                self.tasks.spawn(async move {
                    tokio::select! {
                        () = task => {}
                        () = tokio::time::sleep(after) => panic!("TEST ONLY: --fail-task {name}"),
                    }
                })
            }
            _ => self.tasks.spawn(task),
        };
        self.names.insert(handle.id(), name);
        self.health.task_started(name);
    }

    /// Supervises a task some other part spawned (the network's swarm, the
    /// RPC server's accept loop); it is aborted with the others.
    pub fn watch(&mut self, name: &'static str, handle: JoinHandle<()>) {
        self.foreign.push(handle.abort_handle());
        self.spawn(name, async move {
            if let Err(e) = handle.await {
                if e.is_panic() {
                    // Its own message, as if it had panicked here.
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        });
    }

    /// Waits until a task ends, records it in the node's health and says
    /// which and why. Never completes if no task runs.
    pub async fn next_exit(&mut self) -> TaskExit {
        let Some(joined) = self.tasks.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (id, why) = match joined {
            Ok((id, ())) => (id, "ended unexpectedly".to_string()),
            Err(e) => (e.id(), why(e)),
        };
        let task = self.names.remove(&id).unwrap_or("a background task");
        self.health.task_stopped(task, why.clone());
        TaskExit { task, why }
    }

    /// Stops every task and waits, at most `within`, until each has ended
    /// and dropped what it held (the ports a node reopening binds again).
    pub async fn stop_all(&mut self, within: Duration) {
        let foreign = self.foreign.clone();
        self.abort_all();
        let ended = async {
            while self.tasks.join_next().await.is_some() {}
            while foreign.iter().any(|h| !h.is_finished()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(within, ended).await.is_err() {
            tracing::warn!("some tasks had not ended after {within:?}");
        }
    }

    /// Stops every task.
    pub fn abort_all(&mut self) {
        self.tasks.abort_all();
        for h in self.foreign.drain(..) {
            h.abort();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::TaskState;

    fn supervisor() -> (Supervisor, Arc<NodeHealth>) {
        let health = Arc::new(NodeHealth::new(Duration::from_secs(30)));
        (Supervisor::new(health.clone()), health)
    }

    #[tokio::test]
    async fn a_task_that_returns_is_reported_by_name() {
        let (mut sup, health) = supervisor();
        sup.spawn("forever", std::future::pending());
        sup.spawn("quitter", async {});
        let exit = tokio::time::timeout(Duration::from_secs(5), sup.next_exit())
            .await
            .unwrap();
        assert_eq!(exit.task, "quitter");
        assert_eq!(exit.why, "ended unexpectedly");
        let tasks = health.tasks();
        assert!(tasks.contains(&("forever", TaskState::Running)));
        assert!(tasks.contains(&("quitter", TaskState::Stopped("ended unexpectedly".into()))));
    }

    #[tokio::test]
    async fn a_panic_is_reported_with_its_message() {
        let (mut sup, health) = supervisor();
        sup.spawn("sync", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("lost the ledger");
        });
        let exit = sup.next_exit().await;
        assert_eq!(exit.task, "sync");
        assert_eq!(exit.why, "panicked: lost the ledger");
        assert_eq!(
            health.tasks(),
            vec![(
                "sync",
                TaskState::Stopped("panicked: lost the ledger".into())
            )]
        );
    }

    #[tokio::test]
    async fn a_watched_task_s_panic_is_its_own() {
        let (mut sup, _) = supervisor();
        let n = 7;
        sup.watch("network", tokio::spawn(async move { panic!("swarm {n}") }));
        assert_eq!(sup.next_exit().await.why, "panicked: swarm 7");
    }

    #[tokio::test]
    async fn aborting_stops_watched_tasks_too() {
        let (mut sup, _) = supervisor();
        let inner = tokio::spawn(std::future::pending::<()>());
        let probe = inner.abort_handle();
        sup.watch("rpc", inner);
        sup.abort_all();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(probe.is_finished());
    }

    #[tokio::test]
    async fn a_fault_makes_the_named_task_panic() {
        let (sup, _) = supervisor();
        let mut sup = sup.with_fault(Some(parse_fault("sync:20").unwrap()));
        sup.spawn("metrics", std::future::pending());
        sup.spawn("sync", std::future::pending());
        let exit = sup.next_exit().await;
        assert_eq!(exit.task, "sync");
        assert_eq!(exit.why, "panicked: TEST ONLY: --fail-task sync");
        assert!(parse_fault("sync").is_err());
    }

    #[tokio::test]
    async fn with_nothing_running_it_waits() {
        let (mut sup, _) = supervisor();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), sup.next_exit())
                .await
                .is_err()
        );
    }
}
