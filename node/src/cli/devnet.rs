//! `palisade devnet` (N local validator processes) and `palisade dev` (one
//! validator with funded development accounts): the quickest ways to have
//! a chain to test against.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use palisade_genesis::{ConsensusParams, Genesis, GenesisAccount, GenesisValidator};
use palisade_types::{sha256, ChainId, Keypair, Role};

use super::{shutdown_signal, write_new, DevArgs, DevnetArgs, TestnetArgs};
use crate::app::now_ms;
use crate::config::NodeConfig;
use crate::home::{write_key, Home};
use crate::node::{Bound, Node};
use palisade_network::peer_id_of;

/// The well-known development account `i`: its key is derived from a
/// public string, so anyone can sign for it. For `palisade dev` only.
pub fn dev_account(i: u16) -> Keypair {
    Keypair::from_seed(sha256(format!("palisade dev account {i}").as_bytes()).0)
}

fn temp_dir(prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("{prefix}-{}-{nanos:x}", std::process::id()))
}

/// Removes a directory tree when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("could not remove {}: {e}", self.0.display());
            }
        }
    }
}

struct Children(Vec<(usize, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        // SIGTERM first, so nodes close their databases; then make sure.
        for (_, c) in &self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        for (_, c) in &mut self.0 {
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `palisade devnet`
pub fn devnet(a: DevnetArgs) -> Result<()> {
    let dir = a.dir.clone().unwrap_or_else(|| temp_dir("palisade-devnet"));
    let net = dir.join("net");
    let n = usize::from(a.validators);
    prepare_devnet(&a, &dir, &net, n)?;
    let exe = std::env::current_exe().context("locate the palisade binary")?;
    let children = spawn_nodes(&exe, &dir, &net, n)?;
    print_devnet(&a, &dir, &net, n)?;
    println!("Ctrl-C stops every node.");
    let exited = wait_for_exit(children)?;
    if let Some((i, status)) = exited {
        bail!(
            "node{i} exited ({status}); see {}",
            dir.join(format!("node{i}.log")).display()
        );
    }
    Ok(())
}

/// Makes the devnet's homes under `net`, or checks that the ones there
/// (from an earlier run) are `n` nodes.
fn prepare_devnet(a: &DevnetArgs, dir: &Path, net: &Path, n: usize) -> Result<()> {
    if !net.join("node0").exists() {
        super::testnet(TestnetArgs {
            validators: a.validators,
            output: net.to_path_buf(),
            chain_id: "palisade-devnet".into(),
            ports: a.ports,
            block_interval_ms: a.block_interval_ms,
            propose_timeout_ms: 1000,
            bench_accounts: a.bench_accounts,
            dev_evm_accounts: true,
            empty_blocks: a.empty_blocks.quiet(),
        })?;
    } else {
        let existing = (0..)
            .take_while(|i| net.join(format!("node{i}")).exists())
            .count();
        if existing != n {
            bail!(
                "{} holds a devnet of {existing} nodes, not {n}",
                net.display()
            );
        }
        println!("restarting the devnet in {}", dir.display());
    }
    Ok(())
}

/// Starts `palisade start` for each of the `n` homes under `net`, each
/// logging to `dir/node{i}.log`.
fn spawn_nodes(exe: &Path, dir: &Path, net: &Path, n: usize) -> Result<Children> {
    let mut children = Children(Vec::new());
    let setting_vars = crate::config::layers::setting_env_vars();
    warn_ignored_settings(&setting_vars);
    for i in 0..n {
        let log = dir.join(format!("node{i}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("open {}", log.display()))?;
        let mut cmd = Command::new(exe);
        // Each node's settings are in its own config.toml: one
        // PALISADE_RPC_LISTEN for all four would make them collide.
        for var in &setting_vars {
            cmd.env_remove(var);
        }
        let child = cmd
            .arg("start")
            .arg("--home")
            .arg(net.join(format!("node{i}")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("start a node process")?;
        children.0.push((i, child));
    }
    Ok(children)
}

fn warn_ignored_settings(setting_vars: &[String]) {
    let ignored: Vec<&String> = setting_vars
        .iter()
        .filter(|v| std::env::var_os(v).is_some())
        .collect();
    if !ignored.is_empty() {
        eprintln!(
            "warning: ignoring {} for the devnet's nodes (each has its own config.toml)",
            ignored
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Prints where the running devnet's nodes, monitoring, homes and keys are
/// (writing the monitoring files if asked for).
fn print_devnet(a: &DevnetArgs, dir: &Path, net: &Path, n: usize) -> Result<()> {
    println!();
    println!("devnet of {n} validators is running (chain palisade-devnet)");
    for i in 0..n {
        let cfg = NodeConfig::load(&Home::new(net.join(format!("node{i}"))).config_file())?;
        println!(
            "  node{i}  rpc http://{}  ws://{}  metrics http://{}/metrics",
            cfg.rpc.listen, cfg.rpc.listen, cfg.metrics.listen
        );
        if cfg.rpc.explorer {
            println!(
                "         explorer http://{}{}",
                cfg.rpc.listen,
                palisade_rpc::explorer::PATH
            );
        }
    }
    if let Some(m) = &a.monitoring {
        let targets = (0..n)
            .map(|i| {
                NodeConfig::load(&Home::new(net.join(format!("node{i}"))).config_file())
                    .map(|c| c.metrics.listen.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        write_monitoring(m, &targets)?;
        println!(
            "  monitoring: {} (prometheus --config.file=that; Grafana dashboard in {})",
            m.join("prometheus.yml").display(),
            m.join("grafana").display()
        );
    }
    println!("  homes and logs: {}", dir.display());
    println!(
        "  funded admin key (all roles): {}",
        net.join("admin_key.json").display()
    );
    let genesis = Genesis::from_file(&Home::new(net.join("node0")).genesis_file())?;
    if !genesis.evm_accounts.is_empty() {
        println!(
            "  Ethereum development accounts: the standard test mnemonic's ten (EIP-155 chain id {}; keys as `palisade dev` prints them), e.g. {} key {}",
            genesis.params.evm_chain_id,
            crate::dev_eth::DEV_EVM_ACCOUNTS[0].0,
            crate::dev_eth::DEV_EVM_ACCOUNTS[0].1
        );
    }
    Ok(())
}

/// Waits for Ctrl-C (`None`) or for a node to exit (which, and how), then
/// stops every node.
fn wait_for_exit(mut children: Children) -> Result<Option<(usize, ExitStatus)>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let exited = rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let signal = shutdown_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => return None,
                _ = tick.tick() => {
                    for (i, c) in &mut children.0 {
                        if let Ok(Some(status)) = c.try_wait() {
                            return Some((*i, status));
                        }
                    }
                }
            }
        }
    });
    println!("stopping the devnet");
    drop(children);
    Ok(exited)
}

/// `palisade dev`
pub fn dev(a: DevArgs, hooks: super::TestHooks) -> Result<()> {
    let root = a.home.clone().unwrap_or_else(|| temp_dir("palisade-dev"));
    // A home of our own making goes when we do (however `dev` ends),
    // unless asked to keep it; a `--home` given is never removed.
    let _cleanup = (a.home.is_none() && !a.keep).then(|| RemoveOnDrop(root.clone()));
    let home = Home::new(&root).with_key_permissions(crate::home::KeyPermissions::allow_insecure(
        a.allow_insecure_key_permissions,
    ));
    let accounts: Vec<Keypair> = (0..a.accounts).map(dev_account).collect();
    if !home.config_file().exists() {
        init_dev_home(&a, &home, &root, &accounts)?;
    }
    // The home's config under PALISADE_* variables, as `start` reads it.
    let cfg = crate::config::layers::load(&home.config_file(), &Default::default())?.config;
    let kept = if a.home.is_some() || a.keep {
        ""
    } else {
        " (temporary: removed on exit; --keep keeps it)"
    };
    let banner = dev_banner(&home, &root, &accounts, kept, cfg.rpc.explorer)?;
    crate::logging::init(&cfg.log)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let stop = shutdown_signal();
        let (bound_tx, mut bound_rx) = tokio::sync::oneshot::channel();
        let node = Node::open(home, cfg)?
            .with_tap(hooks.tap)
            .with_task_fault(hooks.task_fault)
            .on_bound(bound_tx);
        let run = node.run(stop);
        tokio::pin!(run);
        tokio::select! {
            biased;
            b = &mut bound_rx => {
                if let Ok(b) = b {
                    banner(b);
                }
            }
            r = &mut run => {
                // Stopped (a signal during start-up) right after binding.
                if let Ok(b) = bound_rx.try_recv() {
                    banner(b);
                }
                r?;
                return Ok(());
            }
        }
        run.await?;
        Ok::<(), anyhow::Error>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// Makes a new dev home: keys, a one-validator genesis funding
/// `accounts` (and the standard Ethereum development accounts), their key
/// files, and a config for this machine.
fn init_dev_home(a: &DevArgs, home: &Home, root: &Path, accounts: &[Keypair]) -> Result<()> {
    let node_key = Keypair::generate(&mut rand::rngs::OsRng);
    let validator_key = Keypair::generate(&mut rand::rngs::OsRng);
    write_key(&home.node_key_file(), &node_key)?;
    write_key(&home.validator_key_file(), &validator_key)?;
    let genesis = Genesis {
        evm_accounts: crate::dev_eth::genesis_accounts(),
        chain_id: ChainId::new("palisade-dev").map_err(|e| anyhow::anyhow!("{e}"))?,
        genesis_time_ms: now_ms(),
        consensus: ConsensusParams {
            block_interval_ms: a.block_interval_ms,
            ..ConsensusParams::default()
        },
        params: Default::default(),
        validators: vec![GenesisValidator {
            name: "dev".into(),
            consensus_key: validator_key.public_key(),
            node_key: node_key.public_key(),
            power: 10,
        }],
        accounts: accounts
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisAccount {
                address: k.address(),
                balance: 1_000_000_000_000,
                // A development chain: every account may deploy.
                roles: if i == 0 {
                    Role::ALL.to_vec()
                } else {
                    vec![Role::Member, Role::Deployer]
                },
            })
            .collect(),
    };
    genesis.validate()?;
    write_new(&home.genesis_file(), &genesis.to_json())?;
    for (i, k) in accounts.iter().enumerate() {
        write_key(&dev_key_path(root, i), k)?;
    }
    let mut cfg = NodeConfig {
        moniker: "dev".into(),
        ..NodeConfig::default()
    };
    cfg.p2p.listen = vec![a.p2p_listen.clone()];
    cfg.rpc.listen = a.rpc_listen;
    cfg.metrics.listen = a.metrics_listen;
    // Pages on this machine (a dapp's dev server) may use the dev chain.
    cfg.rpc.allowed_origins = match &a.rpc_allowed_origins {
        Some(o) => super::non_empty(o.clone()),
        None => palisade_rpc::origin::LOCAL_DEV_ORIGINS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    cfg.rpc.explorer = true;
    cfg.consensus = a.empty_blocks.settings(false);
    write_new(&home.config_file(), &cfg.to_toml())?;
    let _ = peer_id_of(&node_key.public_key())?;
    Ok(())
}

/// What `dev` prints once its servers are bound, with the addresses they
/// got (a port 0 in the configuration is the system's choice, known only
/// then): the URLs, and the development accounts with their roles as
/// this home's genesis grants them (an existing `--home` may differ from
/// what a new one gets).
fn dev_banner(
    home: &Home,
    root: &Path,
    accounts: &[Keypair],
    kept: &'static str,
    explorer: bool,
) -> Result<impl FnOnce(Bound)> {
    let genesis = Genesis::from_file(&home.genesis_file())?;
    let evm_chain_id = genesis.params.evm_chain_id;
    let genesis_evm: Vec<String> = genesis
        .evm_accounts
        .iter()
        .map(|a| a.address.to_string())
        .collect();
    let account_lines: Vec<String> = accounts
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let roles: Vec<&str> = genesis
                .accounts
                .iter()
                .find(|g| g.address == k.address())
                .map(|g| g.roles.iter().map(|r| r.as_str()).collect())
                .unwrap_or_default();
            format!(
                "    #{i} {}  secret 0x{}  key file {}  roles: {}",
                k.address(),
                hex::encode(k.seed()),
                dev_key_path(root, i).display(),
                if roles.is_empty() {
                    "none".to_string()
                } else {
                    roles.join(", ")
                }
            )
        })
        .collect();
    let root = root.to_path_buf();
    Ok(move |b: Bound| {
        println!(
            "palisade dev chain (chain id palisade-dev), home {}{kept}",
            root.display()
        );
        println!("  rpc      http://{}   ws://{}", b.rpc, b.rpc);
        if explorer {
            println!(
                "  explorer http://{}{}",
                b.rpc,
                palisade_rpc::explorer::PATH
            );
        }
        match b.metrics {
            Some(m) => println!("  metrics  http://{m}/metrics"),
            None => println!("  metrics  disabled"),
        }
        println!("  development accounts (public keys; NEVER use them on a real chain):");
        for l in &account_lines {
            println!("{l}");
        }
        println!(
            "  Ethereum development accounts (the test mnemonic's; 10000 ether, member and deployer; EIP-155 chain id {evm_chain_id}):"
        );
        for (i, (address, key)) in crate::dev_eth::DEV_EVM_ACCOUNTS.iter().enumerate() {
            if genesis_evm.iter().any(|g| g == address) {
                println!("    ({i}) {address}  private key {key}");
            }
        }
        println!("Ctrl-C stops the chain.");
    })
}

fn dev_key_path(root: &Path, i: usize) -> PathBuf {
    root.join("dev-keys").join(format!("account{i}.json"))
}

/// The Grafana dashboard of `deploy/monitoring/`, built into the binary.
pub const GRAFANA_DASHBOARD: &str =
    include_str!("../../../deploy/monitoring/grafana/palisade-dashboard.json");

/// A Prometheus configuration scraping `targets` (host:port of each node's
/// metrics), as `deploy/monitoring/prometheus.yml` is for the default ports.
pub fn prometheus_config(targets: &[String]) -> String {
    let mut out = String::from(
        "# Written by `palisade devnet --monitoring`: scrapes this devnet's nodes.\n\
         #   prometheus --config.file=prometheus.yml\n\
         # Then import grafana/palisade-dashboard.json into Grafana.\n\
         global:\n  scrape_interval: 5s\n  evaluation_interval: 15s\n\n\
         scrape_configs:\n  - job_name: palisade-devnet\n    metrics_path: /metrics\n    \
         static_configs:\n      - targets:\n",
    );
    for t in targets {
        out.push_str(&format!("          - {t}\n"));
    }
    out
}

/// Writes `prometheus.yml` for `targets` and the Grafana dashboard into `dir`.
pub fn write_monitoring(dir: &Path, targets: &[String]) -> Result<()> {
    let grafana = dir.join("grafana");
    std::fs::create_dir_all(&grafana).with_context(|| format!("create {}", grafana.display()))?;
    let prom = dir.join("prometheus.yml");
    std::fs::write(&prom, prometheus_config(targets))
        .with_context(|| format!("write {}", prom.display()))?;
    let dash = grafana.join("palisade-dashboard.json");
    std::fs::write(&dash, GRAFANA_DASHBOARD)
        .with_context(|| format!("write {}", dash.display()))?;
    Ok(())
}
