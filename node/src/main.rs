//! The `palisade` binary: the node and its command-line tools.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use palisade_node::cli::{run, Cli};

fn main() -> ExitCode {
    // A bug must still read as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        if reader_went_away(info) {
            // `palisade ... | head`: stop as tools killed by SIGPIPE do,
            // without a message (Rust ignores SIGPIPE, so the write fails
            // and the standard output macros panic instead).
            std::process::exit(SIGPIPE_EXIT);
        }
        eprintln!("error: internal error (please report): {info}");
    }));
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

/// The exit status of a process that SIGPIPE ended (128 + 13).
const SIGPIPE_EXIT: i32 = 141;

/// Whether a panic is a write to a closed pipe (standard output's reader
/// exited): the panic's message is all that says so.
fn reader_went_away(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    msg.contains("Broken pipe") || msg.contains("BrokenPipe")
}

// jemalloc for the whole process, RocksDB's C++ included (it takes over
// `malloc` itself). glibc's allocator spent a sixth of a loaded devnet's CPU
// consolidating and searching its bins for the node's mix of small tree
// nodes and megabyte write batches, and its stalls landed on the consensus
// driver: paired runs at 8,000 tx/s gave p50 282-672 ms against 897-1,400
// with glibc (docs/benchmarks/history/2026-12-04-r1-jemalloc.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
