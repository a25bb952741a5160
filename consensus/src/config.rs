use palisade_types::{ChainId, Round};

use crate::TimeoutKind;

/// Timeout lengths in milliseconds. Each grows linearly with the round
/// (`base + delta * round`) so a network slower than the base timeouts still
/// converges, and is capped at `max_ms` so a long outage never leaves a node
/// waiting unboundedly long after the network heals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    pub propose_ms: u64,
    pub propose_delta_ms: u64,
    pub prevote_ms: u64,
    pub prevote_delta_ms: u64,
    pub precommit_ms: u64,
    pub precommit_delta_ms: u64,
    /// Interval at which a node re-sends its own messages of the current
    /// round, so lost messages do not stall a height.
    pub rebroadcast_ms: u64,
    pub max_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            propose_ms: 1_000,
            propose_delta_ms: 500,
            prevote_ms: 500,
            prevote_delta_ms: 250,
            precommit_ms: 500,
            precommit_delta_ms: 250,
            rebroadcast_ms: 1_000,
            max_ms: 30_000,
        }
    }
}

impl TimeoutConfig {
    /// Length of timeout `kind` in `round`.
    pub fn duration_ms(&self, kind: TimeoutKind, round: Round) -> u64 {
        let r = u64::from(round.get());
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.propose_ms, self.propose_delta_ms),
            TimeoutKind::Prevote => (self.prevote_ms, self.prevote_delta_ms),
            TimeoutKind::Precommit => (self.precommit_ms, self.precommit_delta_ms),
            TimeoutKind::Rebroadcast => (self.rebroadcast_ms, 0),
        };
        base.saturating_add(delta.saturating_mul(r))
            .min(self.max_ms)
    }
}

/// What a consensus instance needs to know beyond its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub chain_id: ChainId,
    pub timeouts: TimeoutConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_and_are_capped() {
        let t = TimeoutConfig::default();
        assert_eq!(t.duration_ms(TimeoutKind::Propose, Round(0)), 1_000);
        assert_eq!(t.duration_ms(TimeoutKind::Propose, Round(2)), 2_000);
        assert_eq!(t.duration_ms(TimeoutKind::Prevote, Round(4)), 1_500);
        assert_eq!(
            t.duration_ms(TimeoutKind::Precommit, Round(u32::MAX)),
            30_000
        );
        assert_eq!(t.duration_ms(TimeoutKind::Rebroadcast, Round(9)), 1_000);
    }
}
