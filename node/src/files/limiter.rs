//! Upload bandwidth: token buckets per peer and for the node as a whole,
//! so serving files never crowds out consensus traffic on the same
//! connections. A piece waits (asynchronously) until both buckets have
//! room for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// A bucket refilled at `rate` bytes a second, holding at most `burst`.
#[derive(Debug)]
struct Bucket {
    rate: u64,
    burst: f64,
    /// May go negative: a reservation is paid for by waiting.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64, burst: u64, now: Instant) -> Bucket {
        Bucket {
            rate,
            burst: burst as f64,
            tokens: burst as f64,
            at: now,
        }
    }

    /// Takes `bytes`; how long to wait until they are paid for.
    fn reserve(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }
}

/// Upload limits: bytes a second in total and per peer (0: unlimited).
#[derive(Debug)]
pub struct UploadLimiter {
    peer_rate: u64,
    burst: u64,
    state: Mutex<(Bucket, HashMap<PeerId, Bucket>)>,
}

impl UploadLimiter {
    pub fn new(total_rate: u64, peer_rate: u64, burst: u64) -> UploadLimiter {
        let now = Instant::now();
        UploadLimiter {
            peer_rate,
            burst,
            state: Mutex::new((Bucket::new(total_rate, burst, now), HashMap::new())),
        }
    }

    /// How long sending `bytes` to `peer` must wait; the bytes are
    /// counted now.
    pub fn reserve(&self, peer: PeerId, bytes: u64) -> Duration {
        let now = Instant::now();
        let Ok(mut guard) = self.state.lock() else {
            return Duration::ZERO;
        };
        let (total, peers) = &mut *guard;
        let wait_total = total.reserve(bytes, now);
        // Forget idle peers' buckets (they are full again by now anyway).
        if peers.len() > 1024 {
            peers.retain(|_, b| now.saturating_duration_since(b.at) < Duration::from_secs(60));
        }
        let wait_peer = peers
            .entry(peer)
            .or_insert_with(|| Bucket::new(self.peer_rate, self.burst, now))
            .reserve(bytes, now);
        wait_total.max(wait_peer)
    }

    /// Waits until `bytes` may go to `peer`.
    pub async fn acquire(&self, peer: PeerId, bytes: u64) {
        let wait = self.reserve(peer, bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_peer_waits_in_proportion_and_others_share_the_total() {
        let l = UploadLimiter::new(8_000_000, 4_000_000, 1_000_000);
        let a = PeerId::random();
        let b = PeerId::random();
        // The burst goes at once; then 4 MB/s for this peer.
        assert_eq!(l.reserve(a, 1_000_000), Duration::ZERO);
        let w = l.reserve(a, 1_000_000);
        assert!(
            w >= Duration::from_millis(240) && w <= Duration::from_millis(260),
            "{w:?}"
        );
        // Peer b has its own bucket, but the total is spent by now.
        let w = l.reserve(b, 1_000_000);
        assert!(w >= Duration::from_millis(120), "{w:?}");
        let unlimited = UploadLimiter::new(0, 0, 1);
        for _ in 0..10 {
            assert_eq!(unlimited.reserve(a, 1 << 30), Duration::ZERO);
        }
    }
}
