//! End-to-end tests of Palisade: they start real `palisade` processes on
//! loopback and check what users see. Helpers live here; the tests are in
//! `tests/it/`.
//!
//! [`Devnet`] generates a testnet with `palisade testnet`, runs its nodes
//! as child processes (logs in each node's directory), and kills every
//! process it started when dropped, so a failing test leaves nothing
//! behind. Every wait is bounded by a deadline.

#![forbid(unsafe_code)]

mod invariants;
mod seed;

pub use invariants::{
    acknowledged, audit, double_signs, signed_in_log, signed_in_logs, Audit, Signed,
};
pub use seed::FaultRng;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_ledger::Ledger;
use palisade_types::{
    encode, Action, Address, Block, ChainId, CommitCertificate, Hash, Height, Keypair, Transaction,
};

/// Whether this runs in CI (`CI=true`), where a missing prerequisite is a
/// failure, never a skip.
/// A signed Ethereum transaction (EIP-1559, chain id 1337, nonce 0) that
/// creates a contract from an address no genesis gives a role: refused by
/// every honest node (no `member`, no `deployer`). The Byzantine test node
/// puts it in the blocks it proposes.
pub fn forbidden_creation() -> Vec<u8> {
    let Ok(signer) = palisade_ethtx::EthSigner::from_secret([0x5a; 32]) else {
        return Vec::new();
    };
    signer.sign_eip1559(&palisade_ethtx::Eip1559 {
        chain_id: 1337,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
        to: None,
        value: 0,
        // Init code returning empty code.
        input: vec![0x60, 0x00, 0x60, 0x00, 0xf3],
    })
}

/// Whether the third-party client software a test drives (`what`) is
/// installed. In CI its absence is a failure (`scripts/prereqs.sh test`
/// installs it); elsewhere the test is skipped with a message.
pub fn clients_ready(found: bool, what: &str) -> bool {
    if found {
        return true;
    }
    assert!(
        !in_ci(),
        "{what} are required in CI (scripts/prereqs.sh test installs them)"
    );
    eprintln!("skipped: run `source scripts/prereqs.sh; prereqs test` to install {what}");
    false
}

/// Whether `program args` runs and exits with success.
pub fn runs(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a client script to its end and returns the JSON summary it
/// prints as the last line of its standard output. Panics with all it
/// printed, after `context`, if it failed or printed no summary.
pub fn run_summary(cmd: &mut std::process::Command, context: &str) -> serde_json::Value {
    let out = cmd.output().expect("run the client script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{context}{}:\n{stdout}{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{context}no JSON summary ({e}):\n{stdout}{stderr}"))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether network-namespace tests can run here (root and iproute2). A
/// missing prerequisite is a skip (with a message) outside CI and a test
/// failure in CI, which installs iproute2 and runs as root (`.ci/run`).
pub fn netns_prerequisites() -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has_ip = std::process::Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !root || !has_ip {
        assert!(
            !in_ci(),
            "network namespaces need root and iproute2 (root: {root}, ip: {has_ip}); \
             CI must have both (.ci/run installs iproute2)"
        );
        eprintln!(
            "SKIPPED: network namespaces need root and iproute2 (root: {root}, ip: {has_ip})"
        );
        return false;
    }
    true
}

/// Path of the `palisade` binary built beside the running test executable
/// (`<target>/<profile>/deps/it-*` -> `<target>/<profile>/palisade`).
pub fn palisade_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PALISADE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    profile_dir.join("palisade")
}

/// Path of the test-only `palisade-test-node` binary (see
/// `src/bin/palisade-test-node.rs`), beside [`palisade_bin`].
pub fn test_node_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PALISADE_TEST_NODE_BIN") {
        return PathBuf::from(p);
    }
    palisade_bin().with_file_name("palisade-test-node")
}

/// Three runs of `n` consecutive free loopback ports (p2p, rpc, metrics).
pub fn free_port_ranges(n: u16) -> (u16, u16, u16) {
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    let mut x = seed | 1;
    for _ in 0..200 {
        // xorshift: spread concurrent test processes over the ports below
        // Linux's ephemeral range (32768-60999), where no outgoing
        // connection (another node's dial, an RPC client) can take one of
        // them between this check and the node binding it.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let base = 10_000 + (x % 22_000) as u16;
        let all_free = (0..3 * n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return (base, base + n, base + 2 * n);
        }
    }
    panic!("no free loopback ports found");
}

/// A local testnet of real node processes.
pub struct Devnet {
    pub dir: tempfile::TempDir,
    pub n: usize,
    pub p2p_base: u16,
    pub rpc_base: u16,
    pub metrics_base: u16,
    children: Vec<Option<Child>>,
    /// When the nodes run in network namespaces: the virtual network.
    pub netns: Option<NetNs>,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("dir", &self.dir.path())
            .field("n", &self.n)
            .finish()
    }
}

impl Devnet {
    /// Generates an `n`-validator testnet (fast timeouts for loopback).
    pub fn generate(n: usize) -> Devnet {
        Devnet::generate_with(n, &[])
    }

    /// [`Devnet::generate`] with extra `palisade testnet` arguments.
    pub fn generate_with(n: usize, extra: &[&str]) -> Devnet {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p2p, rpc, metrics) = free_port_ranges(n as u16 + 2);
        let out = Command::new(palisade_bin())
            .args(["testnet", "--validators", &n.to_string(), "--output"])
            .arg(dir.path().join("net"))
            .args([
                "--chain-id",
                "e2e-test",
                "--p2p-port",
                &p2p.to_string(),
                "--rpc-port",
                &rpc.to_string(),
                "--metrics-port",
                &metrics.to_string(),
                "--block-interval-ms",
                "100",
                "--propose-timeout-ms",
                "600",
            ])
            .args(extra)
            .output()
            .expect("run palisade testnet");
        assert!(
            out.status.success(),
            "palisade testnet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Devnet {
            dir,
            n,
            p2p_base: p2p,
            rpc_base: rpc,
            metrics_base: metrics,
            children: (0..n).map(|_| None).collect(),
            netns: None,
        }
    }

    /// An `n`-validator testnet whose nodes each run in their own network
    /// namespace on a virtual bridge, so a test can cut links. `None` (with
    /// the reason) where namespaces cannot be made (not root, no `ip`).
    pub fn generate_isolated(n: usize) -> Result<Devnet, String> {
        let net = NetNs::create(n)?;
        let mut d = Devnet::generate(n);
        for i in 0..n {
            let path = d.home(i).join("config/config.toml");
            let mut cfg =
                palisade_node::config::NodeConfig::load(&path).map_err(|e| e.to_string())?;
            let ip = net.ip(i);
            cfg.p2p.listen = vec![format!("/ip4/{ip}/tcp/26656")];
            cfg.p2p.peers = cfg
                .p2p
                .peers
                .iter()
                .map(|a| {
                    // /ip4/127.0.0.1/tcp/PORT/p2p/ID -> that node's namespace address.
                    let parts: Vec<&str> = a.split('/').collect();
                    let port: usize = parts.get(4).and_then(|p| p.parse().ok()).unwrap_or(0);
                    let j = port.saturating_sub(usize::from(d.p2p_base));
                    format!(
                        "/ip4/{}/tcp/26656/p2p/{}",
                        net.ip(j),
                        parts.get(6).unwrap_or(&"")
                    )
                })
                .collect();
            cfg.rpc.listen = format!("{ip}:8545").parse().map_err(|e| format!("{e}"))?;
            cfg.metrics.listen = format!("{ip}:9615").parse().map_err(|e| format!("{e}"))?;
            std::fs::write(&path, cfg.to_toml()).map_err(|e| e.to_string())?;
        }
        d.netns = Some(net);
        Ok(d)
    }

    pub fn home(&self, i: usize) -> PathBuf {
        self.dir.path().join("net").join(format!("node{i}"))
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}.log"))
    }

    /// Starts node `i` (appending to its log).
    pub fn start(&mut self, i: usize) {
        self.start_with(i, &[]);
    }

    /// Starts a node that is not one of the testnet's validators (an
    /// observer or an outsider) from `home`, on port slot `slot` (past the
    /// validators'), dialing `peers`; its stderr goes to `log`. The caller
    /// kills it.
    pub fn spawn_extra(&self, home: &Path, slot: usize, peers: &[String], log: &Path) -> Child {
        Command::new(palisade_bin())
            .arg("start")
            .arg("--home")
            .arg(home)
            .arg("--p2p-listen")
            .arg(format!(
                "/ip4/127.0.0.1/tcp/{}",
                usize::from(self.p2p_base) + slot
            ))
            .arg("--peers")
            .arg(peers.join(","))
            .arg("--metrics-listen")
            .arg(self.metrics_addr(slot))
            .arg("--rpc-listen")
            .arg(self.rpc_addr(slot))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn palisade start")
    }

    /// Starts node `i` with extra `palisade start` arguments.
    pub fn start_with(&mut self, i: usize, extra: &[&str]) {
        self.spawn(i, palisade_bin(), &[], extra);
    }

    /// Starts the validators with an observer allowed in their
    /// configuration (stopping any that run first, to reload it), then the
    /// observer (a node without a validator key) on port slot `n`,
    /// dialing every validator. Returns the observer's process (the
    /// caller kills it), its RPC address and its log.
    pub fn start_observer(&mut self) -> (Child, String, PathBuf) {
        let home = self.dir.path().join("observer");
        let out = Command::new(palisade_bin())
            .args(["init", "--observer", "--home"])
            .arg(&home)
            .arg("--genesis")
            .arg(self.home(0).join("config/genesis.json"))
            .output()
            .expect("palisade init --observer");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let node_key = palisade_node::home::read_key(&home.join("config/node_key.json"))
            .expect("observer key");
        let observer_id = palisade_network::peer_id_of(&node_key.public_key())
            .expect("peer id")
            .to_string();
        self.stop_all();
        for i in 0..self.n {
            let path = self.home(i).join("config/config.toml");
            let mut cfg = palisade_node::config::NodeConfig::load(&path).expect("config");
            cfg.p2p.observers.push(observer_id.clone());
            std::fs::write(&path, cfg.to_toml()).expect("write config");
        }
        // Node 1 dials every other validator; with node 1 itself that is all.
        let validator_peers: Vec<String> = {
            let load = |i: usize| {
                palisade_node::config::NodeConfig::load(&self.home(i).join("config/config.toml"))
                    .expect("config")
            };
            let mut p = load(1).p2p.peers.clone();
            for a in load(0).p2p.peers {
                if !p.contains(&a) {
                    p.push(a);
                }
            }
            p
        };
        self.start_all();
        let log = self.dir.path().join("observer.log");
        let child = self.spawn_extra(&home, self.n, &validator_peers, &log);
        (child, self.rpc_addr(self.n), log)
    }

    /// Starts node `i` as a Byzantine validator (`palisade-test-node
    /// --byzantine MODE start ...`, a test-only binary).
    pub fn start_byzantine(&mut self, i: usize, mode: &str) {
        self.start_byzantine_with(i, mode, &[]);
    }

    /// [`Devnet::start_byzantine`] with extra `start` arguments.
    pub fn start_byzantine_with(&mut self, i: usize, mode: &str, extra: &[&str]) {
        self.spawn(i, test_node_bin(), &["--byzantine", mode], extra);
    }

    fn spawn(&mut self, i: usize, bin: PathBuf, before: &[&str], extra: &[&str]) {
        assert!(self.children[i].is_none(), "node {i} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("open log");
        let mut cmd = match &self.netns {
            Some(net) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &net.ns(i)]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = cmd
            .args(before)
            .arg("start")
            .arg("--home")
            .arg(self.home(i))
            .args(["--log-level", "info,palisade_node=debug"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn palisade start");
        self.children[i] = Some(child);
    }

    pub fn start_all(&mut self) {
        for i in 0..self.n {
            self.start(i);
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (up to 15 s, then SIGKILL).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop_all(&mut self) {
        for i in 0..self.n {
            self.stop(i);
        }
    }

    /// The process id of node `i`, if running.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// Whether node `i` is still running (it has not exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.children[i] {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn rpc_addr(&self, i: usize) -> String {
        match &self.netns {
            Some(net) => format!("{}:8545", net.ip(i)),
            None => format!("127.0.0.1:{}", usize::from(self.rpc_base) + i),
        }
    }

    /// JSON-RPC addresses of every node, by index.
    pub fn rpc_addrs(&self) -> Vec<String> {
        (0..self.n).map(|i| self.rpc_addr(i)).collect()
    }

    /// The highest height any of `nodes` reports (0 if none answers).
    pub fn top_height(&self, nodes: &[usize]) -> u64 {
        nodes
            .iter()
            .filter_map(|i| self.height(*i))
            .max()
            .unwrap_or(0)
    }

    /// A height every one of `nodes` has committed (the lowest they
    /// report; 0 if one does not answer): while the chain runs, the top
    /// height may be one some node has not committed yet.
    pub fn common_height(&self, nodes: &[usize]) -> u64 {
        nodes
            .iter()
            .map(|i| self.height(*i).unwrap_or(0))
            .min()
            .unwrap_or(0)
    }

    /// The top height of `nodes` once it has not moved for `quiet` (at
    /// most `timeout`: then whatever it is).
    pub fn settled_height(&self, nodes: &[usize], quiet: Duration, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut last = self.top_height(nodes);
        let mut since = Instant::now();
        while Instant::now() < deadline && since.elapsed() < quiet {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.top_height(nodes);
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
        last
    }

    /// The funded admin key `palisade testnet` wrote.
    pub fn admin_key(&self) -> Keypair {
        palisade_node::home::read_key(&self.dir.path().join("net").join("admin_key.json"))
            .expect("admin key")
    }

    pub fn chain_id(&self) -> ChainId {
        ChainId::new("e2e-test").expect("chain id")
    }

    pub fn metrics_addr(&self, i: usize) -> String {
        match &self.netns {
            Some(net) => format!("{}:9615", net.ip(i)),
            None => format!("127.0.0.1:{}", usize::from(self.metrics_base) + i),
        }
    }

    /// A metric of node `i` (None if it does not answer).
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        metric(&self.metrics_addr(i), name)
    }

    /// Last committed height of node `i`.
    pub fn height(&self, i: usize) -> Option<u64> {
        self.metric(i, "palisade_height").map(|v| v as u64)
    }

    /// Waits until every node in `nodes` has committed `h`.
    pub fn wait_height(&mut self, nodes: &[usize], h: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let heights: Vec<Option<u64>> = nodes.iter().map(|i| self.height(*i)).collect();
            if heights.iter().all(|x| x.is_some_and(|x| x >= h)) {
                return;
            }
            for i in nodes {
                assert!(
                    self.is_running(*i),
                    "node {i} exited; log:\n{}",
                    self.log_tail(*i)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "nodes {nodes:?} did not reach height {h} in {timeout:?}: heights {heights:?}\n{}",
                    nodes
                        .iter()
                        .map(|i| format!("--- node{i} log tail:\n{}", self.log_tail(*i)))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of node `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Opens node `i`'s ledger (the node must be stopped).
    pub fn ledger(&self, i: usize) -> Ledger {
        Ledger::open(&self.home(i).join("data")).expect("open ledger")
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        for c in self.children.iter_mut() {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // NetNs's own Drop removes the namespaces and the bridges.
    }
}

/// Network namespaces with one veth each, on bridges in the host namespace:
/// a small virtual network for tests that cut links. Everything is removed
/// on drop.
#[derive(Debug)]
pub struct NetNs {
    id: u32,
    n: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    pub fn create(n: usize) -> Result<NetNs, String> {
        // A short id so interface names stay under 15 bytes; tests running
        // at once pick different ones, and a clash is retried elsewhere.
        let seed = std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        let mut last = String::new();
        for attempt in 0..8u32 {
            let id = (seed.wrapping_add(attempt.wrapping_mul(37))) % 200 + 20;
            let net = NetNs { id, n };
            match net.build() {
                Ok(()) => return Ok(net),
                // Dropping `net` removes whatever was made.
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn build(&self) -> Result<(), String> {
        let id = self.id;
        ip(&["link", "add", &self.bridge(0), "type", "bridge"])?;
        ip(&["link", "add", &self.bridge(1), "type", "bridge"])?;
        for b in [self.bridge(0), self.bridge(1)] {
            ip(&["link", "set", &b, "up"])?;
        }
        ip(&[
            "addr",
            "add",
            &format!("10.213.{id}.254/24"),
            "dev",
            &self.bridge(0),
        ])?;
        for i in 0..self.n {
            let ns = self.ns(i);
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link",
                "add",
                &self.host_if(i),
                "type",
                "veth",
                "peer",
                "name",
                &self.ns_if(i),
            ])?;
            ip(&["link", "set", &self.ns_if(i), "netns", &ns])?;
            ip(&[
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("{}/24", self.ip(i)),
                "dev",
                &self.ns_if(i),
            ])?;
            ip(&[
                "netns",
                "exec",
                &ns,
                "ip",
                "link",
                "set",
                &self.ns_if(i),
                "up",
            ])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
            ip(&["link", "set", &self.host_if(i), "master", &self.bridge(0)])?;
            ip(&["link", "set", &self.host_if(i), "up"])?;
        }
        Ok(())
    }

    fn bridge(&self, k: usize) -> String {
        format!("palbr{}{}", self.id, k)
    }
    fn host_if(&self, i: usize) -> String {
        format!("palh{}n{i}", self.id)
    }
    fn ns_if(&self, i: usize) -> String {
        format!("paln{}n{i}", self.id)
    }
    pub fn ns(&self, i: usize) -> String {
        format!("pal{}n{i}", self.id)
    }
    pub fn ip(&self, i: usize) -> String {
        format!("10.213.{}.{}", self.id, i + 1)
    }

    /// Cuts node `i` off from everyone (and from the test).
    pub fn isolate(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.host_if(i), "down"])
    }

    /// Reconnects node `i`.
    pub fn reconnect(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.host_if(i), "up"])
    }

    /// Moves the nodes in `side` to a second bridge: two halves that cannot
    /// reach each other (the test keeps reaching the first).
    pub fn split(&self, side: &[usize]) -> Result<(), String> {
        for i in side {
            ip(&["link", "set", &self.host_if(*i), "master", &self.bridge(1)])?;
        }
        Ok(())
    }

    /// Puts every node back on the first bridge.
    pub fn heal(&self) -> Result<(), String> {
        for i in 0..self.n {
            ip(&["link", "set", &self.host_if(i), "master", &self.bridge(0)])?;
            ip(&["link", "set", &self.host_if(i), "up"])?;
        }
        Ok(())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for i in 0..self.n {
            let _ = ip(&["link", "del", &self.host_if(i)]);
            let _ = ip(&["netns", "del", &self.ns(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge(0)]);
        let _ = ip(&["link", "del", &self.bridge(1)]);
    }
}

/// One JSON-RPC call over plain HTTP (bounded in time); the `result`, or
/// the `error` object as `Err`.
pub fn rpc_call(
    addr: &str,
    method: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Value> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let transport = |m: String| serde_json::json!({ "transport": m });
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| transport(format!("{e}")))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_millis(500))
        .map_err(|e| transport(e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(70))).ok();
    s.set_write_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| transport(e.to_string()))?;
    let mut buf = Vec::new();
    s.take(64 * 1024 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| transport(e.to_string()))?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (_, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| transport("no HTTP body".into()))?;
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| transport(format!("{e}: {body}")))?;
    match v.get("error") {
        Some(e) => Err(e.clone()),
        None => Ok(v.get("result").cloned().unwrap_or(serde_json::Value::Null)),
    }
}

/// Sends `body` as a raw HTTP POST to the JSON-RPC server at `addr` and
/// returns whatever comes back (status line, headers and body), for
/// requests a well-behaved client would never make. Bounded in time.
pub fn raw_post(addr: &str, body: &[u8]) -> String {
    let Ok(sock) = addr.parse::<std::net::SocketAddr>() else {
        return String::new();
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_secs(2)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.set_write_timeout(Some(Duration::from_secs(10))).ok();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    // The server may answer and close before reading all of an oversized
    // body; what it answered is still read below.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.take(8 * 1024 * 1024).read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// Reads `name` from the Prometheus endpoint at `addr`.
pub fn metric(addr: &str, name: &str) -> Option<f64> {
    metric_in(&http_get(addr, "/metrics")?, name)
}

/// Reads `name` from a Prometheus text exposition.
pub fn metric_in(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A bounded plain-HTTP GET on loopback; the body, or None.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.take(8 * 1024 * 1024).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The committed chain of a (stopped) node: (height, block, commit).
pub fn chain_of(ledger: &Ledger) -> Vec<(Height, Block, CommitCertificate)> {
    let latest = ledger.latest_height().expect("latest height");
    (1..=latest.get())
        .map(|h| {
            let h = Height(h);
            let b = ledger.block(h).expect("read block").expect("block present");
            let c = ledger
                .commit(h)
                .expect("read commit")
                .expect("commit present");
            (h, b, c)
        })
        .collect()
}

/// Checks that every pair of chains agrees on every height both have, and
/// that each block's certificate names it; returns the common length.
pub fn assert_chains_agree(chains: &[Vec<(Height, Block, CommitCertificate)>]) -> usize {
    let common = chains.iter().map(Vec::len).min().unwrap_or(0);
    for h in 0..common {
        let hashes: Vec<Hash> = chains.iter().map(|c| c[h].1.hash()).collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "fork at height {}: {hashes:?}",
            h + 1
        );
        for c in chains {
            assert_eq!(
                c[h].2.block_hash,
                c[h].1.hash(),
                "commit does not name the block"
            );
        }
    }
    common
}

/// Waits (bounded) for `path`'s text to contain `needle`.
pub fn wait_for_log(path: &Path, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Transfers from the admin account, sent open-loop to the running nodes
/// on a thread until stopped. Nonces stay gap-free across node crashes:
/// each nonce is retried on the next node until one admits it, and the
/// sender falls back to the committed nonce if it stalls.
#[derive(Debug)]
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The sender's committed nonce, as last read from a node.
    committed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<Vec<Hash>>>,
}

impl Load {
    /// Starts sending about `per_sec` transfers a second to nodes `rpc`.
    pub fn start(rpc: Vec<String>, chain_id: ChainId, key: Keypair, per_sec: u64) -> Load {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let committed_seen = std::sync::Arc::new(AtomicU64::new(0));
        let seen = committed_seen.clone();
        let thread = std::thread::spawn(move || {
            let mut sent = Vec::new();
            let to = Address([7; 32]);
            let mut nonce = 0u64;
            let mut node = 0usize;
            let mut last_progress = Instant::now();
            let mut last_check = Instant::now();
            let mut check_now = false;
            let mut committed = 0u64;
            let gap = Duration::from_micros(1_000_000 / per_sec.max(1));
            // Bounded: at most ten minutes of load.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let tx = Transaction {
                    chain_id: chain_id.clone(),
                    nonce,
                    signer: key.address(),
                    action: Action::Transfer { to, amount: 1 },
                }
                .sign(&key);
                let hex = format!("0x{}", hex::encode(encode(&tx)));
                let addr = &rpc[node % rpc.len()];
                node += 1;
                match rpc_call(addr, "tx_submit", serde_json::json!([hex])) {
                    Ok(_) => {
                        sent.push(tx.hash());
                        nonce += 1;
                    }
                    // Already pending here: the same bytes, so the same hash.
                    Err(e) if e["code"] == -32003 => nonce += 1,
                    // Already committed (the chain overtook a resend after
                    // a resync): catch up with it now.
                    Err(e) if e["code"] == -32002 && e["data"] == "bad_nonce" => {
                        check_now = true;
                    }
                    Err(_) => {}
                }
                // Resynchronize with the chain when it stops taking our
                // transactions (a node died holding our next nonce before
                // gossiping it), or when it is ahead of us.
                if check_now || last_check.elapsed() > Duration::from_millis(500) {
                    check_now = false;
                    last_check = Instant::now();
                    let acct = rpc_call(
                        addr,
                        "state_getAccount",
                        serde_json::json!([key.address().to_string()]),
                    );
                    if let Ok(a) = acct {
                        let n = a["nonce"].as_u64().unwrap_or(0);
                        nonce = nonce.max(n);
                        if n != committed {
                            committed = n;
                            // A lagging node may answer less.
                            seen.fetch_max(n, Ordering::Relaxed);
                            last_progress = Instant::now();
                        } else if nonce > n && last_progress.elapsed() > Duration::from_millis(1500)
                        {
                            nonce = n;
                            last_progress = Instant::now();
                        }
                    }
                }
                std::thread::sleep(gap);
            }
            sent
        });
        Load {
            stop,
            committed: committed_seen,
            thread: Some(thread),
        }
    }

    /// Waits until the chain has committed at least `n` of the sender's
    /// transactions (as the sender last saw, every half second), for at
    /// most `timeout`. A test that needs a number of transactions to have
    /// gone through asks for them instead of hoping its load ran long
    /// enough: a node killed holding the next nonce stalls the sender for
    /// a couple of seconds.
    pub fn wait_committed(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.committed.load(std::sync::atomic::Ordering::Relaxed) >= n {
                return true;
            }
            if Instant::now() >= deadline || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the sender; returns the hashes of admitted transactions.
    pub fn stop(mut self) -> Vec<Hash> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A `palisade dev` node (one validator, funded development accounts) on
/// free loopback ports; killed when dropped.
#[derive(Debug)]
pub struct DevNode {
    pub dir: tempfile::TempDir,
    pub rpc: String,
    pub metrics: String,
    child: Child,
}

impl DevNode {
    pub fn start() -> DevNode {
        DevNode::spawn(palisade_bin(), &[], 100)
    }

    /// A dev node making a block every `block_interval_ms` (`start`: 100).
    pub fn start_with_block_interval(block_interval_ms: u64) -> DevNode {
        DevNode::spawn(palisade_bin(), &[], block_interval_ms)
    }

    /// A dev node that makes a block every `block_interval_ms` whether or
    /// not there is anything to include (`dev` makes none while idle).
    pub fn start_with_empty_blocks(block_interval_ms: u64) -> DevNode {
        DevNode::spawn_with(
            palisade_bin(),
            &[],
            block_interval_ms,
            &["--create-empty-blocks"],
        )
    }

    /// A dev node run by the test-only `palisade-test-node` binary with
    /// its options `hooks` (`--fail-task TASK:MS`, ...).
    pub fn start_test_node(hooks: &[&str]) -> DevNode {
        DevNode::spawn(test_node_bin(), hooks, 100)
    }

    fn spawn(bin: PathBuf, before: &[&str], block_interval_ms: u64) -> DevNode {
        DevNode::spawn_with(bin, before, block_interval_ms, &[])
    }

    fn spawn_with(
        bin: PathBuf,
        before: &[&str],
        block_interval_ms: u64,
        after: &[&str],
    ) -> DevNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p2p, rpc, metrics) = free_port_ranges(1);
        let log = std::fs::File::create(dir.path().join("dev.log")).expect("log");
        let child = Command::new(bin)
            .args(before)
            .arg("dev")
            .arg("--home")
            .arg(dir.path().join("home"))
            .arg("--rpc-listen")
            .arg(format!("127.0.0.1:{rpc}"))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics}"))
            .arg("--p2p-listen")
            .arg(format!("/ip4/127.0.0.1/tcp/{p2p}"))
            .arg("--block-interval-ms")
            .arg(block_interval_ms.to_string())
            .args(after)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn palisade dev");
        let node = DevNode {
            dir,
            rpc: format!("127.0.0.1:{rpc}"),
            metrics: format!("127.0.0.1:{metrics}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if rpc_call(&node.rpc, "chain_getHeight", serde_json::json!([]))
                .is_ok_and(|h| h.as_u64().unwrap_or(0) >= 1)
            {
                return node;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("palisade dev did not start: {}", node.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.log")).unwrap_or_default()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Key file of development account `i`.
    pub fn key_file(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join("home")
            .join("dev-keys")
            .join(format!("account{i}.json"))
    }

    pub fn chain_id(&self) -> ChainId {
        ChainId::new("palisade-dev").expect("chain id")
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks invariants while a scenario runs, on a thread: every height that
/// every reachable node has committed must carry the same block hash on
/// all of them; mempools and memory must stay under their bounds; any
/// equivocation (double sign) an honest node detects is reported. Nodes
/// that do not answer (killed, frozen, cut off) are skipped for that round.
#[derive(Debug)]
pub struct Checker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What was seen up to the last round.
    latest: std::sync::Arc<std::sync::Mutex<CheckReport>>,
    thread: Option<std::thread::JoinHandle<CheckReport>>,
}

/// What a [`Checker`] saw.
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    /// Heights compared across at least two nodes.
    pub heights_checked: u64,
    /// Heights at which nodes disagreed, with the hashes seen.
    pub forks: Vec<(u64, Vec<String>)>,
    pub max_mempool_txs: f64,
    pub max_rss_bytes: f64,
    /// Per node, the most equivocation evidence it had recorded
    /// (`palisade_evidence_total`): a validator key signed two different
    /// votes or proposals at one height, round and step.
    pub evidence: Vec<f64>,
}

impl CheckReport {
    /// Double signs any node reported.
    pub fn double_signs(&self) -> f64 {
        self.evidence.iter().copied().fold(0.0, f64::max)
    }
}

impl Checker {
    /// Starts watching nodes whose RPC and metrics addresses are given.
    pub fn start(rpc: Vec<String>, metrics: Vec<String>) -> Checker {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let latest = std::sync::Arc::new(std::sync::Mutex::new(CheckReport::default()));
        let shared = latest.clone();
        let thread = std::thread::spawn(move || {
            let mut report = CheckReport {
                evidence: vec![0.0; metrics.len()],
                ..CheckReport::default()
            };
            let mut checked = 0u64;
            // Bounded: at most ten minutes.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                // One scrape per node per round.
                let scrapes: Vec<Option<String>> =
                    metrics.iter().map(|m| http_get(m, "/metrics")).collect();
                let heights: Vec<Option<u64>> = scrapes
                    .iter()
                    .map(|b| metric_in(b.as_deref()?, "palisade_height").map(|h| h as u64))
                    .collect();
                for (i, body) in scrapes.iter().enumerate() {
                    let Some(body) = body else { continue };
                    if let Some(v) = metric_in(body, "palisade_evidence_total") {
                        report.evidence[i] = report.evidence[i].max(v);
                    }
                    if let Some(v) = metric_in(body, "palisade_mempool_txs") {
                        report.max_mempool_txs = report.max_mempool_txs.max(v);
                    }
                    if let Some(v) = metric_in(body, "palisade_process_resident_memory_bytes") {
                        report.max_rss_bytes = report.max_rss_bytes.max(v);
                    }
                }
                let live: Vec<usize> = (0..rpc.len()).filter(|i| heights[*i].is_some()).collect();
                let common = live.iter().filter_map(|i| heights[*i]).min().unwrap_or(0);
                // Compare the new common heights (a bounded number per round).
                let mut h = checked + 1;
                while h <= common && h <= checked + 50 && live.len() >= 2 {
                    let hashes: Vec<String> = live
                        .iter()
                        .filter_map(|i| {
                            rpc_call(&rpc[*i], "chain_getBlock", serde_json::json!([h]))
                                .ok()
                                .and_then(|b| b["hash"].as_str().map(str::to_string))
                        })
                        .collect();
                    if hashes.windows(2).any(|w| w[0] != w[1]) {
                        report.forks.push((h, hashes.clone()));
                    }
                    if hashes.len() >= 2 {
                        report.heights_checked += 1;
                    }
                    h += 1;
                }
                checked = h - 1;
                if let Ok(mut l) = shared.lock() {
                    *l = report.clone();
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            report
        });
        Checker {
            stop,
            latest,
            thread: Some(thread),
        }
    }

    /// Waits (at most `timeout`) until what the checker has seen so far
    /// satisfies `f`; returns whether it did.
    pub fn wait_for(&self, timeout: Duration, f: impl Fn(&CheckReport) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.latest.lock().is_ok_and(|r| f(&r)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn stop(mut self) -> CheckReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long a fault is held: short in CI, as the full scenario
/// lengths when `PALISADE_FAULTS_FULL=1` (`scripts/faults.sh` sets it).
pub fn fault_hold(ci: Duration, full: Duration) -> Duration {
    if std::env::var("PALISADE_FAULTS_FULL").is_ok_and(|v| v == "1") {
        full
    } else {
        ci
    }
}
