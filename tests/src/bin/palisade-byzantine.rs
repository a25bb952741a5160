//! `palisade-byzantine MODE start --home DIR [start options]`: a validator
//! that attacks its chain, for the fault tests only. It is the node of
//! `palisade start` with an outbound tap that adds, after each vote it
//! signs, a second message no honest validator sends:
//!
//! - `equivocate`: a nil vote for the same height, round and step as each
//!   vote for a block (double signing);
//! - `bad-signatures`: the same vote again with a corrupted signature.
//!
//! It lives in the test crate, apart from the `palisade` binary operators
//! run, so no production node can be switched into attacking.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use palisade_consensus::Message;
use palisade_genesis::Genesis;
use palisade_node::cli::{start_with, Cli, Command};
use palisade_node::driver::OutboundTap;
use palisade_node::home::{read_key, Home};
use palisade_types::{ChainId, Keypair, Signature};

#[derive(Debug)]
enum Mode {
    Equivocate,
    BadSignatures,
}

#[derive(Debug)]
struct Byzantine {
    mode: Mode,
    chain_id: ChainId,
    key: Keypair,
}

impl OutboundTap for Byzantine {
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
            Mode::Equivocate => Vec::new(),
            Mode::BadSignatures => {
                let mut forged = v.clone();
                forged.signature = Signature([0x42; 64]);
                vec![Message::Vote(forged)]
            }
        }
    }
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let usage = "usage: palisade-byzantine equivocate|bad-signatures start --home DIR [...]";
    let mode = match args.get(1).map(String::as_str) {
        Some("equivocate") => Mode::Equivocate,
        Some("bad-signatures") => Mode::BadSignatures,
        _ => anyhow::bail!("{usage}"),
    };
    let rest = std::iter::once("palisade".to_string()).chain(args.into_iter().skip(2));
    let Command::Start(start) = Cli::try_parse_from(rest)?.command else {
        anyhow::bail!("{usage}");
    };
    let home = Home::new(&start.home);
    let key = read_key(&home.validator_key_file())?;
    let chain_id = Genesis::from_file(&home.genesis_file())?.chain_id;
    eprintln!("BYZANTINE TEST MODE ({mode:?}): this validator misbehaves on purpose");
    let tap = Byzantine {
        mode,
        chain_id,
        key,
    };
    start_with(start, Some(Arc::new(tap)))
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
