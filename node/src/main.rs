//! The `palisade` binary: the node and its command-line tools.
//!
//! Commands arrive with the node (issue 5) and the CLI (issue 6); until then
//! the binary answers `--help` and `--version`.

#![forbid(unsafe_code)]

use clap::Parser;

/// Palisade: a permissioned BFT blockchain node.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
