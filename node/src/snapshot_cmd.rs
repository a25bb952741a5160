//! `palisade snapshot ...`: a node's state at a block, in a file that
//! carries the block's header and certificate, so another node can start
//! from it instead of replaying every block.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use palisade_genesis::Genesis;
use palisade_types::{Hash, Height};

use crate::client::{print, Output};
use crate::home::Home;
use palisade_ledger::{Ledger, LedgerError};
use palisade_statesync::{self as statesync, SnapshotInfo, Trust};

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write a snapshot of a stopped node's state into its
    /// data/snapshots/ (a running node makes them itself every
    /// statesync.snapshot_interval blocks).
    Create {
        #[command(flatten)]
        home: HomeArg,
        /// The block to snapshot: its state is certified by the block after
        /// it, which must be committed (default: two below the latest, whose
        /// certificates are the ones every node keeps).
        #[arg(long)]
        height: Option<u64>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The snapshots in the node's data/snapshots/.
    List {
        #[command(flatten)]
        home: HomeArg,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Copy one of the node's snapshots (the latest, or --height) to FILE.
    Export {
        file: PathBuf,
        #[command(flatten)]
        home: HomeArg,
        #[arg(long)]
        height: Option<u64>,
    },
    /// Start a stopped node that has no blocks yet from the
    /// snapshot in FILE (each chunk checked before it is written; nothing
    /// is the node's state until the last one is in); it then block-syncs
    /// from the snapshot's height.
    Import {
        file: PathBuf,
        #[command(flatten)]
        home: HomeArg,
        #[command(flatten)]
        trust: TrustArgs,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Check the snapshot in FILE against the home's genesis: its
    /// certificate, and every chunk against the certified state root.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        home: HomeArg,
        #[command(flatten)]
        trust: TrustArgs,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub struct HomeArg {
    /// The node's home directory (see `palisade init`).
    #[arg(long, env = "PALISADE_HOME")]
    pub home: PathBuf,
}

impl HomeArg {
    fn home(&self) -> Home {
        Home::new(&self.home)
    }
}

/// A block an operator trusts, for a snapshot decided by validators other
/// than the genesis ones.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Height of the trusted block (the snapshot's).
    #[arg(long, requires = "trust_hash")]
    pub trust_height: Option<u64>,
    /// Hash of the trusted block, from a source you trust (another
    /// operator's `palisade query block HEIGHT`).
    #[arg(long, requires = "trust_height")]
    pub trust_hash: Option<Hash>,
}

pub fn run(c: SnapshotCommand) -> Result<()> {
    match c {
        SnapshotCommand::Create {
            home,
            height,
            output,
        } => create(&home.home(), height, output),
        SnapshotCommand::List { home, output } => list(&home.home(), output),
        SnapshotCommand::Export { file, home, height } => export(&home.home(), height, &file),
        SnapshotCommand::Import {
            file,
            home,
            trust,
            output,
        } => import(&home.home(), &file, &trust, output),
        SnapshotCommand::Verify {
            file,
            home,
            trust,
            output,
        } => verify(&home.home(), &file, &trust, output),
    }
}

/// How far below the latest height a snapshot is made by default: the
/// block after it names its state root, and the one after that carries the
/// certificate every node keeps for it (so the same snapshot has the same
/// manifest on every node).
const SETTLED: u64 = 2;

/// `palisade snapshot create`
fn create(home: &Home, height: Option<u64>, output: Output) -> Result<()> {
    let genesis = genesis_of(home)?;
    let ledger = open_ledger(home)?;
    let height = match height {
        Some(h) => Height(h),
        None => Height(ledger.latest_height()?.get().saturating_sub(SETTLED)),
    };
    let dir = statesync::snapshot_dir(&home.data_dir());
    let path = statesync::snapshot_path(&dir, height);
    let started = std::time::Instant::now();
    let (info, counts) =
        statesync::create(&ledger, &genesis.chain_id, genesis.hash(), height, &path)?;
    print(output, &info, || {
        format!(
            "snapshot of height {} ({} pages, {} values, {} chunks, {} bytes) in {:.1} s: {}",
            info.height,
            counts.pages,
            counts.values,
            info.chunks,
            info.bytes,
            started.elapsed().as_secs_f64(),
            info.path.display()
        )
    })?;
    Ok(())
}

/// `palisade snapshot list`
fn list(home: &Home, output: Output) -> Result<()> {
    let dir = statesync::snapshot_dir(&home.data_dir());
    let all = statesync::list(&dir)?;
    print(output, &all, || {
        if all.is_empty() {
            return format!("no snapshots in {}", dir.display());
        }
        all.iter()
            .map(|s| {
                format!(
                    "height {:>10}  block {}  {:>6} chunks  {:>12} bytes  {}",
                    s.height,
                    s.block_hash,
                    s.chunks,
                    s.bytes,
                    s.path.display()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(())
}

/// `palisade snapshot export`
fn export(home: &Home, height: Option<u64>, file: &Path) -> Result<()> {
    let dir = statesync::snapshot_dir(&home.data_dir());
    let all = statesync::list(&dir)?;
    let chosen = pick(&all, height).ok_or_else(|| match height {
        Some(h) => anyhow!(
            "no snapshot of height {h} in {} (there are: {}); make one with `palisade snapshot create --height {h}` on the stopped node",
            dir.display(),
            heights(&all)
        ),
        None => anyhow!(
            "no snapshots in {}: make one with `palisade snapshot create`",
            dir.display()
        ),
    })?;
    copy_whole(&chosen.path, file)?;
    println!(
        "snapshot of height {} ({} bytes of state) exported to {}",
        chosen.height,
        chosen.bytes,
        file.display()
    );
    Ok(())
}

/// `palisade snapshot import`
fn import(home: &Home, file: &Path, trust: &TrustArgs, output: Output) -> Result<()> {
    let genesis = genesis_of(home)?;
    let ledger = open_ledger(home)?;
    let started = std::time::Instant::now();
    let checked = statesync::check_file(
        file,
        &genesis.chain_id,
        genesis.hash(),
        &trust_of(&genesis, trust)?,
        Some(&ledger),
        progress(output),
    )?;
    print(output, &checked, || {
        format!(
            "imported the state of height {} (block {}, state root {}: {} pages, {} values) in {:.1} s; start the node to sync from there",
            checked.height,
            checked.block_hash,
            checked.state_root,
            checked.pages,
            checked.values,
            started.elapsed().as_secs_f64()
        )
    })?;
    Ok(())
}

/// `palisade snapshot verify`
fn verify(home: &Home, file: &Path, trust: &TrustArgs, output: Output) -> Result<()> {
    let genesis = genesis_of(home)?;
    let checked = statesync::check_file(
        file,
        &genesis.chain_id,
        genesis.hash(),
        &trust_of(&genesis, trust)?,
        None,
        progress(output),
    )?;
    print(output, &checked, || {
        format!(
            "ok: height {}, block {}, state root {} ({} chunks, {} pages, {} values)",
            checked.height,
            checked.block_hash,
            checked.state_root,
            checked.chunks,
            checked.pages,
            checked.values
        )
    })?;
    Ok(())
}

fn genesis_of(home: &Home) -> Result<Genesis> {
    let path = home.genesis_file();
    let g = Genesis::from_file(&path).with_context(|| format!("reading {}", path.display()))?;
    g.validate()?;
    Ok(g)
}

fn open_ledger(home: &Home) -> Result<Ledger> {
    match Ledger::open(&home.data_dir()) {
        Ok(l) => Ok(l),
        Err(LedgerError::Locked(dir)) => bail!(
            "{} is in use by a running node: stop it first (a running node makes snapshots itself every statesync.snapshot_interval blocks; see `palisade snapshot list`)",
            dir.display()
        ),
        Err(e) => Err(e.into()),
    }
}

fn trust_of(genesis: &Genesis, t: &TrustArgs) -> Result<Trust> {
    Ok(Trust::genesis(
        genesis.validator_set()?,
        t.trust_height
            .zip(t.trust_hash)
            .map(|(h, b)| (Height(h), b)),
    ))
}

fn pick(all: &[SnapshotInfo], height: Option<u64>) -> Option<&SnapshotInfo> {
    match height {
        Some(h) => all.iter().find(|s| s.height == h),
        None => all.last(),
    }
}

fn heights(all: &[SnapshotInfo]) -> String {
    if all.is_empty() {
        return "none".into();
    }
    all.iter()
        .map(|s| s.height.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Copies `from` to `to` through `to.partial`, synced, so `to` is never a
/// part of a snapshot.
fn copy_whole(from: &Path, to: &Path) -> Result<()> {
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::copy(from, &partial)
        .with_context(|| format!("copying {} to {}", from.display(), partial.display()))?;
    let f = std::fs::File::open(&partial)?;
    f.sync_all()?;
    std::fs::rename(&partial, to).with_context(|| format!("renaming to {}", to.display()))?;
    Ok(())
}

/// Progress on stderr for long imports (every tenth of the chunks).
fn progress(output: Output) -> impl FnMut(usize, usize) {
    let mut shown = 0;
    move |done, total| {
        if output == Output::Text && total >= 20 && done * 10 / total > shown {
            shown = done * 10 / total;
            eprintln!("  {done}/{total} chunks checked");
        }
    }
}
