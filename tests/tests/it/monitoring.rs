//! `deploy/monitoring/`: every Grafana panel queries metrics a running node
//! really exports, and `palisade devnet --monitoring` writes a Prometheus
//! configuration that scrapes its nodes.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use palisade_tests::{http_get, palisade_bin, rpc_call, Devnet};
use serde_json::{json, Value};

fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/monitoring/grafana/palisade-dashboard.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard file"))
        .expect("dashboard is JSON")
}

/// Every `palisade_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("palisade_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Names of the samples in a `/metrics` body.
fn exported(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let d = dashboard();
    let panels = d["panels"].as_array().expect("panels");
    let mut queried = BTreeSet::new();
    let mut graphs = 0;
    for p in panels {
        if p["type"] == "row" {
            continue;
        }
        graphs += 1;
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{}: {expr} names no metric", p["title"]);
            queried.extend(names);
        }
    }
    assert!(graphs >= 20, "{graphs} panels");

    let mut net = Devnet::generate(2);
    net.start_all();
    net.wait_height(&[0, 1], 2, Duration::from_secs(30));
    // Families that appear with their first sample.
    rpc_call(&net.rpc_addr(0), "chain_getHeight", json!([])).expect("rpc");
    let body = http_get(&net.metrics_addr(0), "/metrics").expect("metrics");
    let have = exported(&body);
    let missing: Vec<&String> = queried.iter().filter(|n| !have.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "dashboard queries metrics the node does not export: {missing:?}\nexported: {have:?}"
    );
    // What operators look at first is on it.
    for topic in [
        "palisade_height",
        "palisade_block_interval_seconds_bucket",
        "palisade_late_rounds_total",
        "palisade_txs_committed_total",
        "palisade_tx_commit_latency_seconds_bucket",
        "palisade_mempool_txs",
        "palisade_peers",
        "palisade_syncing",
        "palisade_disk_bytes",
        "palisade_process_cpu_seconds_total",
        "palisade_process_resident_memory_bytes",
        "palisade_p2p_dropped_total",
    ] {
        assert!(queried.contains(topic), "no panel shows {topic}");
    }
    // A check that can fail: a name the node does not export is caught.
    assert!(!have.contains("palisade_no_such_metric"));
}

#[test]
fn devnet_writes_a_prometheus_config_for_its_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mon = dir.path().join("monitoring");
    // Free ones, from the range other tests draw theirs from.
    let (p2p, rpc, metrics) = palisade_tests::free_port_ranges(2);
    let mut child = Command::new(palisade_bin())
        .args(["devnet", "--validators", "2", "--dir"])
        .arg(dir.path().join("devnet"))
        .args([
            "--p2p-port",
            &p2p.to_string(),
            "--rpc-port",
            &rpc.to_string(),
            "--metrics-port",
            &metrics.to_string(),
            "--monitoring",
        ])
        .arg(&mon)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn palisade devnet");
    let prom = mon.join("prometheus.yml");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while Instant::now() < deadline {
        if let Ok(t) = std::fs::read_to_string(&prom) {
            if t.contains("targets") {
                text = t;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let targets: Vec<String> = (0..2)
        .map(|i| format!("127.0.0.1:{}", metrics + i))
        .collect();
    let mut scraped = 0;
    for t in &targets {
        assert!(text.contains(&format!("- {t}")), "{t} not in {text}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_get(t, "/metrics").is_some_and(|b| b.contains("palisade_height")) {
                scraped += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let dash = std::fs::read_to_string(mon.join("grafana/palisade-dashboard.json"));
    // Stop the devnet (it stops its nodes) before asserting.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(scraped, 2, "every target answers /metrics");
    assert_eq!(
        dash.expect("dashboard written"),
        palisade_node::cli::devnet::GRAFANA_DASHBOARD
    );
}

#[test]
fn status_watch_prints_one_line_per_update_when_not_a_terminal() {
    // Updates come with blocks: this chain makes them while idle.
    let node = palisade_tests::DevNode::start_with_empty_blocks(100);
    let url = format!("http://{}", node.rpc);
    let run = |extra: &[&str]| {
        let out = Command::new(palisade_bin())
            .args([
                "status",
                "--watch",
                "--interval-ms",
                "300",
                "--count",
                "3",
                "--rpc",
                &url,
            ])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run palisade status --watch");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let text = run(&[]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        !text.contains('\x1b'),
        "no terminal codes in a pipe: {text:?}"
    );
    for l in &lines {
        assert!(l.starts_with("height "), "{l}");
        assert!(l.contains("| peers 0 |") && l.contains("healthy"), "{l}");
    }
    assert!(
        lines[1].contains("blocks/s"),
        "a rate from the second update: {text}"
    );
    let json_text = run(&["--output", "json"]);
    let samples: Vec<Value> = json_text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(samples.len(), 3);
    let heights: Vec<u64> = samples
        .iter()
        .map(|s| s["height"].as_u64().unwrap())
        .collect();
    assert!(heights.windows(2).all(|w| w[0] <= w[1]), "{heights:?}");
    assert!(
        heights[2] > heights[0],
        "the dev chain makes blocks: {heights:?}"
    );
    assert_eq!(samples[2]["healthy"], true);

    // A node that does not answer is reported, and the watch goes on.
    let out = Command::new(palisade_bin())
        .args([
            "status",
            "--watch",
            "--interval-ms",
            "100",
            "--count",
            "2",
            "--rpc",
            "http://127.0.0.1:9",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("unreachable:"))
            .count(),
        2,
        "{text}"
    );
}
