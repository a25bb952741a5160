//! Seeded fault schedules: every randomized choice a scenario makes (which
//! node, in what order, after how long) comes from one logged seed, so a
//! failing run can be replayed exactly with `PALISADE_FAULT_SEED`.

/// A small deterministic generator (xorshift64*) for fault schedules. Not
/// for anything cryptographic.
#[derive(Debug, Clone)]
pub struct FaultRng {
    seed: u64,
    state: u64,
}

impl FaultRng {
    /// The seed from `PALISADE_FAULT_SEED`, or the clock; printed either
    /// way with the scenario's name so the log says how to replay it.
    pub fn from_env(scenario: &str) -> FaultRng {
        let seed = std::env::var("PALISADE_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!(
            "fault schedule seed for {scenario}: {seed} (replay with PALISADE_FAULT_SEED={seed})"
        );
        FaultRng::new(seed)
    }

    pub fn new(seed: u64) -> FaultRng {
        FaultRng {
            seed,
            // Zero is a fixed point of xorshift; any other start is fine.
            state: seed.max(1),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` (`n` > 0); schedules need variety, not
    /// statistical quality.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration in `lo..=hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> std::time::Duration {
        std::time::Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for k in (1..items.len()).rev() {
            let j = self.below(k as u64 + 1) as usize;
            items.swap(k, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let draw = |seed| {
            let mut r = FaultRng::new(seed);
            let mut v: Vec<u32> = (0..8).collect();
            r.shuffle(&mut v);
            (v, r.below(1000), r.millis(10, 20))
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        let (v, b, m) = draw(7);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        assert!(b < 1000);
        assert!((10..=20).contains(&(m.as_millis() as u64)));
    }
}
