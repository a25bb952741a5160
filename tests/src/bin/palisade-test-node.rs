//! `palisade-test-node [--byzantine MODE] [--fail-task TASK:MS] start|dev ...`:
//! the `palisade` node with test-only behaviour, for the fault and
//! supervision tests. It lives in the test crate, apart from the
//! `palisade` binary operators run, so no production node can be switched
//! into attacking its chain or into breaking itself.
//!
//! - `--byzantine equivocate`: after each vote for a block it signs, also a
//!   nil vote for the same height, round and step (double signing);
//! - `--byzantine bad-signatures`: each vote again with a corrupted
//!   signature;
//! - `--byzantine forbidden-eth-tx`: each block it proposes also carries
//!   `palisade_tests::forbidden_creation()`, a contract creation by
//!   an address without `member` or `deployer` (every node's execution
//!   must refuse it without effect);
//! - `--byzantine corrupt-pieces`: every file piece it serves has a byte
//!   flipped (downloaders must detect it and cut it off);
//! - `--fail-task TASK:MS`: the named background task panics after MS
//!   milliseconds.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use palisade_consensus::Message;
use palisade_genesis::Genesis;
use palisade_node::cli::{run_with, Cli, Command, TestHooks};
use palisade_node::driver::OutboundTap;
use palisade_node::home::{read_key, Home};
use palisade_node::supervisor::parse_fault;
use palisade_types::{ChainId, Keypair, Signature};

const USAGE: &str =
    "usage: palisade-test-node [--byzantine equivocate|bad-signatures|forbidden-eth-tx|corrupt-pieces|corrupt-chunks] \
                     [--fail-task TASK:MS] start|dev [palisade options]";

#[derive(Debug, Clone, Copy)]
enum Mode {
    Equivocate,
    BadSignatures,
    ForbiddenEthTx,
}

#[derive(Debug)]
struct Byzantine {
    mode: Mode,
    chain_id: ChainId,
    key: Keypair,
}

impl OutboundTap for Byzantine {
    fn tamper_proposal(&self, block: &mut palisade_types::Block) -> bool {
        if !matches!(self.mode, Mode::ForbiddenEthTx) {
            return false;
        }
        let mut txs = block.eth_txs.to_vec();
        let Ok(raw) = palisade_types::BoundedBytes::new(palisade_tests::forbidden_creation())
        else {
            return false;
        };
        txs.push(palisade_types::EthTransaction(raw));
        let Ok(txs) = palisade_types::BoundedVec::new(txs) else {
            return false;
        };
        block.header.tx_root = palisade_types::Block::compute_tx_root(&block.txs, &txs);
        block.eth_txs = txs;
        true
    }

    fn after_signed(&self, message: &Message) -> Vec<Message> {
        let Message::Vote(v) = message else {
            return Vec::new();
        };
        match self.mode {
            Mode::Equivocate if v.vote.block_hash.is_some() => {
                let mut other = v.vote.clone();
                other.block_hash = None;
                vec![Message::Vote(other.sign(&self.chain_id, &self.key))]
            }
            Mode::Equivocate | Mode::ForbiddenEthTx => Vec::new(),
            Mode::BadSignatures => {
                let mut forged = v.clone();
                forged.signature = Signature([0x42; 64]);
                vec![Message::Vote(forged)]
            }
        }
    }
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut hooks = TestHooks::default();
    let mut mode = None;
    let mut rest = args.into_iter().skip(1).peekable();
    while let Some(flag) = rest.next_if(|a| a.starts_with("--")) {
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--byzantine" if value == "corrupt-pieces" => hooks.corrupt_pieces = true,
            "--byzantine" if value == "corrupt-chunks" => hooks.corrupt_chunks = true,
            "--byzantine" => {
                mode = Some(match value.as_str() {
                    "equivocate" => Mode::Equivocate,
                    "bad-signatures" => Mode::BadSignatures,
                    "forbidden-eth-tx" => Mode::ForbiddenEthTx,
                    _ => bail!("unknown mode {value:?}; {USAGE}"),
                })
            }
            "--fail-task" => {
                hooks.task_fault = Some(parse_fault(&value).map_err(anyhow::Error::msg)?)
            }
            _ => bail!("unknown option {flag}; {USAGE}"),
        }
    }
    let cli = Cli::try_parse_from(std::iter::once("palisade".to_string()).chain(rest))?;
    if let Some(mode) = mode {
        let Command::Start(start) = &cli.command else {
            bail!("--byzantine needs `start` (a validator's home); {USAGE}");
        };
        let home = Home::new(&start.home);
        eprintln!("BYZANTINE TEST MODE ({mode:?}): this validator misbehaves on purpose");
        hooks.tap = Some(Arc::new(Byzantine {
            mode,
            chain_id: Genesis::from_file(&home.genesis_file())?.chain_id,
            key: read_key(&home.validator_key_file())?,
        }));
    }
    run_with(cli, hooks)
}

fn main() -> ExitCode {
    match run(std::env::args().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
