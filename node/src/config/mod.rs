//! `config/config.toml`: the node's settings. Every field has a default, so
//! an empty file is valid; unknown fields are errors (a misspelt setting
//! must not be silently ignored). `PALISADE_*` environment variables and
//! command-line flags override the file, every setting alike ([`layers`]);
//! `palisade config show` prints the result and where each value came from
//! ([`show`]).

pub mod layers;
pub mod show;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// A name for this node in logs.
    pub moniker: String,
    pub p2p: P2pConfig,
    pub consensus: ConsensusSettings,
    pub rpc: RpcConfig,
    pub metrics: MetricsConfig,
    pub mempool: MempoolSettings,
    pub ledger: LedgerSettings,
    pub statesync: StateSyncSettings,
    pub pruning: PruningSettings,
    pub files: crate::files::FilesSettings,
    pub log: LogConfig,
}

/// How this node paces heights. The timeouts are the chain's (genesis);
/// these are the node's own, like CometBFT's `create_empty_blocks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusSettings {
    /// Start a height only when there is a transaction to include (or a
    /// peer has started it, or `empty_block_interval_ms` has passed since
    /// the last block). Off: a block every block interval, empty or not.
    pub create_empty_blocks: bool,
    /// With `create_empty_blocks = false`, the longest an idle network goes
    /// without a block, so clients still see time advance.
    pub empty_block_interval_ms: u64,
}

/// Most of `consensus.empty_block_interval_ms`: a day.
const MAX_EMPTY_BLOCK_INTERVAL_MS: u64 = 24 * 3_600_000;

/// Default of `consensus.empty_block_interval_ms`.
pub const DEFAULT_EMPTY_BLOCK_INTERVAL_MS: u64 = 30_000;

impl Default for ConsensusSettings {
    fn default() -> Self {
        ConsensusSettings {
            create_empty_blocks: true,
            empty_block_interval_ms: DEFAULT_EMPTY_BLOCK_INTERVAL_MS,
        }
    }
}

impl ConsensusSettings {
    /// How long an idle network may go without a block.
    pub fn idle_gap(&self) -> Option<std::time::Duration> {
        (!self.create_empty_blocks)
            .then(|| std::time::Duration::from_millis(self.empty_block_interval_ms))
    }
}

/// Snapshots of the state this node makes, for operators to copy and for
/// nodes that join to start from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateSyncSettings {
    /// A node with no blocks yet fetches a recent snapshot from its peers
    /// (checked chunk by chunk against a certified state root) instead of
    /// replaying every block, then block-syncs from there. Without any
    /// offer within `discovery_ms`, it block-syncs from genesis.
    pub enable: bool,
    /// A block the operator trusts (0: none): then only a snapshot of that
    /// block is taken. Without it, only one decided by the genesis
    /// validators.
    pub trust_height: u64,
    /// The hash of the block at `trust_height` (0x and 64 hex digits).
    pub trust_hash: String,
    /// How long to look for snapshot offers before block-syncing from
    /// genesis instead.
    pub discovery_ms: u64,
    /// Write a snapshot into `data/snapshots/` after every block whose
    /// height is a multiple of this (0: never); peers that join are
    /// offered the newest two.
    pub snapshot_interval: u64,
    /// How many snapshots to keep; older ones are deleted.
    pub snapshot_keep: u32,
}

impl Default for StateSyncSettings {
    fn default() -> Self {
        StateSyncSettings {
            enable: false,
            trust_height: 0,
            trust_hash: String::new(),
            discovery_ms: 15_000,
            snapshot_interval: 10_000,
            snapshot_keep: 2,
        }
    }
}

impl StateSyncSettings {
    /// The trusted block, if one is set.
    pub fn trusted_block(
        &self,
    ) -> Result<Option<(palisade_types::Height, palisade_types::Hash)>, ConfigError> {
        let hash = match self.trust_hash.trim() {
            "" => None,
            h => Some(
                h.parse::<palisade_types::Hash>()
                    .map_err(|e| ConfigError::Invalid(format!("statesync.trust_hash: {e}")))?,
            ),
        };
        match (self.trust_height, hash) {
            (0, None) => Ok(None),
            (h, Some(hash)) if h > 0 => Ok(Some((palisade_types::Height(h), hash))),
            // Half a trusted block only matters to a node that state-syncs.
            _ if !self.enable => Ok(None),
            _ => Err(ConfigError::Invalid(
                "statesync.trust_height and statesync.trust_hash go together".into(),
            )),
        }
    }
}

/// What old data a node drops (0: keep everything, an archive node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PruningSettings {
    /// Keep the blocks (and their transactions, receipts and certificates)
    /// of the last this many heights.
    pub keep_blocks: u64,
    /// Keep the state of the last this many heights (older heights'
    /// `state_get`, `eth_call` and proofs are refused as pruned).
    pub keep_state_versions: u64,
}

/// Least `pruning.keep_blocks`: peers a little behind block-sync from
/// what this node keeps, and evidence of double signing stays checkable.
pub const MIN_KEEP_BLOCKS: u64 = 100;
/// Least `pruning.keep_state_versions`: reads of a recent height that are
/// under way when a block commits must still find its state.
pub const MIN_KEEP_STATE_VERSIONS: u64 = 10;

impl PruningSettings {
    pub fn retention(&self) -> palisade_ledger::Retention {
        palisade_ledger::Retention {
            keep_blocks: self.keep_blocks,
            keep_state_versions: self.keep_state_versions,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSettings {
    /// Keep an index of which transactions touched each account
    /// (`account_getTransactions`, the explorer's account pages): two or
    /// three small records per transaction in each block's write. Turned
    /// off, the node answers those calls with -32044; turned on again, it
    /// indexes from the next block.
    pub account_index: bool,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            account_index: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Peers to dial, as `/ip4/A/tcp/P/p2p/<peer id>`.
    pub peers: Vec<String>,
    /// Peer ids allowed besides the validators (observers, sentries).
    pub observers: Vec<String>,
    pub max_peers: u32,
    /// What one peer may make this node process; past it, its messages are
    /// dropped and counted (`palisade_p2p_dropped_total`).
    pub rate_limits: palisade_network::rate::PeerLimits,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// HTTP and WebSocket JSON-RPC; loopback unless set otherwise.
    pub listen: SocketAddr,
    pub max_request_bytes: u32,
    pub max_response_bytes: u32,
    pub max_connections: u32,
    pub max_batch: u32,
    pub max_subscriptions_per_connection: u32,
    /// Web pages (origins, `scheme://host[:port]`, port `*` for any) whose
    /// scripts may call the node; a browser request or WebSocket from any
    /// other page is refused with HTTP 403. Empty (the default): no page
    /// may. Requests without an `Origin` header (not from a browser) are
    /// always served. `docs/rpc.md` has the matching rules.
    pub allowed_origins: Vec<String>,
    /// Serve the block explorer at `http://<rpc.listen>/explorer/` (on in
    /// `palisade dev` and the networks `palisade testnet`/`devnet` write).
    /// Its pages may then call this node's JSON-RPC when opened at an IP
    /// address or `localhost`; at a host name, add that origin to
    /// `allowed_origins`.
    pub explorer: bool,
    /// `system_health` and `GET /health` report the node unhealthy when it
    /// has committed no block for this long while it has peers (or can
    /// commit alone).
    pub health_max_block_age_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolSettings {
    pub max_txs: usize,
    pub max_bytes: usize,
    pub max_per_sender: usize,
    /// Blocks a transaction may wait behind a nonce gap before it is dropped.
    pub gap_ttl_blocks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info,palisade_network=debug`.
    pub level: String,
    /// `plain` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            moniker: "palisade".into(),
            p2p: P2pConfig::default(),
            consensus: ConsensusSettings::default(),
            rpc: RpcConfig::default(),
            metrics: MetricsConfig::default(),
            mempool: MempoolSettings::default(),
            ledger: LedgerSettings::default(),
            statesync: StateSyncSettings::default(),
            pruning: PruningSettings::default(),
            files: crate::files::FilesSettings::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/26656".into()],
            peers: Vec::new(),
            observers: Vec::new(),
            max_peers: 64,
            rate_limits: palisade_network::rate::PeerLimits::default(),
        }
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8545)),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_connections: 256,
            max_batch: 64,
            max_subscriptions_per_connection: 64,
            allowed_origins: Vec::new(),
            explorer: false,
            health_max_block_age_ms: crate::health::DEFAULT_MAX_BLOCK_AGE_MS,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9615)),
        }
    }
}

impl Default for MempoolSettings {
    fn default() -> Self {
        let d = crate::mempool::MempoolConfig::default();
        MempoolSettings {
            max_txs: d.max_txs,
            max_bytes: d.max_bytes,
            max_per_sender: d.max_per_sender,
            gap_ttl_blocks: d.gap_ttl_blocks,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Plain,
        }
    }
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        NodeConfig::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<NodeConfig, String> {
        let c: NodeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.p2p.listen.is_empty() {
            return Err(ConfigError::Invalid(
                "p2p.listen must name at least one address".into(),
            ));
        }
        if self.p2p.max_peers == 0 {
            return Err(ConfigError::Invalid(
                "p2p.max_peers must be at least 1".into(),
            ));
        }
        self.p2p
            .rate_limits
            .validate()
            .map_err(ConfigError::Invalid)?;
        if self.mempool.max_txs == 0
            || self.mempool.max_bytes == 0
            || self.mempool.max_per_sender == 0
        {
            return Err(ConfigError::Invalid(
                "mempool limits must be greater than zero".into(),
            ));
        }
        if self.rpc.max_request_bytes < 1024
            || self.rpc.max_batch == 0
            || self.rpc.max_connections == 0
        {
            return Err(ConfigError::Invalid(
                "rpc limits: max_request_bytes >= 1024, max_batch and max_connections >= 1".into(),
            ));
        }
        self.allowed_origins()?;
        if !(1_000..=MAX_EMPTY_BLOCK_INTERVAL_MS).contains(&self.consensus.empty_block_interval_ms)
        {
            return Err(ConfigError::Invalid(format!(
                "consensus.empty_block_interval_ms must be between 1000 and {MAX_EMPTY_BLOCK_INTERVAL_MS}"
            )));
        }
        if self.pruning.keep_blocks != 0 && self.pruning.keep_blocks < MIN_KEEP_BLOCKS {
            return Err(ConfigError::Invalid(format!(
                "pruning.keep_blocks must be 0 (keep all) or at least {MIN_KEEP_BLOCKS}"
            )));
        }
        if self.pruning.keep_state_versions != 0
            && self.pruning.keep_state_versions < MIN_KEEP_STATE_VERSIONS
        {
            return Err(ConfigError::Invalid(format!(
                "pruning.keep_state_versions must be 0 (keep all) or at least {MIN_KEEP_STATE_VERSIONS}"
            )));
        }
        self.statesync.trusted_block()?;
        if self.statesync.discovery_ms < 1_000 {
            return Err(ConfigError::Invalid(
                "statesync.discovery_ms must be at least 1000".into(),
            ));
        }
        if self.statesync.snapshot_keep == 0 {
            return Err(ConfigError::Invalid(
                "statesync.snapshot_keep must be at least 1 (statesync.snapshot_interval = 0 makes none)".into(),
            ));
        }
        if self.rpc.health_max_block_age_ms < 1_000 {
            return Err(ConfigError::Invalid(
                "rpc.health_max_block_age_ms must be at least 1000".into(),
            ));
        }
        Ok(())
    }

    /// `rpc.allowed_origins`, parsed.
    pub fn allowed_origins(&self) -> Result<palisade_rpc::AllowedOrigins, ConfigError> {
        palisade_rpc::AllowedOrigins::parse(&self.rpc.allowed_origins)
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    pub fn mempool_config(&self) -> crate::mempool::MempoolConfig {
        crate::mempool::MempoolConfig {
            max_txs: self.mempool.max_txs,
            max_bytes: self.mempool.max_bytes,
            max_per_sender: self.mempool.max_per_sender,
            gap_ttl_blocks: self.mempool.gap_ttl_blocks,
        }
    }
}
