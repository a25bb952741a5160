//! The `palisade` command line: node operation (`init`, `start`,
//! `testnet`), keys and genesis tools.

pub mod devnet;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use palisade_genesis::{ConsensusParams, Genesis, GenesisAccount, GenesisValidator};
use palisade_types::{ChainId, Keypair, Role};

use crate::app::now_ms;
use crate::config::NodeConfig;
use crate::home::{insecure_mode, read_key_with, write_key, Home, KeyPermissions};
use crate::node::Node;
use palisade_network::peer_id_of;

/// Palisade: a permissioned BFT blockchain node.
#[derive(Debug, Parser)]
#[command(
    name = "palisade",
    version,
    about = "Palisade: a permissioned BFT blockchain node",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node home: keys, config and a genesis: by default a new
    /// one-validator chain in which this node is the validator and a new,
    /// separate admin key (HOME/admin_key.json) the funded admin account;
    /// with --genesis FILE an existing chain; with --no-genesis none yet (a
    /// validator in a genesis ceremony, see `palisade genesis`).
    Init(InitArgs),
    /// Run a node from its home directory.
    #[command(after_help = SETTINGS_HELP)]
    Start(StartArgs),
    /// Generate keys, a genesis and configs for N validators on this machine.
    Testnet(TestnetArgs),
    /// Run N validators on this machine (one process each) until Ctrl-C.
    Devnet(DevnetArgs),
    /// Run a one-validator chain in a temporary home with funded,
    /// well-known development accounts.
    Dev(DevArgs),
    /// Measure a running network: open-loop signed transfers, throughput,
    /// latency and node resource use.
    Bench(crate::bench::BenchArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Genesis files.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Sign a transaction locally and submit it to a node.
    Tx(crate::client::TxArgs),
    /// Read blocks, transactions, accounts, validators and state from a node.
    #[command(subcommand)]
    Query(crate::client::QueryCommand),
    /// A node's chain, height, peers and sync state (`--watch`: live).
    Status(crate::client::watch::StatusArgs),
    /// Share files: publish, fetch, list, pin, collect garbage.
    #[command(subcommand)]
    File(crate::file_cmd::FileCommand),
    /// Snapshots of the state at a block: make, list, export, import into
    /// an empty node, verify.
    #[command(subcommand)]
    Snapshot(crate::snapshot_cmd::SnapshotCommand),
    /// A node's settings.
    #[command(subcommand)]
    Config(ConfigCommand),
}

const SETTINGS_HELP: &str = "Every setting of config/config.toml can also be set by its variable, \
PALISADE_<SECTION>_<KEY> (rpc.listen: PALISADE_RPC_LISTEN), or by --set KEY=VALUE. \
Flags win over variables, variables over the file. `palisade config show --home HOME` \
prints the settings in effect and where each came from.";

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the settings `palisade start` would run with (same home,
    /// variables and flags) as TOML, each with where its value came from
    /// (default, the config file, a PALISADE_* variable or a flag) and the
    /// variable that sets it.
    #[command(after_help = SETTINGS_HELP)]
    Show {
        /// Home directory (see `palisade init`).
        #[arg(long, env = "PALISADE_HOME")]
        home: PathBuf,
        #[command(flatten)]
        settings: crate::config::layers::SettingFlags,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Home directory to create.
    #[arg(long, env = "PALISADE_HOME")]
    pub home: PathBuf,
    /// Chain id of the new one-validator genesis.
    #[arg(long, default_value = "palisade-local")]
    pub chain_id: String,
    /// Use this genesis file instead of creating one (joining a chain).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Write keys and config but no genesis: a validator of a chain whose
    /// genesis is still being assembled (a genesis ceremony). Prints the
    /// `palisade genesis add-validator` line for the coordinator; put the
    /// genesis.json they send in HOME/config/ before `palisade start`.
    #[arg(long, conflicts_with_all = ["genesis", "chain_id"])]
    pub no_genesis: bool,
    /// A name for this node in logs.
    #[arg(long, default_value = "palisade")]
    pub moniker: String,
    /// Do not create a validator key (an observer node).
    #[arg(long)]
    pub observer: bool,
    /// libp2p listen addresses written to the config (comma separated).
    /// Default /ip4/127.0.0.1/tcp/26656 reaches this machine only; other
    /// machines need e.g. /ip4/0.0.0.0/tcp/26656.
    #[arg(long, value_delimiter = ',')]
    pub p2p_listen: Option<Vec<String>>,
    /// JSON-RPC address written to the config (default 127.0.0.1:8545).
    #[arg(long)]
    pub rpc_listen: Option<std::net::SocketAddr>,
    /// Prometheus metrics address written to the config (default
    /// 127.0.0.1:9615).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Home directory (see `palisade init`).
    #[arg(long, env = "PALISADE_HOME")]
    pub home: PathBuf,
    #[command(flatten)]
    pub settings: crate::config::layers::SettingFlags,
    /// Use key files that group or others can read (refused otherwise).
    #[arg(long, env = "PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_insecure_key_permissions: bool,
}

#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub validators: u16,
    /// Output directory; node i's home is DIR/node{i}.
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, default_value = "palisade-testnet")]
    pub chain_id: String,
    #[command(flatten)]
    pub ports: BasePorts,
    /// Minimum time between blocks.
    #[arg(long, default_value_t = palisade_genesis::ConsensusParams::default().block_interval_ms)]
    pub block_interval_ms: u64,
    /// Base propose timeout (prevote and precommit get half).
    #[arg(long, default_value_t = 1000)]
    pub propose_timeout_ms: u64,
    /// Also fund this many well-known load-test accounts (role member) for
    /// `palisade bench`, and as many Ethereum ones (member; the first also
    /// deployer) for `palisade bench --workload erc20`. Their keys are
    /// public: test networks only.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub bench_accounts: u32,
    /// Also fund the standard test mnemonic's ten Ethereum accounts (member
    /// and deployer), as `palisade dev` does. Their keys are public: test
    /// networks only.
    #[arg(long)]
    pub dev_evm_accounts: bool,
    #[command(flatten)]
    pub empty_blocks: EmptyBlockFlags,
}

/// How a local network paces an idle chain; written to each node's
/// config.toml (`[consensus]`).
#[derive(Debug, Clone, Copy, Args)]
pub struct EmptyBlockFlags {
    /// Make a block every block interval even when there is nothing to
    /// include (`true`), or only when a transaction is waiting and one every
    /// --empty-block-interval-ms so clients still see time advance
    /// (`false`). Default: false for `dev` and `devnet`, true for `testnet`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub create_empty_blocks: Option<bool>,
    /// Longest an idle chain goes without a block when it makes no empty
    /// blocks.
    #[arg(long, default_value_t = crate::config::DEFAULT_EMPTY_BLOCK_INTERVAL_MS)]
    pub empty_block_interval_ms: u64,
}

impl EmptyBlockFlags {
    /// The settings, with `create_empty_blocks` defaulting to `default`.
    pub fn settings(self, default: bool) -> crate::config::ConsensusSettings {
        crate::config::ConsensusSettings {
            create_empty_blocks: self.create_empty_blocks.unwrap_or(default),
            empty_block_interval_ms: self.empty_block_interval_ms,
        }
    }

    /// No empty blocks (what `dev` and `devnet` do by default).
    pub fn quiet(self) -> EmptyBlockFlags {
        EmptyBlockFlags {
            create_empty_blocks: Some(self.create_empty_blocks.unwrap_or(false)),
            ..self
        }
    }
}

/// Loopback ports of a local network: node i uses base + i.
#[derive(Debug, Clone, Copy, Args)]
pub struct BasePorts {
    /// First p2p port; node i listens on base + i.
    #[arg(long, default_value_t = 26656)]
    pub p2p_port: u16,
    /// First JSON-RPC port; node i serves on base + i.
    #[arg(long, default_value_t = 8545)]
    pub rpc_port: u16,
    /// First metrics port; node i serves on base + i.
    #[arg(long, default_value_t = 9615)]
    pub metrics_port: u16,
}

#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub validators: u16,
    /// Where the homes and logs go (reused if it already holds a devnet).
    /// Default: a new temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub ports: BasePorts,
    #[arg(long, default_value_t = palisade_genesis::ConsensusParams::default().block_interval_ms)]
    pub block_interval_ms: u64,
    /// Fund this many well-known load-test accounts (see `palisade bench`).
    #[arg(long, default_value_t = 0)]
    pub bench_accounts: u32,
    /// Write a Prometheus configuration that scrapes this devnet's nodes
    /// (DIR/prometheus.yml) and the Grafana dashboard
    /// (DIR/grafana/palisade-dashboard.json) into DIR.
    #[arg(long, value_name = "DIR")]
    pub monitoring: Option<PathBuf>,
    #[command(flatten)]
    pub empty_blocks: EmptyBlockFlags,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Home directory (default: a new temporary directory, removed on exit
    /// unless --keep).
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// Keep the temporary home when the chain stops.
    #[arg(long)]
    pub keep: bool,
    #[arg(long, default_value = "127.0.0.1:8545")]
    pub rpc_listen: std::net::SocketAddr,
    #[arg(long, default_value = "127.0.0.1:9615")]
    pub metrics_listen: std::net::SocketAddr,
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/26656")]
    pub p2p_listen: String,
    #[arg(long, default_value_t = palisade_genesis::ConsensusParams::default().block_interval_ms)]
    pub block_interval_ms: u64,
    #[command(flatten)]
    pub empty_blocks: EmptyBlockFlags,
    /// Number of funded development accounts.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub accounts: u16,
    /// Origins of web pages allowed to use the JSON-RPC, comma separated
    /// (empty: none). Default: pages served from this machine, any port
    /// (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*` and
    /// their `https` forms). Like the other flags, written to a new home's
    /// config.
    #[arg(long, value_delimiter = ',')]
    pub rpc_allowed_origins: Option<Vec<String>>,
    /// Use key files in an existing `--home` that group or others can read
    /// (refused otherwise).
    #[arg(long, env = "PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_insecure_key_permissions: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new ed25519 key file (mode 0600).
    Generate {
        /// Where to write it; refuses to overwrite.
        #[arg(long)]
        output: PathBuf,
    },
    /// Print a key file's public key, account address and libp2p peer id.
    Show { file: PathBuf },
}

pub use crate::genesis_cmd::GenesisCommand;

pub(crate) fn write_new(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

fn new_key() -> Keypair {
    Keypair::generate(&mut rand::rngs::OsRng)
}

/// Runs the command line. Errors come back for `main` to print as one line.
/// What the test-only `palisade-test-node` binary (in `tests/`) adds to a
/// node it runs with `start` or `dev`: an outbound tap (a Byzantine
/// validator) or a background task made to fail (supervision tests). The
/// `palisade` binary passes none and has no option that sets them.
#[derive(Debug, Default, Clone)]
pub struct TestHooks {
    pub tap: Option<std::sync::Arc<dyn crate::driver::OutboundTap>>,
    pub task_fault: Option<crate::supervisor::TaskFault>,
    /// Serve file pieces with a byte flipped (a Byzantine holder).
    pub corrupt_pieces: bool,
    /// Serve snapshot chunks with a byte flipped (a Byzantine peer).
    pub corrupt_chunks: bool,
}

pub fn run(cli: Cli) -> Result<()> {
    run_with(cli, TestHooks::default())
}

/// [`run`] with [`TestHooks`] for the node that `start` or `dev` runs.
pub fn run_with(cli: Cli, hooks: TestHooks) -> Result<()> {
    match cli.command {
        Command::Init(a) => init(a),
        Command::Start(a) => start(a, hooks),
        Command::Testnet(a) => testnet(a),
        Command::Devnet(a) => devnet::devnet(a),
        Command::Bench(a) => crate::bench::bench(a),
        Command::Dev(a) => devnet::dev(a, hooks),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "palisade", &mut std::io::stdout());
            Ok(())
        }
        Command::Tx(a) => crate::client::tx(a),
        Command::Query(q) => crate::client::query(q),
        Command::Status(a) => crate::client::status(a),
        Command::File(c) => crate::file_cmd::run(c),
        Command::Snapshot(c) => crate::snapshot_cmd::run(c),
        Command::Config(ConfigCommand::Show { home, settings }) => {
            let home = Home::new(&home);
            require_config(&home)?;
            let layered = crate::config::layers::load(&home.config_file(), &settings)?;
            print!("{}", crate::config::show::render(&layered));
            Ok(())
        }
        Command::Keys(KeysCommand::Generate { output }) => {
            let k = new_key();
            write_key(&output, &k)?;
            println!("wrote {}", output.display());
            print_key(&k)
        }
        Command::Keys(KeysCommand::Show { file }) => {
            // Showing a key uses nothing secret, so a file others can read
            // is shown, with the warning; signing with it is refused.
            if let Some(mode) = insecure_mode(&file)? {
                eprintln!(
                    "warning: {} is readable by group or others (mode {mode:04o}); run `chmod 600 {}`",
                    file.display(),
                    file.display()
                );
            }
            print_key(&read_key_with(&file, KeyPermissions::AllowInsecure)?)
        }
        Command::Genesis(c) => crate::genesis_cmd::run(c),
    }
}

fn print_key(k: &Keypair) -> Result<()> {
    println!("public_key: {}", k.public_key());
    println!("address:    {}", k.address());
    println!("peer_id:    {}", peer_id_of(&k.public_key())?);
    Ok(())
}

fn init(a: InitArgs) -> Result<()> {
    let home = Home::new(&a.home);
    if home.config_file().exists() || home.node_key_file().exists() {
        bail!("{} is already initialized", a.home.display());
    }
    if a.observer && a.genesis.is_none() && !a.no_genesis {
        bail!("an observer joins an existing chain: pass --genesis FILE (or --no-genesis and add it later)");
    }
    // Everything the flags could get wrong is checked before the first
    // file is written, so a refused init leaves no half-made home.
    let cfg = init_config(&a)?;
    let joined = match &a.genesis {
        Some(path) => Some(Genesis::from_file(path)?),
        None => None,
    };
    let made = write_init_home(&a, &home, &cfg, joined)?;
    print_init(&a, &home, &cfg, &made)
}

/// The config `init` writes: the defaults with the flags' addresses.
fn init_config(a: &InitArgs) -> Result<NodeConfig> {
    let mut cfg = NodeConfig {
        moniker: a.moniker.clone(),
        ..NodeConfig::default()
    };
    if let Some(l) = &a.p2p_listen {
        cfg.p2p.listen = non_empty(l.clone());
        for addr in &cfg.p2p.listen {
            addr.parse::<libp2p::Multiaddr>()
                .map_err(|e| anyhow::anyhow!("--p2p-listen {addr}: {e}"))?;
        }
    }
    if let Some(r) = a.rpc_listen {
        cfg.rpc.listen = r;
    }
    if let Some(m) = a.metrics_listen {
        cfg.metrics.listen = m;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The keys and genesis `init` made for a home.
struct InitHome {
    node_key: Keypair,
    validator_key: Option<Keypair>,
    genesis: Option<Genesis>,
    /// The new chain's funded admin key, when `init` made the chain.
    admin: Option<Keypair>,
}

/// Writes the home's keys, its genesis (`joined`, a new one-validator
/// chain's, or none) and `cfg`.
fn write_init_home(
    a: &InitArgs,
    home: &Home,
    cfg: &NodeConfig,
    joined: Option<Genesis>,
) -> Result<InitHome> {
    let node_key = new_key();
    write_key(&home.node_key_file(), &node_key)?;
    let validator_key = if a.observer {
        None
    } else {
        let k = new_key();
        write_key(&home.validator_key_file(), &k)?;
        Some(k)
    };
    let (genesis, admin) = match (joined, &validator_key) {
        (Some(g), _) => (Some(g), None),
        (None, _) if a.no_genesis => (None, None),
        (None, None) => bail!("an observer joins an existing chain: pass --genesis"),
        (None, Some(vk)) => {
            let admin = new_key();
            let g = one_validator_genesis(a, vk, &node_key, &admin)?;
            write_key(&home.admin_key_file(), &admin)?;
            (Some(g), Some(admin))
        }
    };
    if let Some(g) = &genesis {
        write_new(&home.genesis_file(), &g.to_json())?;
    }
    write_new(&home.config_file(), &cfg.to_toml())?;
    Ok(InitHome {
        node_key,
        validator_key,
        genesis,
        admin,
    })
}

/// What `init` made, and what the operator does next.
fn print_init(a: &InitArgs, home: &Home, cfg: &NodeConfig, made: &InitHome) -> Result<()> {
    let peer_id = peer_id_of(&made.node_key.public_key())?.to_string();
    println!("initialized {}", a.home.display());
    println!("moniker:       {}", a.moniker);
    if let Some(g) = &made.genesis {
        println!("chain_id:      {}", g.chain_id);
        println!("genesis_hash:  {}", g.hash());
    }
    println!("peer_id:       {peer_id}");
    println!("node_key:      {}", made.node_key.public_key());
    if let Some(k) = &made.validator_key {
        println!("consensus_key: {}", k.public_key());
    }
    if let Some(listen) = cfg.p2p.listen.first() {
        println!(
            "p2p_address:   {}",
            crate::genesis_cmd::p2p_address(listen, &peer_id)
        );
    }
    let networked = a.no_genesis || a.genesis.is_some();
    if networked && !crate::genesis_cmd::listens_beyond_loopback(&cfg.p2p.listen) {
        println!("note: p2p listens on loopback only, so other machines cannot connect: rerun init with --p2p-listen /ip4/0.0.0.0/tcp/26656 (or edit p2p.listen in config.toml)");
    }
    if let Some(admin) = &made.admin {
        println!(
            "admin:         {} (key {})",
            admin.address(),
            home.admin_key_file().display()
        );
        println!("  the chain's funded admin account; the node never reads this key:");
        println!("  move it off this machine and sign admin transactions elsewhere");
    }
    if made.genesis.is_none() {
        print_awaiting_genesis(a, home, made);
    }
    Ok(())
}

/// For a home without a genesis: what the genesis coordinator (or the
/// validators, for an observer) needs, and where the genesis goes.
fn print_awaiting_genesis(a: &InitArgs, home: &Home, made: &InitHome) {
    match &made.validator_key {
        Some(k) => {
            println!("for the genesis coordinator (public keys only, nothing secret):");
            println!(
                "  palisade genesis add-validator genesis.json --name {} --consensus-key {} --node-key {} --power 10",
                a.moniker,
                k.public_key(),
                made.node_key.public_key()
            );
            println!("  and the p2p_address above, for the other validators' peer lists");
        }
        None => println!(
            "add this observer's peer_id to the validators' p2p.observers, or they refuse it"
        ),
    }
    println!(
        "no genesis yet: put the chain's genesis.json at {} before `palisade start`",
        home.genesis_file().display()
    );
}

/// A new chain of one validator (this node, `vk`) whose only funded
/// account, with every role, is `admin`: an account key of its own, never
/// the consensus key, so a compromised node cannot spend or administer.
fn one_validator_genesis(
    a: &InitArgs,
    vk: &Keypair,
    node_key: &Keypair,
    admin: &Keypair,
) -> Result<Genesis> {
    let g = Genesis {
        evm_accounts: Vec::new(),
        chain_id: ChainId::new(&a.chain_id).map_err(|e| anyhow::anyhow!("--chain-id: {e}"))?,
        genesis_time_ms: now_ms(),
        consensus: ConsensusParams::default(),
        params: Default::default(),
        validators: vec![GenesisValidator {
            name: a.moniker.clone(),
            consensus_key: vk.public_key(),
            node_key: node_key.public_key(),
            power: 10,
        }],
        accounts: vec![GenesisAccount {
            address: admin.address(),
            balance: 1_000_000_000_000,
            roles: Role::ALL.to_vec(),
        }],
    };
    g.validate()?;
    Ok(g)
}

pub(crate) fn testnet(a: TestnetArgs) -> Result<()> {
    let n = usize::from(a.validators);
    let chain_id = ChainId::new(&a.chain_id).map_err(|e| anyhow::anyhow!("--chain-id: {e}"))?;
    check_testnet_room(&a, n)?;
    let homes: Vec<Home> = (0..n)
        .map(|i| Home::new(a.output.join(format!("node{i}"))))
        .collect();
    let (node_keys, validators) = write_validator_keys(&homes)?;
    let admin = new_key();
    write_key(&a.output.join("admin_key.json"), &admin)?;
    let genesis = testnet_genesis(&a, chain_id, validators, &admin);
    genesis.validate()?;
    let text = genesis.to_json();
    for (i, home) in homes.iter().enumerate() {
        write_new(&home.genesis_file(), &text)?;
        write_new(
            &home.config_file(),
            &testnet_config(&a, &node_keys, i)?.to_toml(),
        )?;
    }
    print_testnet(&a, &homes, &genesis, &admin);
    Ok(())
}

/// Refuses ports that would run past 65535 for `n` nodes, and an output
/// directory with something in it.
fn check_testnet_room(a: &TestnetArgs, n: usize) -> Result<()> {
    for (flag, base) in [
        ("--p2p-port", a.ports.p2p_port),
        ("--rpc-port", a.ports.rpc_port),
        ("--metrics-port", a.ports.metrics_port),
    ] {
        if usize::from(base) + n > usize::from(u16::MAX) {
            bail!("{flag} {base} leaves no room for {n} nodes");
        }
    }
    if a.output.exists()
        && a.output
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} exists and is not empty", a.output.display());
    }
    Ok(())
}

/// New node and validator keys in each home: the node keys, and the
/// validators they make for the genesis.
fn write_validator_keys(homes: &[Home]) -> Result<(Vec<Keypair>, Vec<GenesisValidator>)> {
    let mut node_keys = Vec::new();
    let mut validators = Vec::new();
    for (i, home) in homes.iter().enumerate() {
        let nk = new_key();
        let vk = new_key();
        write_key(&home.node_key_file(), &nk)?;
        write_key(&home.validator_key_file(), &vk)?;
        validators.push(GenesisValidator {
            name: format!("validator-{i}"),
            consensus_key: vk.public_key(),
            node_key: nk.public_key(),
            power: 10,
        });
        node_keys.push(nk);
    }
    Ok((node_keys, validators))
}

/// The testnet's genesis: `admin` with every role, and the bench and
/// development accounts asked for.
fn testnet_genesis(
    a: &TestnetArgs,
    chain_id: ChainId,
    validators: Vec<GenesisValidator>,
    admin: &Keypair,
) -> Genesis {
    Genesis {
        evm_accounts: if a.dev_evm_accounts {
            crate::dev_eth::genesis_accounts()
        } else {
            Vec::new()
        }
        .into_iter()
        .chain(crate::bench_erc20::genesis_accounts(a.bench_accounts))
        .collect(),
        chain_id,
        genesis_time_ms: now_ms(),
        consensus: crate::genesis_cmd::timing(a.propose_timeout_ms, 30_000, a.block_interval_ms),
        params: Default::default(),
        validators,
        accounts: std::iter::once(GenesisAccount {
            address: admin.address(),
            balance: 1_000_000_000_000_000,
            roles: Role::ALL.to_vec(),
        })
        .chain((0..a.bench_accounts).map(|i| GenesisAccount {
            address: crate::bench::bench_account(i).address(),
            balance: 1_000_000_000_000,
            roles: vec![Role::Member],
        }))
        .collect(),
    }
}

/// Node `i`'s config: its ports (the bases plus `i`) on loopback, and
/// every other node as a peer.
fn testnet_config(a: &TestnetArgs, node_keys: &[Keypair], i: usize) -> Result<NodeConfig> {
    let n = node_keys.len();
    let peer_addr = |j: usize| -> Result<String> {
        Ok(format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            usize::from(a.ports.p2p_port) + j,
            peer_id_of(&node_keys[j].public_key())?
        ))
    };
    let mut cfg = NodeConfig {
        moniker: format!("node{i}"),
        ..NodeConfig::default()
    };
    let port = |base: u16| u16::try_from(usize::from(base) + i).unwrap_or(base);
    cfg.p2p.listen = vec![format!("/ip4/127.0.0.1/tcp/{}", port(a.ports.p2p_port))];
    cfg.p2p.peers = (0..n)
        .filter(|j| *j != i)
        .map(peer_addr)
        .collect::<Result<_>>()?;
    cfg.rpc.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port(a.ports.rpc_port)));
    cfg.metrics.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port(a.ports.metrics_port)));
    // A local test network is for looking at.
    cfg.rpc.explorer = true;
    cfg.consensus = a.empty_blocks.settings(true);
    Ok(cfg)
}

fn print_testnet(a: &TestnetArgs, homes: &[Home], genesis: &Genesis, admin: &Keypair) {
    let n = homes.len();
    println!("testnet of {n} validators in {}", a.output.display());
    println!("chain_id:     {}", genesis.chain_id);
    println!("genesis_hash: {}", genesis.hash());
    println!(
        "admin key:    {} (address {})",
        a.output.join("admin_key.json").display(),
        admin.address()
    );
    for (i, home) in homes.iter().enumerate() {
        println!(
            "node{i}: palisade start --home {}   (p2p {}, rpc 127.0.0.1:{}, metrics 127.0.0.1:{}, explorer http://127.0.0.1:{}/explorer/)",
            home.root().display(),
            usize::from(a.ports.p2p_port) + i,
            usize::from(a.ports.rpc_port) + i,
            usize::from(a.ports.metrics_port) + i,
            usize::from(a.ports.rpc_port) + i
        );
    }
}

fn start(a: StartArgs, hooks: TestHooks) -> Result<()> {
    let home = Home::new(&a.home).with_key_permissions(KeyPermissions::allow_insecure(
        a.allow_insecure_key_permissions,
    ));
    require_config(&home)?;
    let cfg = crate::config::layers::load(&home.config_file(), &a.settings)?.config;
    crate::logging::init(&cfg.log)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("palisade")
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let stop = shutdown_signal();
        let node = Node::open(home, cfg)?
            .with_tap(hooks.tap)
            .with_task_fault(hooks.task_fault)
            .with_corrupt_pieces(hooks.corrupt_pieces)
            .with_corrupt_chunks(hooks.corrupt_chunks);
        node.run(stop).await?;
        Ok::<(), anyhow::Error>(())
    })?;
    // Don't wait for blocking tasks (a sync answer being read) on the way out.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

fn require_config(home: &Home) -> Result<()> {
    if !home.config_file().exists() {
        bail!(
            "{} has no config/config.toml: run `palisade init --home {}` first",
            home.root().display(),
            home.root().display()
        );
    }
    Ok(())
}

/// A comma-separated list flag's entries, without empty ones (an empty
/// value clears the list).
pub(crate) fn non_empty(v: Vec<String>) -> Vec<String> {
    v.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called
/// (inside the runtime), not when the future is first polled: called
/// before the node opens, a signal during start-up also stops it cleanly
/// (a `dev` home is removed, databases closed) instead of killing it.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(int) => {}
                _ = wait(term) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
