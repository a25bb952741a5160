//! `palisade genesis ...`: the tools of a genesis ceremony. A coordinator
//! starts a file (`new`), adds each validator from the public keys its
//! operator sent (`add-validator`, the line `palisade init --no-genesis`
//! printed) and the initial accounts (`add-account`), and checks the result
//! (`validate`, which prints the genesis hash every node must agree on).
//!
//! A file being assembled is incomplete (no validators, no admin yet), so
//! the edits check everything else after each change
//! ([`Genesis::check_draft`]) and only `validate` demands a complete one.
//! Every edit rewrites the file whole, through a temporary file renamed
//! over it: a crash or a refused edit leaves the previous file as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use palisade_genesis::{ConsensusParams, Genesis, GenesisAccount, GenesisValidator};
use palisade_types::{Address, Amount, ChainId, PublicKey, Role};

#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Start a new genesis file: chain id, start time and consensus timing,
    /// no validators or accounts yet (add them with add-validator and
    /// add-account; validate says when it is complete).
    New(NewArgs),
    /// Add a validator from the public keys its operator sent (the line
    /// `palisade init --no-genesis` printed).
    AddValidator(AddValidatorArgs),
    /// Add an initial account with a balance and roles.
    AddAccount(AddAccountArgs),
    /// Check a complete genesis file and print its hash.
    Validate { file: PathBuf },
}

#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// The chain's id: 1-50 bytes of [a-z0-9._-]; part of every signature.
    #[arg(long)]
    pub chain_id: String,
    /// Where to write the file; refuses to overwrite one.
    #[arg(long)]
    pub output: PathBuf,
    /// The chain's start time, Unix milliseconds (default: now). Block 1 is
    /// later.
    #[arg(long)]
    pub genesis_time_ms: Option<u64>,
    /// Least time from the start of one height to the start of the next.
    #[arg(long, default_value_t = ConsensusParams::default().block_interval_ms)]
    pub block_interval_ms: u64,
    /// Base propose timeout; prevote and precommit get half, each round
    /// adds half again, capped by --max-timeout-ms.
    #[arg(long, default_value_t = ConsensusParams::default().propose_ms)]
    pub propose_timeout_ms: u64,
    /// Cap on any consensus timeout, however many rounds fail.
    #[arg(long, default_value_t = ConsensusParams::default().max_timeout_ms)]
    pub max_timeout_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct AddValidatorArgs {
    /// The genesis file to edit.
    pub file: PathBuf,
    /// A label for logs; unique in the file.
    #[arg(long)]
    pub name: String,
    /// The validator's consensus (voting) public key, 0x-hex.
    #[arg(long)]
    pub consensus_key: String,
    /// The public key of its libp2p identity, 0x-hex (its peer id).
    #[arg(long)]
    pub node_key: String,
    /// Voting power.
    #[arg(long, default_value_t = 10)]
    pub power: u64,
}

#[derive(Debug, Clone, Args)]
pub struct AddAccountArgs {
    /// The genesis file to edit.
    pub file: PathBuf,
    /// The account's address, 0x-hex (`palisade keys show` prints it).
    #[arg(long)]
    pub address: String,
    /// Initial balance in the smallest unit (decimal).
    #[arg(long, default_value = "0")]
    pub balance: String,
    /// Roles, comma separated: admin, validator_operator, member, minter.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
}

/// Runs a `palisade genesis` command.
pub fn run(cmd: GenesisCommand) -> Result<()> {
    match cmd {
        GenesisCommand::New(a) => {
            let g = new_genesis(&a)?;
            println!("wrote {}", a.output.display());
            println!("chain_id:        {}", g.chain_id);
            println!("genesis_time_ms: {}", g.genesis_time_ms);
            print_progress(&a.output, &g);
        }
        GenesisCommand::AddValidator(a) => {
            let g = add_validator(&a)?;
            println!(
                "added validator {} (power {}) to {}",
                a.name,
                a.power,
                a.file.display()
            );
            print_progress(&a.file, &g);
        }
        GenesisCommand::AddAccount(a) => {
            let g = add_account(&a)?;
            println!("added account {} to {}", a.address, a.file.display());
            print_progress(&a.file, &g);
        }
        GenesisCommand::Validate { file } => {
            let g = validate(&file)?;
            println!("genesis is valid");
            println!("chain_id:     {}", g.chain_id);
            println!("validators:   {}", g.validators.len());
            println!("total_power:  {}", total_power(&g));
            println!("accounts:     {}", g.accounts.len());
            println!("genesis_hash: {}", g.hash());
        }
    }
    Ok(())
}

fn total_power(g: &Genesis) -> u64 {
    g.validators.iter().map(|v| v.power).sum()
}

/// What the file holds now and, while it is incomplete, what it lacks.
fn print_progress(file: &Path, g: &Genesis) {
    println!(
        "validators:      {} (total power {})",
        g.validators.len(),
        total_power(g)
    );
    println!("accounts:        {}", g.accounts.len());
    match missing(g) {
        Some(what) => println!("incomplete:      {what}"),
        None => println!(
            "complete: `palisade genesis validate {}` prints its hash",
            file.display()
        ),
    }
}

/// What a draft lacks before a node can start from it, as advice.
fn missing(g: &Genesis) -> Option<String> {
    let admin = g.accounts.iter().any(|a| a.roles.contains(&Role::Admin));
    match (g.validators.is_empty(), admin) {
        (false, true) => None,
        (true, true) => Some("no validators yet (palisade genesis add-validator)".into()),
        (false, false) => Some(
            "no account has the admin role yet (palisade genesis add-account --roles admin,...)"
                .into(),
        ),
        (true, false) => Some(
            "no validators and no admin account yet (palisade genesis add-validator, \
             palisade genesis add-account --roles admin,...)"
                .into(),
        ),
    }
}

/// The consensus timing of a base propose timeout: prevote and precommit
/// get half (at least 50 ms), their per-round increases a quarter;
/// gives [`ConsensusParams::default`] for 1000 ms and 30 s.
pub(crate) fn timing(
    propose_ms: u64,
    max_timeout_ms: u64,
    block_interval_ms: u64,
) -> ConsensusParams {
    let half = (propose_ms / 2).max(50);
    ConsensusParams {
        propose_ms,
        propose_delta_ms: half,
        prevote_ms: half,
        prevote_delta_ms: half / 2,
        precommit_ms: half,
        precommit_delta_ms: half / 2,
        max_timeout_ms,
        block_interval_ms,
    }
}

/// `genesis new`: writes an empty genesis for the chain and returns it.
pub fn new_genesis(a: &NewArgs) -> Result<Genesis> {
    let chain_id = ChainId::new(&a.chain_id).map_err(|e| anyhow::anyhow!("--chain-id: {e}"))?;
    if a.output.exists() {
        bail!(
            "{} already exists; refusing to overwrite a genesis file",
            a.output.display()
        );
    }
    let g = Genesis {
        evm_accounts: Vec::new(),
        chain_id,
        genesis_time_ms: a.genesis_time_ms.unwrap_or_else(crate::app::now_ms),
        consensus: timing(a.propose_timeout_ms, a.max_timeout_ms, a.block_interval_ms),
        params: Default::default(),
        validators: Vec::new(),
        accounts: Vec::new(),
    };
    g.check_draft()?;
    write_atomic_new(&a.output, &g.to_json())?;
    Ok(g)
}

/// Reads a genesis file that may still be incomplete.
fn read_draft(file: &Path) -> Result<Genesis> {
    if !file.exists() {
        bail!(
            "{} does not exist: start one with `palisade genesis new --chain-id ID --output {}`",
            file.display(),
            file.display()
        );
    }
    Genesis::from_file_draft(file).with_context(|| format!("{}", file.display()))
}

fn key_arg(flag: &str, s: &str) -> Result<PublicKey> {
    let key: PublicKey = s
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("{flag} {s:?}: {e}"))?;
    // The rule genesis validation and the runtime's `AddValidator` apply,
    // checked here so the error names the flag.
    key.check_point()
        .map_err(|e| anyhow::anyhow!("{flag} {s}: not a valid ed25519 public key: {e}"))?;
    Ok(key)
}

/// `genesis add-validator`: adds one validator and returns the new file.
pub fn add_validator(a: &AddValidatorArgs) -> Result<Genesis> {
    let consensus_key = key_arg("--consensus-key", &a.consensus_key)?;
    let node_key = key_arg("--node-key", &a.node_key)?;
    let name = a.name.trim();
    if name.is_empty() {
        bail!("--name must not be empty");
    }
    if a.power == 0 {
        bail!("--power must be at least 1");
    }
    let mut g = read_draft(&a.file)?;
    for v in &g.validators {
        if v.name == name {
            bail!("{} already has a validator named {name}", a.file.display());
        }
        if v.consensus_key == consensus_key || v.node_key == consensus_key {
            bail!(
                "{} already has key {consensus_key} (validator {}); every validator has keys of its own",
                a.file.display(),
                v.name
            );
        }
        if v.node_key == node_key || v.consensus_key == node_key {
            bail!(
                "{} already has key {node_key} (validator {}); every validator has keys of its own",
                a.file.display(),
                v.name
            );
        }
    }
    g.validators.push(GenesisValidator {
        name: name.to_string(),
        consensus_key,
        node_key,
        power: a.power,
    });
    g.check_draft()
        .with_context(|| format!("adding validator {name}"))?;
    write_atomic(&a.file, &g.to_json())?;
    Ok(g)
}

fn roles_arg(roles: &[String]) -> Result<Vec<Role>> {
    let mut out: Vec<Role> = Vec::new();
    for r in roles.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        let role: Role = r.parse().map_err(|e| anyhow::anyhow!("--roles: {e}"))?;
        if out.contains(&role) {
            bail!("--roles lists {r} twice");
        }
        out.push(role);
    }
    Ok(out)
}

/// `genesis add-account`: adds one account and returns the new file.
pub fn add_account(a: &AddAccountArgs) -> Result<Genesis> {
    let address: Address = a
        .address
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--address {:?}: {e}", a.address))?;
    let balance = a.balance.trim();
    if balance.is_empty() || !balance.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--balance {balance:?} must be a decimal number of the smallest unit");
    }
    let balance: Amount = balance
        .parse()
        .map_err(|_| anyhow::anyhow!("--balance {balance} is too large"))?;
    let roles = roles_arg(&a.roles)?;
    let mut g = read_draft(&a.file)?;
    if g.accounts.iter().any(|acct| acct.address == address) {
        bail!("{} already has account {address}", a.file.display());
    }
    g.accounts.push(GenesisAccount {
        address,
        balance,
        roles,
    });
    g.check_draft()
        .with_context(|| format!("adding account {address}"))?;
    write_atomic(&a.file, &g.to_json())?;
    Ok(g)
}

/// `genesis validate`: the file, if it is complete and valid.
pub fn validate(file: &Path) -> Result<Genesis> {
    let g = read_draft(file)?;
    if let Some(what) = missing(&g) {
        bail!("{} is incomplete: {what}", file.display());
    }
    g.validate()
        .with_context(|| format!("{}", file.display()))?;
    Ok(g)
}

/// Replaces `path` with `text` so that readers (and a crash) see either the
/// old file or the new one, never a part: written to a temporary file in
/// the same directory, synced, renamed over `path`, and the directory
/// synced so the rename itself survives a crash.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    write_atomic_with(path, text, false)
}

/// [`write_atomic`] that never replaces an existing file, even one made
/// while this was writing (`genesis new`).
pub fn write_atomic_new(path: &Path, text: &str) -> Result<()> {
    write_atomic_with(path, text, true)
}

fn write_atomic_with(path: &Path, text: &str, no_clobber: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // A new file of a random name, created exclusively: nobody else's file
    // (or link) in the directory can be written through it.
    let mut tmp = tempfile::Builder::new()
        .prefix(".genesis-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.write_all(b"\n"))
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("write {}", tmp.path().display()))?;
    let persisted = if no_clobber {
        tmp.persist_noclobber(path)
    } else {
        tmp.persist(path)
    };
    persisted.map_err(|e| anyhow::anyhow!("write {}: {}", path.display(), e.error))?;
    // The rename is done; syncing the directory makes it survive a crash.
    // Failing that, the edit still took effect, so say so rather than fail.
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
        eprintln!(
            "warning: wrote {} but could not sync {}: {e}",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The address other validators dial to reach a node listening on
/// `listen` with `peer_id`: `/ip4/<ip>/tcp/<port>/p2p/<peer id>`. A
/// wildcard listen address (`0.0.0.0`) is replaced by this machine's
/// address ([`this_machine_ipv4`]), or kept as written when there is none
/// to be found.
pub fn p2p_address(listen: &str, peer_id: &str) -> String {
    use libp2p::multiaddr::Protocol;
    let Ok(addr) = listen.parse::<libp2p::Multiaddr>() else {
        return format!("{listen}/p2p/{peer_id}");
    };
    let mut out = libp2p::Multiaddr::empty();
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) if ip.is_unspecified() => match this_machine_ipv4() {
                Some(mine) => out.push(Protocol::Ip4(mine)),
                None => out.push(p),
            },
            Protocol::P2p(_) => {}
            other => out.push(other),
        }
    }
    format!("{out}/p2p/{peer_id}")
}

/// Whether a node listening on `listen` is reachable from other machines
/// at all (not loopback only).
pub fn listens_beyond_loopback(listen: &[String]) -> bool {
    use libp2p::multiaddr::Protocol;
    listen.iter().any(|l| {
        l.parse::<libp2p::Multiaddr>().is_ok_and(|a| {
            a.iter().any(|p| match p {
                Protocol::Ip4(ip) => !ip.is_loopback(),
                Protocol::Ip6(ip) => !ip.is_loopback(),
                Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => true,
                _ => false,
            })
        })
    })
}

/// This machine's IPv4 address as other machines most likely see it: the
/// source address of its default route or, without one (an isolated
/// network), its first non-loopback address.
pub fn this_machine_ipv4() -> Option<std::net::Ipv4Addr> {
    // Connecting a UDP socket only picks the route; no packet is sent.
    // 192.0.2.1 is a documentation address: only a default route reaches it.
    let routed = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .ok()
        .and_then(|a| match a.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
            _ => None,
        });
    routed.or_else(|| {
        std::fs::read_to_string("/proc/net/fib_trie")
            .ok()
            .and_then(|t| local_ipv4s(&t).into_iter().next())
    })
}

/// The non-loopback addresses of this machine in a Linux
/// `/proc/net/fib_trie` (each `|-- ADDR` followed by `/32 host LOCAL`), in
/// address order, without repeats.
pub fn local_ipv4s(fib_trie: &str) -> Vec<std::net::Ipv4Addr> {
    let mut out: Vec<std::net::Ipv4Addr> = Vec::new();
    let mut last: Option<std::net::Ipv4Addr> = None;
    for line in fib_trie.lines().map(str::trim) {
        if let Some(a) = line.strip_prefix("|-- ") {
            last = a.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(ip) = last.take() {
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out.sort();
    out
}
