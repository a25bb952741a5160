//! `palisade status --watch`: a node's height, block rate, peers, mempool
//! and sync state, redrawn in place on a terminal and one line (or one JSON
//! object) per update otherwise, so it can be logged or piped.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use palisade_rpc::api::PalisadeApiClient;
use palisade_rpc::types::{Health, MempoolStatus, NodeStatus};
use serde::Serialize;

use super::{client, rpc_err, runtime, ClientArgs, Output};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Keep watching: redraw every `--interval-ms` until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Time between updates of `--watch`.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub interval_ms: u64,
    /// Stop `--watch` after this many updates (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
}

/// One update of the watch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Sample {
    /// Unix milliseconds of this reading.
    at_ms: u64,
    height: u64,
    /// Blocks committed per second since the previous update.
    blocks_per_s: Option<f64>,
    /// Milliseconds since the latest block's time.
    last_block_age_ms: Option<u64>,
    peers: usize,
    mempool_txs: usize,
    mempool_bytes: usize,
    syncing: bool,
    sync_target: u64,
    healthy: bool,
    reasons: Vec<String>,
}

/// Why a reading failed (the node may be restarting): shown, and the watch
/// goes on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Unreachable {
    at_ms: u64,
    error: String,
}

fn sample(
    status: &NodeStatus,
    health: &Health,
    pool: &MempoolStatus,
    prev: Option<&(Instant, u64)>,
    now: Instant,
) -> Sample {
    let now_ms = crate::app::now_ms();
    let blocks_per_s = prev.and_then(|(t, h)| {
        let secs = now.duration_since(*t).as_secs_f64();
        (secs > 0.0).then(|| status.latest_height.saturating_sub(*h) as f64 / secs)
    });
    Sample {
        at_ms: now_ms,
        height: status.latest_height,
        blocks_per_s,
        last_block_age_ms: status.latest_block_time.map(|t| now_ms.saturating_sub(t)),
        peers: status.peers,
        mempool_txs: pool.txs,
        mempool_bytes: pool.bytes,
        syncing: status.syncing,
        sync_target: status.sync_target,
        healthy: health.ok,
        reasons: health.reasons.clone(),
    }
}

fn line(s: &Sample) -> String {
    let rate = s
        .blocks_per_s
        .map(|r| format!(", {r:.1} blocks/s"))
        .unwrap_or_default();
    let age = s
        .last_block_age_ms
        .map(|a| format!(", last block {a} ms ago"))
        .unwrap_or_default();
    let sync = if s.syncing {
        format!("syncing to {}", s.sync_target)
    } else {
        "in sync".into()
    };
    let health = if s.healthy {
        "healthy".to_string()
    } else {
        format!("UNHEALTHY ({})", s.reasons.join("; "))
    };
    format!(
        "height {}{rate}{age} | peers {} | mempool {} txs ({} bytes) | {sync} | {health}",
        s.height, s.peers, s.mempool_txs, s.mempool_bytes
    )
}

/// The terminal view: a few labelled lines, redrawn in place.
fn screen(url: &str, s: &Sample) -> String {
    let rate = s
        .blocks_per_s
        .map_or_else(|| "-".to_string(), |r| format!("{r:.1}"));
    let age = s
        .last_block_age_ms
        .map_or_else(|| "-".to_string(), |a| format!("{a} ms ago"));
    format!(
        "palisade status  {url}  (Ctrl-C stops)\n\n  height       {}\n  blocks/s     {rate}\n  last block   {age}\n  peers        {}\n  mempool      {} txs, {} bytes\n  sync         {}\n  health       {}\n",
        s.height,
        s.peers,
        s.mempool_txs,
        s.mempool_bytes,
        if s.syncing {
            format!("syncing to {}", s.sync_target)
        } else {
            "in sync".into()
        },
        if s.healthy {
            "ok".to_string()
        } else {
            format!("UNHEALTHY: {}", s.reasons.join("; "))
        },
    )
}

/// `palisade status --watch`.
pub fn watch(a: StatusArgs) -> Result<()> {
    let url = a.client.rpc.clone();
    let output = a.client.output;
    let tty = std::io::stdout().is_terminal() && output == Output::Text;
    // A node that does not answer must not hold the watch (or Ctrl-C) for
    // long: each reading gets at most this long.
    let patience = Duration::from_millis(a.interval_ms.max(5_000));
    runtime()?.block_on(async move {
        let c = client(&url)?;
        let mut prev: Option<(Instant, u64)> = None;
        let mut n = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(a.interval_ms));
        // After a slow reading, the next comes an interval later, not in a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {}
            }
            let read = async {
                let status = c.system_status().await.map_err(rpc_err(&url))?;
                let health = c.system_health().await.map_err(rpc_err(&url))?;
                let pool = c.mempool_status().await.map_err(rpc_err(&url))?;
                anyhow::Ok((status, health, pool))
            };
            let now = Instant::now();
            let read = tokio::select! {
                _ = &mut stop => break,
                r = tokio::time::timeout(patience, read) => r.unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("{url}: no answer in {} ms", patience.as_millis()))
                }),
            };
            let text = match read {
                Ok((status, health, pool)) => {
                    let s = sample(&status, &health, &pool, prev.as_ref(), now);
                    prev = Some((now, status.latest_height));
                    match output {
                        Output::Json => serde_json::to_string(&s)?,
                        Output::Text if tty => screen(&url, &s),
                        Output::Text => line(&s),
                    }
                }
                Err(e) => {
                    let u = Unreachable {
                        at_ms: crate::app::now_ms(),
                        error: format!("{e:#}"),
                    };
                    match output {
                        Output::Json => serde_json::to_string(&u)?,
                        Output::Text => format!("unreachable: {}", u.error),
                    }
                }
            };
            let mut out = std::io::stdout().lock();
            if tty {
                // Home the cursor and clear the screen, then draw.
                write!(out, "\x1b[H\x1b[2J{text}")?;
            } else {
                writeln!(out, "{text}")?;
            }
            out.flush()?;
            n += 1;
            if a.count.is_some_and(|c| n >= c) {
                break;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_height_rate_peers_mempool_sync_and_health() {
        let s = Sample {
            at_ms: 0,
            height: 42,
            blocks_per_s: Some(4.96),
            last_block_age_ms: Some(120),
            peers: 3,
            mempool_txs: 7,
            mempool_bytes: 900,
            syncing: true,
            sync_target: 50,
            healthy: false,
            reasons: vec!["no peers".into()],
        };
        assert_eq!(
            line(&s),
            "height 42, 5.0 blocks/s, last block 120 ms ago | peers 3 | mempool 7 txs (900 bytes) | syncing to 50 | UNHEALTHY (no peers)"
        );
        let screen = screen("http://n", &s);
        assert!(screen.contains("height       42") && screen.contains("syncing to 50"));
    }
}
