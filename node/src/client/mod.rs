//! Client commands of the CLI: `tx ...`, `query ...`, `status`. They talk
//! to a node over JSON-RPC (the typed client of `palisade-rpc`) and sign
//! locally: the key never leaves this machine.

pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use palisade_rpc::types::{BlockId, HexBytes, ReceiptResponse, StateQuery};
use palisade_rpc::PalisadeApiClient;
use palisade_types::{
    encode, Action, Address, BoundedBytes, ChainId, EvmAddress, Hash, Keypair, Param, PublicKey,
    Role, Transaction,
};

use crate::home::{insecure_mode, read_key_with, KeyPermissions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The node's JSON-RPC endpoint.
    #[arg(
        long,
        env = "PALISADE_RPC",
        default_value = "http://127.0.0.1:8545",
        global = true
    )]
    pub rpc: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct TxArgs {
    #[command(subcommand)]
    pub action: TxAction,
    /// Key file of the signing account (mode 0600: one that group or
    /// others can read is refused).
    #[arg(long, env = "PALISADE_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// Sign with a key file that group or others can read.
    #[arg(long, env = "PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_insecure_key_permissions: bool,
    /// Nonce to use (default: the account's next nonce from the node).
    #[arg(long, global = true)]
    pub nonce: Option<u64>,
    /// Chain id (default: the node's). Signing for another chain is refused.
    #[arg(long, global = true)]
    pub chain_id: Option<String>,
    /// Wait for the receipt; exit non-zero if the transaction failed.
    #[arg(long, global = true)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value_t = 30_000, global = true)]
    pub timeout_ms: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum TxAction {
    /// Move tokens to another account.
    Transfer {
        #[arg(long)]
        to: Address,
        /// Amount in the smallest unit (decimal).
        #[arg(long)]
        amount: u128,
    },
    /// Create tokens (role minter).
    Mint {
        #[arg(long)]
        to: Address,
        #[arg(long)]
        amount: u128,
    },
    /// Destroy own tokens.
    Burn {
        #[arg(long)]
        amount: u128,
    },
    /// Write a value under namespace/key (UTF-8 text, or 0x-hex).
    Put {
        #[arg(long)]
        namespace: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        value: String,
    },
    /// Remove namespace/key.
    Delete {
        #[arg(long)]
        namespace: String,
        #[arg(long)]
        key: String,
    },
    /// Give an account a role (admin). A 20-byte EVM address (0x and 40
    /// hex digits) may hold member and deployer.
    Grant {
        #[arg(long)]
        account: AccountArg,
        #[arg(long)]
        role: Role,
    },
    /// Take a role from an account or EVM address (admin).
    Revoke {
        #[arg(long)]
        account: AccountArg,
        #[arg(long)]
        role: Role,
    },
    /// Call an EVM contract, or send value to an EVM address, as this
    /// account's EVM address (role member).
    EvmCall {
        #[arg(long)]
        to: EvmAddress,
        /// Value to send, in the smallest unit.
        #[arg(long, default_value_t = 0)]
        value: u128,
        /// Call data, 0x-hex (an ABI-encoded call).
        #[arg(long, default_value = "0x")]
        data: String,
        /// Most gas the call may use.
        #[arg(long, default_value_t = DEFAULT_GAS_LIMIT)]
        gas_limit: u64,
    },
    /// Deploy an EVM contract (roles member and deployer).
    EvmCreate {
        /// Creation code (init code with constructor arguments appended):
        /// 0x-hex, or @FILE holding hex as solc writes it (`--bin`).
        #[arg(long)]
        code: String,
        /// Value to give the contract, in the smallest unit.
        #[arg(long, default_value_t = 0)]
        value: u128,
        /// Most gas the creation may use.
        #[arg(long, default_value_t = DEFAULT_GAS_LIMIT)]
        gas_limit: u64,
    },
    /// Add a validator (validator operator).
    ValidatorAdd {
        #[arg(long)]
        consensus_key: PublicKey,
        #[arg(long)]
        node_key: PublicKey,
        #[arg(long)]
        power: u64,
    },
    /// Remove a validator (validator operator).
    ValidatorRemove {
        #[arg(long)]
        consensus_key: PublicKey,
    },
    /// Change a validator's voting power (validator operator).
    ValidatorPower {
        #[arg(long)]
        consensus_key: PublicKey,
        #[arg(long)]
        power: u64,
    },
    /// Change a chain parameter (admin).
    SetParam {
        #[arg(long, value_enum)]
        name: ParamName,
        #[arg(long)]
        value: u64,
    },
}

/// Gas limit of `tx evm-call` and `tx evm-create` when none is given:
/// enough for most calls and deployments, within the per-transaction cap.
pub const DEFAULT_GAS_LIMIT: u64 = 5_000_000;

/// An account as `grant`/`revoke` name it: a native address (64 hex
/// digits) or an EVM address (40).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountArg {
    Native(Address),
    Evm(EvmAddress),
}

impl std::str::FromStr for AccountArg {
    type Err = String;
    fn from_str(s: &str) -> Result<AccountArg, String> {
        match s.trim_start_matches("0x").len() {
            40 => s.parse().map(AccountArg::Evm).map_err(|e| format!("{s:?}: {e}")),
            64 => s
                .parse()
                .map(AccountArg::Native)
                .map_err(|e| format!("{s:?}: {e}")),
            n => Err(format!(
                "{s:?} is {n} hex digits: an account is 0x and 64 hex digits, an EVM address 0x and 40"
            )),
        }
    }
}

/// Chain parameters an admin may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParamName {
    MaxBlockTxs,
    MaxBlockBytes,
    MaxTxBytes,
    MaxValueBytes,
    ValidatorUpdateDelay,
    MaxBlockGas,
    MinGasPrice,
    FileQuotaBytes,
}

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// A block by height or 0x-hash.
    Block {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A transaction and its receipt.
    Tx {
        hash: Hash,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// An account's balance, nonce and roles.
    Account {
        address: Address,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The validator set (of the next block unless --height).
    Validators {
        #[arg(long)]
        height: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A raw state key (0x-hex), optionally with its Merkle proof.
    State {
        key: String,
        #[arg(long)]
        prove: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub(crate) fn client(url: &str) -> Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(90))
        .build(url)
        .with_context(|| format!("RPC endpoint {url}"))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// Turns a JSON-RPC client error into one readable line.
pub(crate) fn rpc_err(url: &str) -> impl Fn(jsonrpsee::core::ClientError) -> anyhow::Error + '_ {
    move |e| match e {
        jsonrpsee::core::ClientError::Call(obj) => match obj.data() {
            Some(d) => anyhow!("{} (code {}, {})", obj.message(), obj.code(), d.get()),
            None => anyhow!("{} (code {})", obj.message(), obj.code()),
        },
        jsonrpsee::core::ClientError::Transport(t) => anyhow!("cannot reach {url}: {t}"),
        other => anyhow!("{url}: {other}"),
    }
}

pub(crate) fn print<T: serde::Serialize>(
    output: Output,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Text => println!("{}", text()),
    }
    Ok(())
}

fn bytes_arg(s: &str) -> Result<Vec<u8>> {
    if s.starts_with("0x") {
        palisade_types::parse_hex(s).map_err(|e| anyhow!("{s:?}: {e}"))
    } else {
        Ok(s.as_bytes().to_vec())
    }
}

fn hex_arg(what: &str, s: &str) -> Result<Vec<u8>> {
    let t = s.trim();
    let digits = t.strip_prefix("0x").unwrap_or(t);
    hex::decode(digits).map_err(|e| anyhow!("{what} is not hex: {e}"))
}

/// `--code`: hex, or `@FILE` holding hex (solc's `--bin` output).
fn code_arg(s: &str) -> Result<Vec<u8>> {
    match s.strip_prefix('@') {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            hex_arg(path, &text)
        }
        None => hex_arg("--code", s),
    }
}

fn bounded<const N: usize>(what: &str, s: &str) -> Result<BoundedBytes<N>> {
    BoundedBytes::new(bytes_arg(s)?).map_err(|len| anyhow!("{what} is {len} bytes; at most {N}"))
}

fn action(a: &TxAction) -> Result<Action> {
    Ok(match a {
        TxAction::Transfer { to, amount } => Action::Transfer {
            to: *to,
            amount: *amount,
        },
        TxAction::Mint { to, amount } => Action::Mint {
            to: *to,
            amount: *amount,
        },
        TxAction::Burn { amount } => Action::Burn { amount: *amount },
        TxAction::Put {
            namespace,
            key,
            value,
        } => Action::Put {
            namespace: bounded("namespace", namespace)?,
            key: bounded("key", key)?,
            value: bounded("value", value)?,
        },
        TxAction::Delete { namespace, key } => Action::Delete {
            namespace: bounded("namespace", namespace)?,
            key: bounded("key", key)?,
        },
        TxAction::Grant { account, role } => grant_role(*account, *role),
        TxAction::Revoke { account, role } => revoke_role(*account, *role),
        TxAction::EvmCall {
            to,
            value,
            data,
            gas_limit,
        } => evm_call(*to, *value, data, *gas_limit)?,
        TxAction::EvmCreate {
            code,
            value,
            gas_limit,
        } => evm_create(code, *value, *gas_limit)?,
        TxAction::ValidatorAdd {
            consensus_key,
            node_key,
            power,
        } => Action::AddValidator {
            consensus_key: *consensus_key,
            node_key: *node_key,
            power: *power,
        },
        TxAction::ValidatorRemove { consensus_key } => Action::RemoveValidator {
            consensus_key: *consensus_key,
        },
        TxAction::ValidatorPower {
            consensus_key,
            power,
        } => Action::SetValidatorPower {
            consensus_key: *consensus_key,
            power: *power,
        },
        TxAction::SetParam { name, value } => set_param(*name, *value)?,
    })
}

fn grant_role(account: AccountArg, role: Role) -> Action {
    match account {
        AccountArg::Native(account) => Action::GrantRole { account, role },
        AccountArg::Evm(address) => Action::GrantEvmRole { address, role },
    }
}

fn revoke_role(account: AccountArg, role: Role) -> Action {
    match account {
        AccountArg::Native(account) => Action::RevokeRole { account, role },
        AccountArg::Evm(address) => Action::RevokeEvmRole { address, role },
    }
}

fn evm_call(to: EvmAddress, value: u128, data: &str, gas_limit: u64) -> Result<Action> {
    Ok(Action::EvmCall {
        to,
        value,
        data: BoundedBytes::new(hex_arg("--data", data)?)
            .map_err(|len| anyhow!("--data is {len} bytes; too large for a transaction"))?,
        gas_limit,
    })
}

fn evm_create(code: &str, value: u128, gas_limit: u64) -> Result<Action> {
    Ok(Action::EvmCreate {
        value,
        code: BoundedBytes::new(code_arg(code)?)
            .map_err(|len| anyhow!("--code is {len} bytes; too large for a transaction"))?,
        gas_limit,
    })
}

fn set_param(name: ParamName, value: u64) -> Result<Action> {
    let small =
        || u32::try_from(value).map_err(|_| anyhow!("--value {value} does not fit this parameter"));
    Ok(Action::SetParam {
        param: match name {
            ParamName::MaxBlockTxs => Param::MaxBlockTxs(small()?),
            ParamName::MaxBlockBytes => Param::MaxBlockBytes(small()?),
            ParamName::MaxTxBytes => Param::MaxTxBytes(small()?),
            ParamName::MaxValueBytes => Param::MaxValueBytes(small()?),
            ParamName::ValidatorUpdateDelay => Param::ValidatorUpdateDelay(value),
            ParamName::MaxBlockGas => Param::MaxBlockGas(value),
            ParamName::MinGasPrice => Param::MinGasPrice(u128::from(value)),
            ParamName::FileQuotaBytes => Param::FileQuotaBytes(value),
        },
    })
}

pub(crate) fn receipt_text(r: &ReceiptResponse) -> String {
    let mut text = if r.success {
        format!(
            "committed {} in block {} (index {}): success",
            r.tx_hash, r.height, r.index
        )
    } else {
        format!(
            "committed {} in block {} (index {}): FAILED code {}: {}",
            r.tx_hash, r.height, r.index, r.code, r.error
        )
    };
    if let Some(e) = &r.evm {
        text.push_str(&format!("\n  gas used {}", e.gas_used));
        // A failed creation's receipt names the address it would have had.
        if let (Some(c), true) = (e.contract_address, r.success) {
            text.push_str(&format!("\n  contract {c}"));
        }
        if !e.output.is_empty() {
            text.push_str(&format!("\n  output 0x{}", hex::encode(&e.output)));
        }
        if !e.logs.is_empty() {
            text.push_str(&format!("\n  logs {}", e.logs.len()));
        }
    }
    text
}

/// Reads the signing key `path` names, warning about (or refusing) one
/// others can read.
pub(crate) fn signing_key(path: Option<&PathBuf>, allow_insecure: bool) -> Result<Keypair> {
    let key_path = path
        .ok_or_else(|| anyhow!("--key-file FILE (or PALISADE_KEY_FILE) names the signing key"))?;
    let permissions = KeyPermissions::allow_insecure(allow_insecure);
    if permissions == KeyPermissions::AllowInsecure {
        if let Some(mode) = insecure_mode(key_path)? {
            eprintln!(
                "warning: {} is readable by group or others (mode {mode:04o}); signing with it because of --allow-insecure-key-permissions; run `chmod 600 {}`",
                key_path.display(),
                key_path.display()
            );
        }
    }
    Ok(read_key_with(key_path, permissions)?)
}

/// The chain id of the node at `url`, checked against `expected`.
pub(crate) async fn node_chain_id(
    c: &HttpClient,
    url: &str,
    expected: Option<&str>,
) -> Result<ChainId> {
    let status = c.system_status().await.map_err(rpc_err(url))?;
    match expected {
        Some(id) if *id != status.chain_id => bail!(
            "--chain-id {id} but the node at {url} serves chain {}",
            status.chain_id
        ),
        _ => ChainId::new(status.chain_id.clone()).map_err(|e| anyhow!("node's chain id: {e}")),
    }
}

/// Signs `action` with `key` (at `nonce`, or the account's next) and
/// submits it; with `wait`, waits for its receipt and fails if the
/// transaction did.
pub(crate) async fn send_action(
    c: &HttpClient,
    url: &str,
    key: &Keypair,
    chain_id: ChainId,
    nonce: Option<u64>,
    action: Action,
    wait: Option<u64>,
) -> Result<Sent> {
    let e = rpc_err(url);
    let nonce = match nonce {
        Some(n) => n,
        // Pending transactions of ours in the mempool hold the next
        // nonces; the account's nonce is the next committed one.
        None => c.state_get_account(key.address()).await.map_err(&e)?.nonce,
    };
    let tx = Transaction {
        chain_id,
        nonce,
        signer: key.address(),
        action,
    }
    .sign(key);
    let bytes = HexBytes(encode(&tx));
    Ok(match wait {
        Some(timeout_ms) => Sent::Receipt(
            c.tx_submit_and_wait(
                bytes,
                Some(timeout_ms.min(palisade_rpc::server::MAX_WAIT_MS)),
            )
            .await
            .map_err(&e)?,
        ),
        None => Sent::Submitted(c.tx_submit(bytes).await.map_err(&e)?, nonce),
    })
}

/// What [`send_action`] got back.
pub(crate) enum Sent {
    Receipt(ReceiptResponse),
    Submitted(palisade_rpc::types::SubmitResponse, u64),
}

/// `palisade tx ...`
pub fn tx(a: TxArgs) -> Result<()> {
    let key = signing_key(a.key_file.as_ref(), a.allow_insecure_key_permissions)?;
    let action = action(&a.action)?;
    let url = a.client.rpc.clone();
    let output = a.client.output;
    runtime()?.block_on(async move {
        let c = client(&url)?;
        let chain_id = node_chain_id(&c, &url, a.chain_id.as_deref()).await?;
        let wait = a.wait.then_some(a.timeout_ms);
        match send_action(&c, &url, &key, chain_id, a.nonce, action, wait).await? {
            Sent::Receipt(r) => {
                print(output, &r, || receipt_text(&r))?;
                if !r.success {
                    bail!("transaction {} failed: {}", r.tx_hash, r.error);
                }
            }
            Sent::Submitted(r, nonce) => {
                print(output, &r, || {
                    format!("submitted {} (nonce {nonce})", r.hash)
                })?;
            }
        }
        Ok(())
    })
}

/// `palisade query ...`
pub fn query(q: QueryCommand) -> Result<()> {
    runtime()?.block_on(async move {
        match q {
            QueryCommand::Block { id, client: ca } => query_block(&id, &ca).await,
            QueryCommand::Tx { hash, client: ca } => query_tx(hash, &ca).await,
            QueryCommand::Account {
                address,
                client: ca,
            } => query_account(address, &ca).await,
            QueryCommand::Validators { height, client: ca } => query_validators(height, &ca).await,
            QueryCommand::State {
                key,
                prove,
                client: ca,
            } => query_state(&key, prove, &ca).await,
        }
    })
}

/// `palisade query block`
async fn query_block(id: &str, ca: &ClientArgs) -> Result<()> {
    let c = client(&ca.rpc)?;
    let id = if id.starts_with("0x") {
        BlockId::Hash(id.parse().map_err(|e| anyhow!("block hash {id:?}: {e}"))?)
    } else {
        BlockId::Height(
            id.parse()
                .map_err(|_| anyhow!("{id:?} is neither a height nor a 0x-hash"))?,
        )
    };
    let b = c.chain_get_block(id).await.map_err(rpc_err(&ca.rpc))?;
    let b = b.ok_or_else(|| anyhow!("no such block"))?;
    print(ca.output, &b, || {
        format!(
            "block {} hash {}\n  time {} ms, {} txs, proposer {}\n  state root after the previous block {}",
            b.block.header.height,
            b.hash,
            b.block.header.time.as_millis(),
            b.block.txs.len(),
            b.block.header.proposer,
            b.block.header.state_root
        )
    })
}

/// `palisade query tx`
async fn query_tx(hash: Hash, ca: &ClientArgs) -> Result<()> {
    let c = client(&ca.rpc)?;
    let e = rpc_err(&ca.rpc);
    let tx = c
        .tx_get(hash)
        .await
        .map_err(&e)?
        .ok_or_else(|| anyhow!("no such transaction"))?;
    let receipt = c.tx_get_receipt(hash).await.map_err(&e)?;
    let v = serde_json::json!({ "tx": tx, "receipt": receipt });
    print(ca.output, &v, || match &receipt {
        Some(r) => receipt_text(r),
        None => format!("{hash}: pending in the mempool"),
    })
}

/// `palisade query account`
async fn query_account(address: Address, ca: &ClientArgs) -> Result<()> {
    let c = client(&ca.rpc)?;
    let a = c
        .state_get_account(address)
        .await
        .map_err(rpc_err(&ca.rpc))?;
    print(ca.output, &a, || {
        let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
        format!(
            "account {}\n  balance {}\n  nonce   {}\n  roles   {}\n  evm     {}",
            a.address,
            a.balance,
            a.nonce,
            if roles.is_empty() {
                "-".to_string()
            } else {
                roles.join(", ")
            },
            a.evm_address
        )
    })
}

/// `palisade query validators`
async fn query_validators(height: Option<u64>, ca: &ClientArgs) -> Result<()> {
    let c = client(&ca.rpc)?;
    let v = c
        .validator_get_set(height)
        .await
        .map_err(rpc_err(&ca.rpc))?;
    print(ca.output, &v, || {
        let mut s = format!(
            "validators at height {} (total power {})",
            v.height, v.total_power
        );
        for x in &v.validators {
            s.push_str(&format!("\n  {} power {}", x.public_key, x.power));
        }
        s
    })
}

/// `palisade query state`
async fn query_state(key: &str, prove: bool, ca: &ClientArgs) -> Result<()> {
    let c = client(&ca.rpc)?;
    let k = HexBytes(bytes_arg(key)?);
    let q = StateQuery {
        height: None,
        prove,
    };
    let r = c.state_get(k, Some(q)).await.map_err(rpc_err(&ca.rpc))?;
    print(ca.output, &r, || match &r.value {
        Some(v) => format!(
            "0x{} (height {}, root {})",
            hex::encode(&v.0),
            r.height,
            r.state_root
        ),
        None => format!("absent (height {}, root {})", r.height, r.state_root),
    })
}

/// `palisade status`
pub fn status(a: watch::StatusArgs) -> Result<()> {
    if a.watch {
        return watch::watch(a);
    }
    let ca = a.client;
    runtime()?.block_on(async move {
        let c = client(&ca.rpc)?;
        let s = c.system_status().await.map_err(rpc_err(&ca.rpc))?;
        print(ca.output, &s, || {
            format!(
                "chain {} (genesis {})\n  height {}{}\n  peers {}, mempool {} txs\n  node {} {}{}",
                s.chain_id,
                s.genesis_hash,
                s.latest_height,
                if s.syncing {
                    format!(" (syncing to {})", s.sync_target)
                } else {
                    String::new()
                },
                s.peers,
                s.mempool_txs,
                s.moniker,
                s.peer_id,
                s.validator
                    .map(|v| format!(", validator {v}"))
                    .unwrap_or_default()
            )
        })
    })
}
