//! Whether the node is fit to serve: `system_health`, `GET /health` on the
//! RPC port and on the metrics port. Computed at each request from the
//! parts' liveness, never a constant. The node is unhealthy when
//!
//! - the consensus driver or any supervised background task has stopped
//!   (see [`crate::supervisor`]; the node then stops too, so this is seen
//!   only in the moment before it exits);
//! - no block was committed for longer than `rpc.health_max_block_age_ms`
//!   while it has peers, or while it could commit by itself (it holds more
//!   than two thirds of the voting power, as `palisade dev` does). A node
//!   with no peers that cannot commit alone is not called stalled: it
//!   reports `peers: 0`, which is its problem;
//! - it is syncing (behind its peers, fetching blocks);
//! - its ledger cannot be read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default of `rpc.health_max_block_age_ms`.
pub const DEFAULT_MAX_BLOCK_AGE_MS: u64 = 30_000;

/// A supervised part's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// Stopped, and why.
    Stopped(String),
}

/// The liveness the node records as it runs.
#[derive(Debug)]
pub struct NodeHealth {
    started: Instant,
    /// Milliseconds after `started` of the last commit (0: none yet).
    last_commit_ms: AtomicU64,
    max_block_age: Duration,
    tasks: Mutex<Vec<(&'static str, TaskState)>>,
}

/// What [`assess`] looks at besides the tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub height: u64,
    pub peers: usize,
    pub syncing: bool,
    /// Highest height a peer reported.
    pub sync_target: u64,
    /// This node holds more than two thirds of the voting power.
    pub commits_alone: bool,
    pub block_age: Duration,
    pub max_block_age: Duration,
}

impl NodeHealth {
    pub fn new(max_block_age: Duration) -> NodeHealth {
        NodeHealth {
            started: Instant::now(),
            last_commit_ms: AtomicU64::new(0),
            max_block_age,
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub fn max_block_age(&self) -> Duration {
        self.max_block_age
    }

    /// Records that `task` runs (again).
    pub fn task_started(&self, task: &'static str) {
        self.set(task, TaskState::Running);
    }

    /// Records that `task` stopped, and why.
    pub fn task_stopped(&self, task: &'static str, why: impl Into<String>) {
        self.set(task, TaskState::Stopped(why.into()));
    }

    fn set(&self, task: &'static str, state: TaskState) {
        let Ok(mut tasks) = self.tasks.lock() else {
            return;
        };
        match tasks.iter_mut().find(|(t, _)| *t == task) {
            Some(slot) => slot.1 = state,
            None => tasks.push((task, state)),
        }
    }

    /// Every recorded task and its state.
    pub fn tasks(&self) -> Vec<(&'static str, TaskState)> {
        self.tasks.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Records a commit now.
    pub fn block_committed(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_commit_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Time since the last commit, or since the node started if it has
    /// committed nothing since.
    pub fn block_age(&self) -> Duration {
        let last = Duration::from_millis(self.last_commit_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// Why a node with these tasks and facts is unhealthy; empty if it is not.
pub fn assess(tasks: &[(&'static str, TaskState)], f: &Facts) -> Vec<String> {
    let mut reasons: Vec<String> = tasks
        .iter()
        .filter_map(|(name, state)| match state {
            TaskState::Running => None,
            TaskState::Stopped(why) => Some(format!("{name} stopped: {why}")),
        })
        .collect();
    if f.block_age > f.max_block_age && (f.peers > 0 || f.commits_alone) {
        reasons.push(format!(
            "no block committed for {:.1} s (rpc.health_max_block_age_ms is {} ms) at height {} with {} peer(s)",
            f.block_age.as_secs_f64(),
            f.max_block_age.as_millis(),
            f.height,
            f.peers
        ));
    }
    if f.syncing {
        reasons.push(format!(
            "syncing: at height {}, peers report {}",
            f.height, f.sync_target
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            height: 10,
            peers: 3,
            syncing: false,
            sync_target: 10,
            commits_alone: false,
            block_age: Duration::from_secs(1),
            max_block_age: Duration::from_secs(30),
        }
    }

    #[test]
    fn healthy_when_everything_runs_and_blocks_come() {
        let tasks = [
            ("sync", TaskState::Running),
            ("network", TaskState::Running),
        ];
        assert!(assess(&tasks, &facts()).is_empty());
    }

    #[test]
    fn a_stopped_task_is_named() {
        let tasks = [
            ("sync", TaskState::Running),
            ("network", TaskState::Stopped("panicked: boom".into())),
        ];
        let r = assess(&tasks, &facts());
        assert_eq!(r, vec!["network stopped: panicked: boom".to_string()]);
    }

    #[test]
    fn an_old_block_counts_only_with_peers_or_alone() {
        let old = Facts {
            block_age: Duration::from_secs(31),
            ..facts()
        };
        assert_eq!(assess(&[], &old).len(), 1);
        // Alone, and no quorum of its own: not stalled, just alone.
        let lone = Facts {
            peers: 0,
            ..old.clone()
        };
        assert!(assess(&[], &lone).is_empty());
        // `palisade dev`: alone, but it commits by itself.
        let dev = Facts {
            commits_alone: true,
            ..lone
        };
        assert_eq!(assess(&[], &dev).len(), 1);
    }

    #[test]
    fn syncing_is_unhealthy() {
        let f = Facts {
            syncing: true,
            sync_target: 500,
            ..facts()
        };
        assert_eq!(
            assess(&[], &f),
            vec!["syncing: at height 10, peers report 500".to_string()]
        );
    }

    #[test]
    fn block_age_runs_from_start_then_from_each_commit() {
        let h = NodeHealth::new(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(30));
        assert!(h.block_age() >= Duration::from_millis(30));
        h.block_committed();
        assert!(h.block_age() < Duration::from_millis(30));
        h.task_started("sync");
        h.task_stopped("sync", "returned");
        assert_eq!(
            h.tasks(),
            vec![("sync", TaskState::Stopped("returned".into()))]
        );
    }
}
