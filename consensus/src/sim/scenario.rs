use std::collections::BTreeSet;

use crate::mocks::Behavior;
use crate::TimeoutConfig;

use super::Rng;

/// Nodes split into groups that cannot reach each other during
/// `[start_ms, end_ms)`. Nodes in no group reach everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub start_ms: u64,
    pub end_ms: u64,
    pub groups: Vec<BTreeSet<usize>>,
}

impl Partition {
    pub fn blocks(&self, now: u64, a: usize, b: usize) -> bool {
        if now < self.start_ms || now >= self.end_ms {
            return false;
        }
        let ga = self.groups.iter().position(|g| g.contains(&a));
        let gb = self.groups.iter().position(|g| g.contains(&b));
        matches!((ga, gb), (Some(x), Some(y)) if x != y)
    }
}

/// Node `node` crashes at `at_ms` (losing everything but its disk) and
/// restarts `down_ms` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    pub node: usize,
    pub at_ms: u64,
    pub down_ms: u64,
}

/// Everything that defines one simulated run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub validators: usize,
    /// Byzantine validators by index.
    pub byzantine: Vec<(usize, Behavior)>,
    pub min_latency_ms: u64,
    pub max_latency_ms: u64,
    /// Messages lost, per mille, outside partitions.
    pub loss_per_mille: u32,
    /// Messages delivered twice, per mille.
    pub duplicate_per_mille: u32,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    /// Every honest node must decide this height.
    pub target_height: u64,
    /// Honest nodes must reach the target this long after the last fault heals.
    pub liveness_bound_ms: u64,
    /// Hard stop of simulated time.
    pub max_time_ms: u64,
    pub timeouts: TimeoutConfig,
    /// Whether liveness is checked (off for negative controls).
    pub check_liveness: bool,
    /// Print every event and output to stderr (for replaying one seed).
    pub trace: bool,
    /// Nodes that lose their signer state when they crash (a broken disk).
    /// Only for the negative control that shows why it must be persisted.
    pub amnesia: Vec<usize>,
    /// Honest nodes forward every message the first time they see it, as
    /// gossipsub does; costs n times the traffic, so off by default.
    pub relay: bool,
}

impl Scenario {
    /// Timeouts scaled to simulated links of a few to tens of milliseconds.
    pub fn sim_timeouts() -> TimeoutConfig {
        TimeoutConfig {
            propose_ms: 300,
            propose_delta_ms: 100,
            prevote_ms: 150,
            prevote_delta_ms: 50,
            precommit_ms: 150,
            precommit_delta_ms: 50,
            rebroadcast_ms: 400,
            max_ms: 3_000,
        }
    }

    /// A fault-free network of `validators` nodes.
    pub fn calm(validators: usize, seed: u64) -> Scenario {
        Scenario {
            seed,
            validators,
            byzantine: Vec::new(),
            min_latency_ms: 5,
            max_latency_ms: 20,
            loss_per_mille: 0,
            duplicate_per_mille: 0,
            partitions: Vec::new(),
            crashes: Vec::new(),
            target_height: 5,
            liveness_bound_ms: 30_000,
            max_time_ms: 120_000,
            timeouts: Scenario::sim_timeouts(),
            check_liveness: true,
            trace: false,
            amnesia: Vec::new(),
            relay: false,
        }
    }

    /// A seeded mix of faults that keeps within the model: at most f
    /// Byzantine validators (any behaviour), latency with jitter, loss,
    /// duplication, a partition that heals, and crash-restarts of honest
    /// validators.
    pub fn random(validators: usize, seed: u64) -> Scenario {
        let mut rng = Rng::new(seed);
        let mut s = Scenario::calm(validators, seed);
        let f = (validators - 1) / 3;
        s.min_latency_ms = rng.range(1, 20);
        s.max_latency_ms = s.min_latency_ms + rng.range(0, 80);
        s.loss_per_mille = rng.range(0, 100) as u32;
        s.duplicate_per_mille = rng.range(0, 50) as u32;

        let mut nodes: Vec<usize> = (0..validators).collect();
        shuffle(&mut nodes, &mut rng);
        let byz = rng.range(0, f as u64) as usize;
        for &n in &nodes[..byz] {
            let b = rng.pick(&Behavior::ALL).unwrap_or(Behavior::Silent);
            s.byzantine.push((n, b));
        }
        let honest = &nodes[byz..];

        if rng.chance(500) {
            let start = rng.range(0, 5_000);
            let end = start + rng.range(500, 10_000);
            let mut shuffled: Vec<usize> = (0..validators).collect();
            shuffle(&mut shuffled, &mut rng);
            let cut = rng.range(1, validators as u64 - 1) as usize;
            s.partitions.push(Partition {
                start_ms: start,
                end_ms: end,
                groups: vec![
                    shuffled[..cut].iter().copied().collect(),
                    shuffled[cut..].iter().copied().collect(),
                ],
            });
        }
        // Crash-restart honest nodes; at most f down at once is not required
        // for safety, only for progress while they are down.
        let crashes = rng.range(0, 2);
        for _ in 0..crashes {
            if let Some(node) = rng.pick(honest) {
                s.crashes.push(Crash {
                    node,
                    at_ms: rng.range(0, 6_000),
                    down_ms: rng.range(100, 5_000),
                });
            }
        }
        s
    }

    /// When the last partition or crash is over.
    pub fn heal_time_ms(&self) -> u64 {
        let p = self.partitions.iter().map(|p| p.end_ms).max().unwrap_or(0);
        let c = self
            .crashes
            .iter()
            .map(|c| c.at_ms + c.down_ms)
            .max()
            .unwrap_or(0);
        p.max(c)
    }

    pub fn behavior_of(&self, node: usize) -> Option<Behavior> {
        self.byzantine
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, b)| *b)
    }
}

fn shuffle(items: &mut [usize], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.range(0, i as u64) as usize;
        items.swap(i, j);
    }
}
