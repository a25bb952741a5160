//! The `palisade` binary: the node and its command-line tools.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use palisade_node::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line: the error and its causes, no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
