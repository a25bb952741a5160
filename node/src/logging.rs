//! Structured logs through `tracing`: plain text or JSON lines, filtered
//! per module (`info,palisade_network=debug`).

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Logs go to stderr.
pub fn init(cfg: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&cfg.level)
        .map_err(|e| anyhow::anyhow!("log level {:?}: {e}", cfg.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = match cfg.format {
        LogFormat::Plain => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("install logger: {e}"))
}
