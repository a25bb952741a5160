//! Prometheus metrics, served on their own port (`GET /metrics`).

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Computes the node's health (for `GET /health` on the metrics port).
pub type HealthCheck = Arc<dyn Fn() -> palisade_rpc::types::Health + Send + Sync>;

/// Reads the ledger's size per column family at scrape time: (name, live
/// SST bytes, memtable bytes).
pub type DiskUsage = Arc<dyn Fn() -> Vec<(String, u64, u64)> + Send + Sync>;

/// Every reason peer traffic is dropped for (`palisade_p2p_dropped_total`),
/// exported at 0 from the start so a rate over them works before the
/// first drop.
pub const DROP_REASONS: [&str; 7] = [
    "consensus_rate",
    "consensus_bytes",
    "txs_rate",
    "txs_bytes",
    "sync_rate",
    "blob_rate",
    "queue_full",
];

/// Every reason a peer is penalized for (`palisade_p2p_penalties_total`),
/// exported at 0 from the start.
pub const PENALTY_REASONS: [&str; 6] = [
    "undecodable",
    "bad_signature",
    "invalid_tx_batch",
    "sync_bad_response",
    "sync_bad_certificate",
    "bad_file_piece",
];

/// Every reason a file piece request is refused for
/// (`palisade_file_refusals_total`), exported at 0 from the start.
pub const FILE_REFUSALS: [&str; 6] = [
    "unknown",
    "withdrawn",
    "not_a_reader",
    "bad_permit",
    "not_held",
    "busy",
];

/// Histograms labelled by driver step.
pub type StepHistograms = Family<Vec<(String, String)>, Histogram, fn() -> Histogram>;

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub block_interval: Histogram,
    pub txs_committed: Counter,
    pub txs_refused: Counter,
    pub blocks_committed: Counter,
    pub blocks_synced: Counter,
    pub mempool_txs: Gauge,
    pub mempool_bytes: Gauge,
    pub peers: Gauge,
    pub sync_target: Gauge,
    pub syncing: Gauge,
    pub rpc_requests: Family<Vec<(String, String)>, Counter>,
    pub signer_saves: Counter,
    pub evidence: Counter,
    pub rejected_blocks: Counter,
    pub gossip_txs_known: Counter,
    pub gossip_sigs_skipped: Counter,
    /// Peer traffic dropped unprocessed, by `reason`.
    pub p2p_dropped: Family<Vec<(String, String)>, Counter>,
    /// Peers disconnected and banned, by `reason`.
    pub p2p_penalties: Family<Vec<(String, String)>, Counter>,
    /// Time the driver spends in each step of a height, by `step`.
    pub block_steps: StepHistograms,
    /// Heights decided in a round above 0 (a proposer was down or slow).
    pub late_rounds: Counter,
    /// Admission into this node's mempool to the commit of the block.
    pub tx_latency: Histogram,
    /// File piece bytes sent to peers (encodings, proofs included).
    pub file_upload_bytes: Counter,
    /// File piece bytes received that verified.
    pub file_download_bytes: Counter,
    /// Piece requests refused, by `reason`.
    pub file_refusals: Family<Vec<(String, String)>, Counter>,
    disk: DiskWatch,
}

/// Where [`Metrics::render`] reads the ledger's size from, once set.
#[derive(Default)]
struct DiskWatch(OnceLock<DiskUsage>);

impl std::fmt::Debug for DiskWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiskWatch")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The network counts its drops and penalties into these metrics.
impl palisade_network::NetworkMetrics for Metrics {
    fn count_drop(&self, reason: &str) {
        Metrics::count_drop(self, reason);
    }
    fn count_penalty(&self, reason: &str) {
        Metrics::count_penalty(self, reason);
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("palisade");
        let m = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            block_interval: Histogram::new([
                0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0,
            ]),
            txs_committed: Counter::default(),
            txs_refused: Counter::default(),
            blocks_committed: Counter::default(),
            blocks_synced: Counter::default(),
            mempool_txs: Gauge::default(),
            mempool_bytes: Gauge::default(),
            peers: Gauge::default(),
            sync_target: Gauge::default(),
            syncing: Gauge::default(),
            rpc_requests: Family::default(),
            signer_saves: Counter::default(),
            evidence: Counter::default(),
            rejected_blocks: Counter::default(),
            gossip_txs_known: Counter::default(),
            gossip_sigs_skipped: Counter::default(),
            p2p_dropped: Family::default(),
            p2p_penalties: Family::default(),
            block_steps: Family::new_with_constructor(step_histogram),
            late_rounds: Counter::default(),
            tx_latency: Histogram::new([
                0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
            ]),
            file_upload_bytes: Counter::default(),
            file_download_bytes: Counter::default(),
            file_refusals: Family::default(),
            disk: DiskWatch::default(),
            registry: Registry::default(),
        };
        m.count_reasons_at_zero();
        m.register_chain(&mut registry);
        m.register_status(&mut registry);
        m.register_safety(&mut registry);
        m.register_p2p(&mut registry);
        m.register_timing(&mut registry);
        m.register_files(&mut registry);
        Metrics { registry, ..m }
    }

    /// Every reason label of the drop, refusal and penalty counters, at
    /// 0, so a rate over them works before the first count.
    fn count_reasons_at_zero(&self) {
        for reason in DROP_REASONS {
            self.count_drop_by(reason, 0);
        }
        for reason in FILE_REFUSALS {
            self.count_file_refusal_by(reason, 0);
        }
        for reason in PENALTY_REASONS {
            self.p2p_penalties
                .get_or_create(&vec![("reason".to_string(), reason.to_string())])
                .inc_by(0);
        }
    }

    /// The chain as this node commits it.
    fn register_chain(&self, registry: &mut Registry) {
        registry.register("height", "Last committed block height", self.height.clone());
        registry.register(
            "round",
            "Consensus round of the current height",
            self.round.clone(),
        );
        registry.register(
            "block_interval_seconds",
            "Time between consecutive committed blocks",
            self.block_interval.clone(),
        );
        registry.register(
            "txs_committed",
            "Transactions committed",
            self.txs_committed.clone(),
        );
        registry.register(
            "txs_refused",
            "Transactions blocks carried that execution refused (not committed, no effect: a nonce out of turn, a role revoked earlier in the block, or a Byzantine proposer's filler)",
            self.txs_refused.clone(),
        );
        registry.register(
            "blocks_committed",
            "Blocks committed",
            self.blocks_committed.clone(),
        );
        registry.register(
        "blocks_synced",
        "Blocks committed from block sync (fetched with their certificate) rather than decided in consensus here",
        self.blocks_synced.clone(),
    );
    }

    /// What the node holds and serves now: its pool, peers, sync and RPC load.
    fn register_status(&self, registry: &mut Registry) {
        registry.register(
            "mempool_txs",
            "Transactions in the mempool",
            self.mempool_txs.clone(),
        );
        registry.register(
            "mempool_bytes",
            "Bytes in the mempool",
            self.mempool_bytes.clone(),
        );
        registry.register("peers", "Connected peers", self.peers.clone());
        registry.register(
            "sync_target_height",
            "Highest height reported by a peer",
            self.sync_target.clone(),
        );
        registry.register(
            "syncing",
            "1 while block sync is fetching blocks",
            self.syncing.clone(),
        );
        registry.register(
            "rpc_requests",
            "JSON-RPC requests by method",
            self.rpc_requests.clone(),
        );
    }

    /// Consensus safety and the checks gossip skips.
    fn register_safety(&self, registry: &mut Registry) {
        registry.register(
            "signer_state_saves",
            "Signer-state fsyncs before a vote or proposal was sent",
            self.signer_saves.clone(),
        );
        registry.register("evidence", "Equivocations detected", self.evidence.clone());
        registry.register(
            "rejected_blocks",
            "Proposed blocks that failed validation",
            self.rejected_blocks.clone(),
        );
        registry.register(
            "gossip_txs_known",
            "Gossiped transactions dropped before their signature check: already pooled",
            self.gossip_txs_known.clone(),
        );
        registry.register(
        "gossip_sigs_skipped",
        "Gossiped transactions whose signature was not checked again: verified already while validating a block, or committed",
        self.gossip_sigs_skipped.clone(),
    );
    }

    /// What peers cost: traffic dropped and peers banned.
    fn register_p2p(&self, registry: &mut Registry) {
        registry.register(
        "p2p_dropped",
        "Peer messages dropped unprocessed, by reason: consensus_rate, consensus_bytes, txs_rate, txs_bytes, sync_rate, blob_rate (over the peer's rate limit), queue_full (the node is behind)",
        self.p2p_dropped.clone(),
    );
        registry.register(
        "p2p_penalties",
        "Peers disconnected and banned for a while, by reason: undecodable, bad_signature, invalid_tx_batch, sync_bad_response, sync_bad_certificate, bad_file_piece",
        self.p2p_penalties.clone(),
    );
    }

    /// Where a height's time goes, and a transaction's.
    fn register_timing(&self, registry: &mut Registry) {
        registry.register(
        "block_step_seconds",
        "Time the consensus driver spent per height in a step: propose (build our proposal from the pool), validate (check a peer's before voting), decide (height start to decision), execute (run the decided block), commit (write the block and state), mempool_update (drop committed, re-check affected)",
        self.block_steps.clone(),
    );
        registry.register(
            "late_rounds",
            "Heights decided in a round above 0 (the round-0 proposer was down, slow or refused)",
            self.late_rounds.clone(),
        );
        registry.register(
        "tx_commit_latency_seconds",
        "Time from a transaction's admission into this node's mempool (by RPC or gossip) to the commit of its block",
        self.tx_latency.clone(),
    );
    }

    /// File sharing with peers.
    fn register_files(&self, registry: &mut Registry) {
        registry.register(
            "file_upload_bytes",
            "File piece bytes sent to peers (their proofs included)",
            self.file_upload_bytes.clone(),
        );
        registry.register(
            "file_download_bytes",
            "File piece bytes received from peers that verified",
            self.file_download_bytes.clone(),
        );
        registry.register(
        "file_refusals",
        "File piece requests refused, by reason: unknown, withdrawn, not_a_reader, bad_permit, not_held, busy",
        self.file_refusals.clone(),
    );
    }

    pub fn count_file_upload(&self, bytes: u64) {
        self.file_upload_bytes.inc_by(bytes);
    }

    pub fn count_file_download(&self, bytes: u64) {
        self.file_download_bytes.inc_by(bytes);
    }

    /// Counts a piece request refused for `reason`.
    pub fn count_file_refusal(&self, reason: &str) {
        self.count_file_refusal_by(reason, 1);
    }

    fn count_file_refusal_by(&self, reason: &str, n: u64) {
        self.file_refusals
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc_by(n);
    }

    /// Reports the ledger's size with every scrape.
    pub fn watch_disk(&self, usage: DiskUsage) {
        let _ = self.disk.0.set(usage);
    }

    /// Records `secs` for driver step `step`.
    pub fn observe_step(&self, step: &str, secs: f64) {
        self.block_steps
            .get_or_create(&vec![("step".to_string(), step.to_string())])
            .observe(secs);
    }

    /// Counts peer traffic dropped for `reason`.
    pub fn count_drop(&self, reason: &str) {
        self.count_drop_by(reason, 1);
    }

    fn count_drop_by(&self, reason: &str, n: u64) {
        self.p2p_dropped
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc_by(n);
    }

    /// Counts a peer penalized for `reason`.
    pub fn count_penalty(&self, reason: &str) {
        self.p2p_penalties
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    /// The text exposition format, with this process's CPU time, memory
    /// and disk writes appended (read from /proc at scrape time).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let body = out.trim_end().strip_suffix("# EOF").map(str::to_string);
        let mut out = body.unwrap_or(out);
        if let Some(p) = ProcessStats::read() {
            out.push_str(&format!(
                "# HELP palisade_process_cpu_seconds CPU time (user + system) of the node process.\n\
                 # TYPE palisade_process_cpu_seconds counter\n\
                 palisade_process_cpu_seconds_total {:.3}\n\
                 # HELP palisade_process_resident_memory_bytes Resident memory of the node process.\n\
                 # TYPE palisade_process_resident_memory_bytes gauge\n\
                 palisade_process_resident_memory_bytes {}\n\
                 # HELP palisade_process_disk_written_bytes Bytes the node process caused to be written to storage.\n\
                 # TYPE palisade_process_disk_written_bytes counter\n\
                 palisade_process_disk_written_bytes_total {}\n",
                p.cpu_seconds, p.rss_bytes, p.disk_written_bytes
            ));
        }
        if let Some(usage) = self.disk.0.get() {
            out.push_str(&disk_text(&usage()));
        }
        out.push_str("# EOF\n");
        out
    }
}

/// The ledger's size per column family in the text format.
fn disk_text(cfs: &[(String, u64, u64)]) -> String {
    let mut out = String::from(
        "# HELP palisade_disk_bytes Bytes of the ledger's live SST files on disk, by column family.\n\
         # TYPE palisade_disk_bytes gauge\n",
    );
    for (cf, sst, _) in cfs {
        out.push_str(&format!("palisade_disk_bytes{{cf=\"{cf}\"}} {sst}\n"));
    }
    out.push_str(
        "# HELP palisade_memtable_bytes Bytes of the ledger's memtables (not yet flushed), by column family.\n\
         # TYPE palisade_memtable_bytes gauge\n",
    );
    for (cf, _, mem) in cfs {
        out.push_str(&format!("palisade_memtable_bytes{{cf=\"{cf}\"}} {mem}\n"));
    }
    out
}

/// Resource use of this process, from /proc (Linux only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub disk_written_bytes: u64,
}

impl ProcessStats {
    pub fn read() -> Option<ProcessStats> {
        // The process's CPU clock counts nanoseconds, all threads included
        // (`/proc/self/stat` counts 10 ms ticks: a short measurement could
        // read zero).
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let cpu_seconds = t.tv_sec as f64 + t.tv_nsec as f64 / 1e9;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let disk_written_bytes = io
            .lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Some(ProcessStats {
            cpu_seconds,
            rss_bytes: rss_kb * 1024,
            disk_written_bytes,
        })
    }
}

fn step_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

/// Converts a height (or any counter kept as `u64`) for a gauge.
pub fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Serves `GET /metrics` (and `GET /health`) on `listener` until the
/// task is dropped. Requests are read with a size and time bound.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: HealthCheck) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            // Out of descriptors, say: wait a little instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0usize;
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            n += k;
                            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let line = head.lines().next().unwrap_or("");
            let (status, ctype, body) = match line.split_whitespace().take(2).collect::<Vec<_>>()[..]
            {
                ["GET", "/metrics"] => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics.render(),
                ),
                // The node's health, as on the RPC port: 503 when unhealthy.
                ["GET", "/health"] => {
                    let h = tokio::task::spawn_blocking(move || health())
                        .await
                        .ok()
                        .and_then(|h| serde_json::to_string(&h).ok().map(|j| (h.ok, j)));
                    match h {
                        Some((true, json)) => ("200 OK", "application/json", json + "\n"),
                        Some((false, json)) => {
                            ("503 Service Unavailable", "application/json", json + "\n")
                        }
                        None => (
                            "503 Service Unavailable",
                            "text/plain",
                            "health check failed\n".to_string(),
                        ),
                    }
                }
                ["GET", _] => ("404 Not Found", "text/plain", "not found\n".to_string()),
                _ => ("400 Bad Request", "text/plain", "bad request\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_network::NetworkMetrics;

    /// What the network counts through its trait shows in the exposition,
    /// by reason.
    #[test]
    fn network_drops_and_penalties_are_exported_by_reason() {
        let m = Metrics::new();
        let net: &dyn NetworkMetrics = &m;
        net.count_drop("sync_rate");
        net.count_drop("sync_rate");
        net.count_penalty("bad_signature");
        let text = m.render();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(
            has("palisade_p2p_dropped_total{reason=\"sync_rate\"} 2"),
            "{text}"
        );
        assert!(
            has("palisade_p2p_penalties_total{reason=\"bad_signature\"} 1"),
            "{text}"
        );
    }
}
