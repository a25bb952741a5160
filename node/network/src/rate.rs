//! Per-peer rate limits on what a peer makes this node do: gossip messages
//! and bytes it relays (per topic) and sync requests it sends. An
//! allowlisted peer is trusted to connect, not to take the whole node:
//! past its limits its messages are dropped unforwarded (not penalized, as
//! an honest relay can briefly exceed them) and counted by reason.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Limits per peer (`[p2p.rate_limits]` in config.toml). Each is a token
/// bucket that refills at the rate and holds [`BURST_SECONDS`] of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerLimits {
    /// Consensus messages (proposals and votes) relayed per second.
    pub consensus_msgs_per_s: u64,
    /// Consensus bytes per second; the burst must hold a full-size proposal.
    pub consensus_bytes_per_s: u64,
    /// Transaction batches per second.
    pub tx_batches_per_s: u64,
    /// Transaction batch bytes per second.
    pub tx_bytes_per_s: u64,
    /// Sync requests served per second.
    pub sync_requests_per_s: u64,
    /// File piece and holding requests served per second (a piece is 1
    /// MiB: 2,000 a second is 2 GB/s, more than a node uploads).
    pub blob_requests_per_s: u64,
}

/// Seconds of traffic a bucket holds.
pub const BURST_SECONDS: f64 = 2.0;

impl Default for PeerLimits {
    /// Several times what one peer relays on a loaded network: about 1,000
    /// votes a second on a 100-validator set at 5 heights a second; a
    /// gossip message is charged only to the first peer it comes from, so
    /// a peer relays at most every batch of the network (each node
    /// publishes up to 100 a second), about 2 MB/s of transactions at
    /// 13,000 tx/s; a syncing peer asks 8 ranges at a time.
    fn default() -> Self {
        PeerLimits {
            consensus_msgs_per_s: 5_000,
            consensus_bytes_per_s: 32 * 1024 * 1024,
            tx_batches_per_s: 5_000,
            tx_bytes_per_s: 32 * 1024 * 1024,
            sync_requests_per_s: 50,
            blob_requests_per_s: 2_000,
        }
    }
}

impl PeerLimits {
    /// Checks the limits leave room for honest traffic.
    pub fn validate(&self) -> Result<(), String> {
        let min_burst = (crate::wire::MAX_CONSENSUS_MSG_BYTES as f64 / BURST_SECONDS) as u64;
        if self.consensus_bytes_per_s < min_burst {
            return Err(format!(
                "p2p.rate_limits.consensus_bytes_per_s must be at least {min_burst} (a full-size proposal in a {BURST_SECONDS} s burst)"
            ));
        }
        let min_tx = (crate::wire::MAX_TX_BATCH_BYTES as f64 / BURST_SECONDS) as u64;
        if self.tx_bytes_per_s < min_tx {
            return Err(format!(
                "p2p.rate_limits.tx_bytes_per_s must be at least {min_tx} (a full transaction batch in a {BURST_SECONDS} s burst)"
            ));
        }
        if self.consensus_msgs_per_s == 0
            || self.tx_batches_per_s == 0
            || self.sync_requests_per_s == 0
            || self.blob_requests_per_s == 0
        {
            return Err("p2p.rate_limits: message and request rates must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate as f64;
        let burst = rate * BURST_SECONDS;
        Bucket {
            tokens: burst,
            rate,
            burst,
            last: now,
        }
    }

    /// Refills, then takes `n` tokens if there are that many.
    fn take(&mut self, n: f64, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// What a peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    Consensus { bytes: usize },
    TxBatch { bytes: usize },
    SyncRequest,
    BlobRequest,
}

/// Why something was dropped: the label of `palisade_p2p_dropped_total`.
pub type DropReason = &'static str;

#[derive(Debug)]
struct PeerBuckets {
    consensus_msgs: Bucket,
    consensus_bytes: Bucket,
    tx_batches: Bucket,
    tx_bytes: Bucket,
    sync: Bucket,
    blob: Bucket,
}

/// The buckets of every connected peer.
#[derive(Debug)]
pub struct RateLimiter {
    limits: PeerLimits,
    peers: HashMap<PeerId, PeerBuckets>,
}

impl RateLimiter {
    pub fn new(limits: PeerLimits) -> RateLimiter {
        RateLimiter {
            limits,
            peers: HashMap::new(),
        }
    }

    /// Charges `traffic` to `peer`; `Err` names the limit it is over.
    /// A message over its byte limit takes no message token and the other
    /// way round, so a dropped message costs the peer nothing more.
    pub fn check(
        &mut self,
        peer: PeerId,
        traffic: Traffic,
        now: Instant,
    ) -> Result<(), DropReason> {
        let l = self.limits;
        let b = self.peers.entry(peer).or_insert_with(|| PeerBuckets {
            consensus_msgs: Bucket::new(l.consensus_msgs_per_s, now),
            consensus_bytes: Bucket::new(l.consensus_bytes_per_s, now),
            tx_batches: Bucket::new(l.tx_batches_per_s, now),
            tx_bytes: Bucket::new(l.tx_bytes_per_s, now),
            sync: Bucket::new(l.sync_requests_per_s, now),
            blob: Bucket::new(l.blob_requests_per_s, now),
        });
        let (count, bytes, n, what) = match traffic {
            Traffic::Consensus { bytes } => (
                &mut b.consensus_msgs,
                Some(&mut b.consensus_bytes),
                bytes,
                ("consensus_rate", "consensus_bytes"),
            ),
            Traffic::TxBatch { bytes } => (
                &mut b.tx_batches,
                Some(&mut b.tx_bytes),
                bytes,
                ("txs_rate", "txs_bytes"),
            ),
            Traffic::SyncRequest => (&mut b.sync, None, 0, ("sync_rate", "sync_rate")),
            Traffic::BlobRequest => (&mut b.blob, None, 0, ("blob_rate", "blob_rate")),
        };
        let mut probe = *count;
        if !probe.take(1.0, now) {
            *count = probe;
            return Err(what.0);
        }
        if let Some(bytes) = bytes {
            // A message bigger than the whole burst could never pass:
            // charge at most a full bucket for it.
            if !bytes.take((n as f64).min(bytes.burst), now) {
                return Err(what.1);
            }
        }
        *count = probe;
        Ok(())
    }

    /// Forgets a disconnected peer.
    pub fn remove(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_peer_over_its_rate_is_refused_until_the_bucket_refills() {
        let limits = PeerLimits {
            sync_requests_per_s: 10,
            ..PeerLimits::default()
        };
        let mut r = RateLimiter::new(limits);
        let p = PeerId::random();
        let t0 = Instant::now();
        let passed = (0..100)
            .filter(|_| r.check(p, Traffic::SyncRequest, t0).is_ok())
            .count();
        assert_eq!(passed, 20, "the burst is two seconds' worth");
        assert_eq!(r.check(p, Traffic::SyncRequest, t0), Err("sync_rate"));
        // Another peer has its own bucket.
        assert!(r.check(PeerId::random(), Traffic::SyncRequest, t0).is_ok());
        let later = t0 + Duration::from_millis(500);
        let passed = (0..100)
            .filter(|_| r.check(p, Traffic::SyncRequest, later).is_ok())
            .count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn bytes_are_limited_apart_from_messages() {
        let limits = PeerLimits {
            tx_bytes_per_s: 1_000,
            ..PeerLimits::default()
        };
        let mut r = RateLimiter::new(limits);
        let p = PeerId::random();
        let t0 = Instant::now();
        assert!(r.check(p, Traffic::TxBatch { bytes: 1_500 }, t0).is_ok());
        assert_eq!(
            r.check(p, Traffic::TxBatch { bytes: 600 }, t0),
            Err("txs_bytes")
        );
        assert!(r.check(p, Traffic::TxBatch { bytes: 400 }, t0).is_ok());
        // Consensus traffic has its own buckets.
        assert!(r.check(p, Traffic::Consensus { bytes: 600 }, t0).is_ok());
    }
}
