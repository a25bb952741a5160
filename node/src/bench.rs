//! `palisade bench`: a load generator that measures a running network as
//! its users see it.
//!
//! Transfers from many well-known accounts (funded by `palisade testnet
//! --bench-accounts N`) are signed before the clock starts, then submitted
//! open-loop at a fixed rate in groups (a JSON-RPC batch of `tx_submit`
//! calls each, or with `--submit-batch` one `tx_submitBatch` call) spread
//! over every node.
//! Each committed block is seen through a `chain_subscribeNewHeads`
//! WebSocket subscription (and its transactions through
//! `chain_getBlockTxHashes`); a transaction's latency is from the moment its
//! batch was sent to the moment the head of the block holding it arrived.
//! Node resource use (CPU seconds, RSS, bytes written) comes from each
//! node's metrics endpoint, read before and after.
//!
//! `--workload erc20` offers ERC-20 `transfer` calls instead, signed by
//! secp256k1 accounts and sent with `eth_sendRawTransaction`
//! ([`crate::bench_erc20`]); the method and the report are the same.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use palisade_rpc::types::{BlockId, HeadResponse, SubmitOutcome};
use palisade_rpc::PalisadeApiClient;
use palisade_types::{encode, sha256, Action, ChainId, Hash, Keypair, Transaction};
use serde::Serialize;

use crate::metrics::ProcessStats;

/// Load-test account `i`: its key derives from a public string.
pub fn bench_account(i: u32) -> Keypair {
    Keypair::from_seed(sha256(format!("palisade bench account {i}").as_bytes()).0)
}

/// What the load is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Native transfers signed with ed25519.
    Transfer,
    /// ERC-20 `transfer` calls in Ethereum transactions (EIP-1559,
    /// secp256k1).
    Erc20,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Native transfers, or ERC-20 transfers sent as Ethereum
    /// transactions (the token is deployed and handed out first).
    #[arg(long, value_enum, default_value_t = Workload::Transfer)]
    pub workload: Workload,
    /// JSON-RPC endpoints (host:port, comma separated); batches go to them
    /// in turn.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:8545")]
    pub rpc: Vec<String>,
    /// Metrics endpoints (host:port) of the nodes whose resource use to report.
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Sending accounts (bench accounts 0..N must be funded members).
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u32,
    /// Offered load, transactions per second.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// How long to offer it, seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Transactions per request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Send each group as one `tx_submitBatch` call (one batch signature
    /// check) instead of a JSON-RPC batch of `tx_submit` calls.
    #[arg(long)]
    pub submit_batch: bool,
    /// How long to wait for the last transactions to commit, seconds.
    #[arg(long, default_value_t = 20)]
    pub drain_s: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub workload: Workload,
    pub offered_tps: f64,
    pub sent: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub committed: usize,
    /// Transactions committed per second while the load was offered (after
    /// a warm-up second).
    pub committed_tps: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub blocks: u64,
    pub blocks_per_s: f64,
    pub cpu_s_per_1000_tx_per_node: Option<f64>,
    pub max_rss_mib: Option<f64>,
    pub disk_bytes_per_tx_per_node: Option<f64>,
    /// CPU seconds this load generator used over the same window as the
    /// nodes' figures (submitting, receipts, latency bookkeeping; signing
    /// came before it). On a machine it shares with the nodes, that is CPU
    /// they did not have.
    pub generator_cpu_s: Option<f64>,
    /// ERC-20 load: of up to 1,000 committed transfers checked, how many
    /// failed (reverted); must be 0.
    pub failed_in_sample: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeSample {
    cpu: f64,
    rss: f64,
    disk: f64,
}

fn scrape(addr: &str) -> Option<NodeSample> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.take(16 * 1024 * 1024).read_to_string(&mut text).ok()?;
    let get = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some(NodeSample {
        cpu: get("palisade_process_cpu_seconds_total")?,
        rss: get("palisade_process_resident_memory_bytes")?,
        disk: get("palisade_process_disk_written_bytes_total")?,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `palisade bench`
pub fn bench(a: BenchArgs) -> Result<()> {
    if a.rpc.is_empty() || a.rate == 0 || a.duration_s == 0 || a.accounts == 0 || a.batch == 0 {
        bail!("--rpc, --rate, --duration-s, --accounts and --batch must be non-empty and positive");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let report = rt.block_on(run(&a))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |x| format!("{x:.2}{unit}"));
        println!("workload     {:?}", report.workload);
        println!(
            "offered      {:.0} tx/s ({} sent, {} accepted, {} rejected)",
            report.offered_tps, report.sent, report.accepted, report.rejected
        );
        println!(
            "committed    {:.0} tx/s ({} txs)",
            report.committed_tps, report.committed
        );
        println!(
            "latency      p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms (submit -> head of its block)",
            report.latency_ms_p50, report.latency_ms_p95, report.latency_ms_p99
        );
        println!(
            "blocks       {} ({:.2}/s)",
            report.blocks, report.blocks_per_s
        );
        println!(
            "cpu          {} per 1,000 committed txs per node",
            opt(report.cpu_s_per_1000_tx_per_node, " s")
        );
        println!("memory       {} max RSS", opt(report.max_rss_mib, " MiB"));
        println!(
            "disk         {} written per committed tx per node",
            opt(report.disk_bytes_per_tx_per_node, " B")
        );
        println!(
            "generator    {} CPU (this process, same window)",
            opt(report.generator_cpu_s, " s")
        );
        if let Some(f) = report.failed_in_sample {
            println!("receipts     {f} failed of a sample of committed transfers");
        }
    }
    if report.failed_in_sample.is_some_and(|f| f > 0) {
        bail!("committed transfers failed: the measured load did not do what it should");
    }
    Ok(())
}

/// Native transfers from the first `senders` bench accounts, signed.
async fn sign_transfers(
    first: &jsonrpsee::http_client::HttpClient,
    chain_id: &ChainId,
    senders: usize,
    total: usize,
    a: &BenchArgs,
) -> Result<Vec<(Hash, String)>> {
    // Nonces of the senders, fetched in batches.
    eprintln!("bench: reading {senders} account nonces");
    let keys: Vec<Keypair> = (0..senders as u32).map(bench_account).collect();
    let mut nonces = Vec::with_capacity(senders);
    for chunk in keys.chunks(50) {
        let mut b = BatchRequestBuilder::new();
        for k in chunk {
            b.insert("state_getAccount", rpc_params![k.address()])
                .map_err(|e| anyhow!("{e}"))?;
        }
        let resp = first
            .batch_request::<palisade_rpc::types::AccountResponse>(b)
            .await
            .map_err(|e| anyhow!("state_getAccount: {e}"))?;
        for r in resp.into_iter() {
            let acct = r.map_err(|e| anyhow!("state_getAccount: {}", e.message()))?;
            if !acct.exists || !acct.roles.contains(&palisade_types::Role::Member) {
                bail!(
                    "bench account {} is not a funded member: start the network with \
                     `palisade testnet --bench-accounts {}` (or devnet)",
                    acct.address,
                    a.accounts
                );
            }
            nonces.push(acct.nonce);
        }
    }

    eprintln!("bench: signing {total} transfers from {senders} accounts");
    Ok((0..total)
        .map(|j| {
            let s = j % senders;
            let to = keys[(s + 1) % senders].address();
            let tx = Transaction {
                chain_id: chain_id.clone(),
                nonce: nonces[s] + (j / senders) as u64,
                signer: keys[s].address(),
                action: Action::Transfer { to, amount: 1 },
            }
            .sign(&keys[s]);
            let bytes = encode(&tx);
            (sha256(&bytes), format!("0x{}", hex::encode(bytes)))
        })
        .collect())
}

async fn run(a: &BenchArgs) -> Result<BenchReport> {
    let clients = connect(a)?;
    let first = &clients[0];
    let status = first
        .system_status()
        .await
        .map_err(|e| anyhow!("{}: {e}", a.rpc[0]))?;
    let chain_id = ChainId::new(status.chain_id.clone()).map_err(|e| anyhow!("{e}"))?;
    let total = usize::try_from(a.rate.saturating_mul(a.duration_s)).unwrap_or(usize::MAX);
    let senders = (a.accounts as usize).min(total).max(1);

    let (txs, erc20) = match a.workload {
        Workload::Transfer => (
            sign_transfers(first, &chain_id, senders, total, a).await?,
            None,
        ),
        Workload::Erc20 => {
            let setup = crate::bench_erc20::prepare(first, senders).await?;
            eprintln!("bench: signing {total} ERC-20 transfers from {senders} accounts");
            (crate::bench_erc20::sign_load(&setup, total), Some(setup))
        }
    };

    let watch = CommitWatch::start(&a.rpc[0], first.clone()).await?;
    let before: Vec<Option<NodeSample>> = a.metrics.iter().map(|m| scrape(m)).collect();
    let generator_before = ProcessStats::read();
    let start_height = first.chain_get_height().await.map_err(|e| anyhow!("{e}"))?;
    let offered = offer(a, &clients, &txs).await;
    watch.drain(offered.accepted, a.drain_s).await;
    let after: Vec<Option<NodeSample>> = a.metrics.iter().map(|m| scrape(m)).collect();
    let generator_after = ProcessStats::read();
    let end_height = first.chain_get_height().await.map_err(|e| anyhow!("{e}"))?;
    let committed = watch.stop()?;

    let failed_in_sample = match &erc20 {
        Some(_) => {
            let sample: Vec<Hash> = committed
                .keys()
                .filter(|h| offered.sent_at.contains_key(h))
                .take(1_000)
                .copied()
                .collect();
            Some(crate::bench_erc20::failed_receipts(first, &sample).await?)
        }
        None => None,
    };
    let nodes: Vec<(NodeSample, NodeSample)> = before
        .iter()
        .zip(&after)
        .filter_map(|(b, a)| Some(((*b)?, (*a)?)))
        .collect();
    let blocks = end_height.saturating_sub(start_height);
    let mut report = summarize(a.workload, total, &offered, &committed, &nodes, blocks);
    report.failed_in_sample = failed_in_sample;
    report.generator_cpu_s = generator_before
        .zip(generator_after)
        .map(|(b, a)| a.cpu_seconds - b.cpu_seconds);
    Ok(report)
}

/// One JSON-RPC client per endpoint.
fn connect(a: &BenchArgs) -> Result<Vec<HttpClient>> {
    a.rpc
        .iter()
        .map(|addr| {
            HttpClientBuilder::default()
                .max_request_size(64 * 1024 * 1024)
                .request_timeout(Duration::from_secs(60))
                .build(format!("http://{addr}"))
                .with_context(|| format!("RPC endpoint {addr}"))
        })
        .collect()
}

/// When each transaction was seen committed, from the first node's new
/// heads as they arrive.
struct CommitWatch {
    committed: Arc<Mutex<HashMap<Hash, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CommitWatch {
    async fn start(addr: &str, client: HttpClient) -> Result<CommitWatch> {
        let ws = WsClientBuilder::default()
            .max_buffer_capacity_per_subscription(4096)
            .build(format!("ws://{addr}"))
            .await
            .with_context(|| format!("WebSocket {addr}"))?;
        let mut heads: jsonrpsee::core::client::Subscription<HeadResponse> = ws
            .subscribe(
                "chain_subscribeNewHeads",
                rpc_params![],
                "chain_unsubscribeNewHeads",
            )
            .await
            .map_err(|e| anyhow!("subscribe: {e}"))?;
        let committed: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
        let c = committed.clone();
        let task = tokio::spawn(async move {
            // The subscription lives as long as its client.
            let _ws = ws;
            while let Some(Ok(head)) = heads.next().await {
                let at = Instant::now();
                if head.tx_count == 0 {
                    continue;
                }
                // Hashes only: fetching whole blocks as JSON cost the
                // nodes and this generator (same machine) several percent
                // of the CPU the measurement is about.
                let id = BlockId::Height(head.header.height.get());
                if let Ok(Some(b)) = client.chain_get_block_tx_hashes(id).await {
                    if let Ok(mut c) = c.lock() {
                        // One execution refused is not committed.
                        let kept = b
                            .tx_hashes
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| palisade_runtime::ran_at(&b.refused, *i));
                        for (_, hash) in kept {
                            c.insert(hash, at);
                        }
                    }
                }
            }
        });
        Ok(CommitWatch { committed, task })
    }

    fn seen(&self) -> usize {
        self.committed.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Waits until `accepted` transactions are seen committed, or nothing
    /// new commits for 5 s, bounded by `drain_s`.
    async fn drain(&self, accepted: usize, drain_s: u64) {
        let deadline = Instant::now() + Duration::from_secs(drain_s);
        let mut last = 0;
        let mut last_change = Instant::now();
        while Instant::now() < deadline {
            let n = self.seen();
            if n >= accepted {
                break;
            }
            if n != last {
                last = n;
                last_change = Instant::now();
            } else if last_change.elapsed() > Duration::from_secs(5) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(self) -> Result<HashMap<Hash, Instant>> {
        self.task.abort();
        let c = self.committed.lock().map_err(|_| anyhow!("lock"))?;
        Ok(c.clone())
    }
}

/// What the open loop sent.
struct Offered {
    start: Instant,
    elapsed: Duration,
    accepted: usize,
    sent_at: HashMap<Hash, Instant>,
}

/// The open loop: batch k leaves at start + k * batch / rate, whatever the
/// nodes' answers look like, round-robin over `clients`.
async fn offer(a: &BenchArgs, clients: &[HttpClient], txs: &[(Hash, String)]) -> Offered {
    eprintln!("bench: offering {} tx/s for {} s", a.rate, a.duration_s);
    let start = Instant::now();
    let sent_at: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let inflight = Arc::new(tokio::sync::Semaphore::new(256));
    let method = match (a.workload, a.submit_batch) {
        (Workload::Erc20, _) => "eth_sendRawTransaction",
        (Workload::Transfer, false) => "tx_submit",
        (Workload::Transfer, true) => "tx_submitBatch",
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (k, chunk) in txs.chunks(a.batch).enumerate() {
        let due = start + Duration::from_secs_f64((k * a.batch) as f64 / a.rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break;
        };
        let client = clients[k % clients.len()].clone();
        let chunk: Vec<(Hash, String)> = chunk.to_vec();
        let sent_at = sent_at.clone();
        let accepted = accepted.clone();
        tasks.spawn(async move {
            let now = Instant::now();
            if let Ok(mut m) = sent_at.lock() {
                for (h, _) in &chunk {
                    m.insert(*h, now);
                }
            }
            let ok = submit(&client, method, &chunk).await.unwrap_or(0);
            accepted.fetch_add(ok, Ordering::Relaxed);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let sent_at = sent_at.lock().map(|m| m.clone()).unwrap_or_default();
    Offered {
        start,
        elapsed: start.elapsed(),
        accepted: accepted.load(Ordering::Relaxed),
        sent_at,
    }
}

/// Sends one chunk with `method`; how many the node accepted.
async fn submit(
    client: &HttpClient,
    method: &str,
    chunk: &[(Hash, String)],
) -> Result<usize, jsonrpsee::core::client::Error> {
    if method == "tx_submitBatch" {
        let hexes: Vec<&String> = chunk.iter().map(|(_, hex)| hex).collect();
        let out: Vec<SubmitOutcome> = client.request("tx_submitBatch", rpc_params![hexes]).await?;
        return Ok(out.iter().filter(|o| o.hash.is_some()).count());
    }
    let mut b = BatchRequestBuilder::new();
    for (_, hex) in chunk {
        let _ = b.insert(method, rpc_params![hex]);
    }
    let resp = client.batch_request::<serde_json::Value>(b).await?;
    Ok(resp.num_successful_calls())
}

/// The report (but for the receipts' sample and the generator's CPU):
/// latency from each send to its commit,
/// throughput while the load was on (after a warm-up second: the
/// pipeline filling is not a capacity limit, and the drain after the last
/// send is latency, not throughput), and the nodes' costs per transaction.
fn summarize(
    workload: Workload,
    total: usize,
    offered: &Offered,
    committed: &HashMap<Hash, Instant>,
    nodes: &[(NodeSample, NodeSample)],
    blocks: u64,
) -> BenchReport {
    let start = offered.start;
    let mut latencies: Vec<f64> = Vec::new();
    let mut last_commit = start;
    for (h, at) in committed {
        if let Some(sent) = offered.sent_at.get(h) {
            latencies.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
            last_commit = last_commit.max(*at);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let ours = latencies.len();
    let window = last_commit
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(offered.elapsed.as_secs_f64());
    let warm = start + Duration::from_secs(1).min(offered.elapsed / 2);
    let end = start + offered.elapsed;
    let in_window = committed
        .iter()
        .filter(|(h, at)| offered.sent_at.contains_key(h) && **at >= warm && **at <= end)
        .count();
    let steady = end.saturating_duration_since(warm).as_secs_f64().max(1e-3);
    let per_node = |f: &dyn Fn(&NodeSample) -> f64| -> Option<f64> {
        if nodes.is_empty() || ours == 0 {
            return None;
        }
        Some(nodes.iter().map(|(b, a)| f(a) - f(b)).sum::<f64>() / nodes.len() as f64)
    };
    BenchReport {
        workload,
        failed_in_sample: None,
        offered_tps: total as f64 / offered.elapsed.as_secs_f64(),
        sent: total,
        accepted: offered.accepted,
        rejected: total - offered.accepted,
        committed: ours,
        committed_tps: in_window as f64 / steady,
        latency_ms_p50: percentile(&latencies, 0.50),
        latency_ms_p95: percentile(&latencies, 0.95),
        latency_ms_p99: percentile(&latencies, 0.99),
        blocks,
        blocks_per_s: blocks as f64 / window,
        cpu_s_per_1000_tx_per_node: per_node(&|s| s.cpu).map(|c| c * 1000.0 / ours as f64),
        max_rss_mib: nodes
            .iter()
            .map(|(_, a)| a.rss / (1024.0 * 1024.0))
            .reduce(f64::max),
        disk_bytes_per_tx_per_node: per_node(&|s| s.disk).map(|d| d / ours as f64),
        generator_cpu_s: None,
    }
}
