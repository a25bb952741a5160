//! Where a node's settings come from, in rising precedence: the built-in
//! defaults, `config/config.toml`, `PALISADE_*` environment variables and
//! command-line flags. One mechanism ([`figment`]) merges all four and
//! remembers which layer gave each value, so `palisade config show` can say.
//!
//! Every setting `section.key` has the variable `PALISADE_SECTION_KEY`
//! (`rpc.max_batch` is `PALISADE_RPC_MAX_BATCH`, `p2p.rate_limits.tx_bytes_per_s`
//! is `PALISADE_P2P_RATE_LIMITS_TX_BYTES_PER_S`) and the flag
//! `--set section.key=VALUE`; the common ones have flags of their own
//! ([`SettingFlags`]). Lists are comma separated in both (an empty value
//! clears the list). The names come from the settings themselves (the
//! serialized defaults), so a new setting gets its variable without
//! anything written by hand, and a misspelt `PALISADE_RPC_*` variable is an
//! error rather than silently ignored, like an unknown key in the file.

use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{ConfigError, LogFormat, NodeConfig};

/// Variables from versions that had per-flag variables, kept working.
const ALIASES: &[(&str, &str)] = &[
    ("PALISADE_PEERS", "p2p.peers"),
    ("PALISADE_LOG", "log.level"),
];

/// The flags `palisade start` and `palisade config show` share: the
/// settings operators change most, and `--set` for any other.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct SettingFlags {
    /// libp2p listen addresses (comma separated); sets p2p.listen.
    #[arg(long, value_delimiter = ',')]
    pub p2p_listen: Option<Vec<String>>,
    /// Peers to dial (comma separated multiaddrs); sets p2p.peers.
    #[arg(long, value_delimiter = ',')]
    pub peers: Option<Vec<String>>,
    /// JSON-RPC address; sets rpc.listen.
    #[arg(long)]
    pub rpc_listen: Option<SocketAddr>,
    /// Prometheus metrics address; sets metrics.listen.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Origins of web pages allowed to use the JSON-RPC, comma separated
    /// (`http://localhost:*`, `https://app.example.com`; empty: none); sets
    /// rpc.allowed_origins.
    #[arg(long, value_delimiter = ',')]
    pub rpc_allowed_origins: Option<Vec<String>>,
    /// Unhealthy after this long without a committed block (with peers);
    /// sets rpc.health_max_block_age_ms.
    #[arg(long)]
    pub rpc_health_max_block_age_ms: Option<u64>,
    /// Log filter, e.g. `info` or `info,palisade_network=debug`; sets
    /// log.level.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log format; sets log.format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Join by state sync: a node that has no blocks yet fetches a recent
    /// snapshot of the state from its peers instead of replaying every
    /// block; sets statesync.enable.
    #[arg(long)]
    pub state_sync: bool,
    /// Height of a block you trust for state sync; sets
    /// statesync.trust_height.
    #[arg(long)]
    pub trust_height: Option<u64>,
    /// Hash of that block (0x...); sets statesync.trust_hash.
    #[arg(long)]
    pub trust_hash: Option<String>,
    /// Any setting, as KEY=VALUE (`rpc.max_batch=128`, lists comma
    /// separated); repeatable, applied after the flags above.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// What kind of value a setting holds, read off its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
    List,
}

/// One setting: its dotted key and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub kind: Kind,
}

impl Setting {
    /// `PALISADE_` and the key in capitals, dots as underscores.
    pub fn env_var(&self) -> String {
        format!("PALISADE_{}", self.key.replace('.', "_").to_uppercase())
    }
}

/// Every setting, in the order `config.toml` lists them.
pub fn settings() -> Vec<Setting> {
    let mut out = Vec::new();
    if let Ok(Value::Dict(_, d)) = Value::serialize(NodeConfig::default()) {
        collect(&d, "", &mut out);
    }
    out
}

fn collect(d: &Dict, prefix: &str, out: &mut Vec<Setting>) {
    // Plain values before tables, as TOML writes them.
    for (k, v) in d {
        let key = format!("{prefix}{k}");
        let kind = match v {
            Value::Dict(..) => continue,
            Value::Array(..) => Kind::List,
            Value::Bool(..) => Kind::Bool,
            Value::Num(..) => Kind::Number,
            _ => Kind::Text,
        };
        out.push(Setting { key, kind });
    }
    for (k, v) in d {
        if let Value::Dict(_, inner) = v {
            collect(inner, &format!("{prefix}{k}."), out);
        }
    }
}

/// Every variable that sets a setting, older names included.
pub fn setting_env_vars() -> Vec<String> {
    settings()
        .iter()
        .map(Setting::env_var)
        .chain(ALIASES.iter().map(|(a, _)| (*a).to_string()))
        .collect()
}

/// Reads `text` as a value of `kind`; `what` names it in the error.
fn parse_value(kind: Kind, text: &str, what: &str) -> Result<Value, ConfigError> {
    let bad =
        |expected: &str| ConfigError::Invalid(format!("{what}: expected {expected}, got {text:?}"));
    Ok(match kind {
        Kind::Text => Value::from(text.trim().to_string()),
        Kind::Number => Value::from(
            text.trim()
                .parse::<u64>()
                .map_err(|_| bad("a whole number"))?,
        ),
        Kind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::from(true),
            "false" | "0" | "no" | "off" => Value::from(false),
            _ => return Err(bad("true or false")),
        },
        Kind::List => Value::from(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::from(s.to_string()))
                .collect::<Vec<_>>(),
        ),
    })
}

/// One layer holding one or more settings, named after where they came
/// from (`PALISADE_RPC_LISTEN`, `--rpc-listen`): merged one per source,
/// figment's metadata then names the exact variable or flag of each value.
#[derive(Debug)]
struct Layer {
    name: String,
    values: Dict,
}

impl Layer {
    fn one(name: String, key: &str, value: Value) -> Layer {
        let mut values = Dict::new();
        if let Value::Dict(_, d) = figment::util::nest(key, value) {
            values = d;
        }
        Layer { name, values }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// The settings from the environment `vars`, one layer per variable.
fn env_layers(
    vars: impl IntoIterator<Item = (String, String)>,
    all: &[Setting],
) -> Result<Vec<Layer>, ConfigError> {
    // Sections whose PALISADE_ variables must all be settings; other
    // PALISADE_ variables (PALISADE_HOME, PALISADE_RPC for the client) are
    // not settings.
    let sections: Vec<String> = all
        .iter()
        .filter_map(|s| {
            s.key
                .split_once('.')
                .map(|(sec, _)| format!("PALISADE_{}_", sec.to_uppercase()))
        })
        .collect();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("PALISADE_"))
        .collect();
    // Older names first, so the current name wins when both are set.
    vars.sort_by_key(|(k, _)| !ALIASES.iter().any(|(a, _)| a == k));
    let mut layers = Vec::new();
    for (var, text) in vars {
        let key = match ALIASES.iter().find(|(a, _)| *a == var) {
            Some((_, key)) => Some((*key).to_string()),
            None => all
                .iter()
                .find(|s| s.env_var() == var)
                .map(|s| s.key.clone()),
        };
        let Some(key) = key else {
            // A variable in a settings section, or one a letter or two from
            // a setting's (`PALISADE_MONIKR`), is a mistake to report, not
            // someone else's variable to ignore.
            let near = all
                .iter()
                .map(Setting::env_var)
                .find(|v| edit_distance(v, &var) <= 2);
            if near.is_some() || sections.iter().any(|p| var.starts_with(p.as_str())) {
                let hint = near.map_or(String::new(), |v| format!("did you mean {v}? "));
                return Err(ConfigError::Invalid(format!(
                    "{var} is not a setting ({hint}`palisade config show` lists every setting and its variable)"
                )));
            }
            continue;
        };
        let kind = all
            .iter()
            .find(|s| s.key == key)
            .map_or(Kind::Text, |s| s.kind);
        layers.push(Layer::one(
            var.clone(),
            &key,
            parse_value(kind, &text, &var)?,
        ));
    }
    Ok(layers)
}

/// Levenshtein distance, for suggesting the variable meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// The settings the flags name, one layer per flag.
fn flag_layers(flags: &SettingFlags, all: &[Setting]) -> Result<Vec<Layer>, ConfigError> {
    let mut out: Vec<Layer> = named_flags(flags)
        .into_iter()
        .filter_map(|(flag, key, v)| v.map(|v| Layer::one(flag.to_string(), key, v)))
        .collect();
    out.extend(set_layers(&flags.set, all)?);
    Ok(out)
}

/// Each flag of its own: its name, the setting it sets, and the value when
/// given.
fn named_flags(flags: &SettingFlags) -> [(&'static str, &'static str, Option<Value>); 11] {
    let list = |v: &[String]| {
        Value::from(
            v.iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| Value::from(s.clone()))
                .collect::<Vec<_>>(),
        )
    };
    let text = |s: String| Value::from(s);
    [
        (
            "--state-sync",
            "statesync.enable",
            flags.state_sync.then(|| Value::from(true)),
        ),
        (
            "--trust-height",
            "statesync.trust_height",
            flags.trust_height.map(Value::from),
        ),
        (
            "--trust-hash",
            "statesync.trust_hash",
            flags.trust_hash.clone().map(text),
        ),
        (
            "--p2p-listen",
            "p2p.listen",
            flags.p2p_listen.as_deref().map(list),
        ),
        ("--peers", "p2p.peers", flags.peers.as_deref().map(list)),
        (
            "--rpc-listen",
            "rpc.listen",
            flags.rpc_listen.map(|a| text(a.to_string())),
        ),
        (
            "--metrics-listen",
            "metrics.listen",
            flags.metrics_listen.map(|a| text(a.to_string())),
        ),
        (
            "--rpc-allowed-origins",
            "rpc.allowed_origins",
            flags.rpc_allowed_origins.as_deref().map(list),
        ),
        (
            "--rpc-health-max-block-age-ms",
            "rpc.health_max_block_age_ms",
            flags.rpc_health_max_block_age_ms.map(Value::from),
        ),
        (
            "--log-level",
            "log.level",
            flags.log_level.clone().map(text),
        ),
        (
            "--log-format",
            "log.format",
            flags.log_format.map(|f| {
                text(match f {
                    LogFormat::Plain => "plain".into(),
                    LogFormat::Json => "json".into(),
                })
            }),
        ),
    ]
}

/// The `--set KEY=VALUE` flags, one layer each, in the order given.
fn set_layers(set: &[String], all: &[Setting]) -> Result<Vec<Layer>, ConfigError> {
    let mut out = Vec::new();
    for item in set {
        let Some((key, value)) = item.split_once('=') else {
            return Err(ConfigError::Invalid(format!(
                "--set {item}: expected KEY=VALUE"
            )));
        };
        let key = key.trim();
        let Some(s) = all.iter().find(|s| s.key == key) else {
            return Err(ConfigError::Invalid(format!(
                "--set {item}: {key} is not a setting (`palisade config show` lists them)"
            )));
        };
        let name = format!("--set {key}");
        let v = parse_value(s.kind, value, &name)?;
        out.push(Layer::one(name, key, v));
    }
    Ok(out)
}

/// The layered settings of a node: the merged result and where each value
/// came from.
#[derive(Debug)]
pub struct Layered {
    pub config: NodeConfig,
    figment: Figment,
}

impl Layered {
    /// Where `key`'s value came from: `default`, the config file's path, a
    /// variable or a flag.
    pub fn source_of(&self, key: &str) -> String {
        match self.figment.find_metadata(key) {
            Some(m) => match &m.source {
                Some(figment::Source::File(p)) => p.display().to_string(),
                _ => m.name.to_string(),
            },
            None => "default".into(),
        }
    }
}

/// Loads `file` (which must exist) under the environment and `flags`, and
/// checks the result.
pub fn load(file: &Path, flags: &SettingFlags) -> Result<Layered, ConfigError> {
    // `vars()` would panic on any variable that is not UTF-8, ours or not:
    // only a PALISADE_ one that is not is an error.
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str().filter(|k| k.starts_with("PALISADE_")) else {
            continue;
        };
        let v = v
            .into_string()
            .map_err(|_| ConfigError::Invalid(format!("{k} is not valid UTF-8")))?;
        env.push((k.to_string(), v));
    }
    load_with_env(file, flags, env)
}

/// [`load`] with the environment given (tests).
pub fn load_with_env(
    file: &Path,
    flags: &SettingFlags,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Layered, ConfigError> {
    if !file.is_file() {
        return Err(ConfigError::Io {
            path: file.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let all = settings();
    let defaults = Layer {
        name: "default".into(),
        values: match Value::serialize(NodeConfig::default()) {
            Ok(Value::Dict(_, d)) => d,
            _ => Dict::new(),
        },
    };
    let mut figment = Figment::new().merge(defaults).merge(Toml::file_exact(file));
    for layer in env_layers(env, &all)? {
        figment = figment.merge(layer);
    }
    for layer in flag_layers(flags, &all)? {
        figment = figment.merge(layer);
    }
    // The message names the layer (file, variable, flag) itself.
    let config: NodeConfig = figment
        .extract()
        .map_err(|e| ConfigError::Invalid(one_line(&e)))?;
    config.validate()?;
    Ok(Layered { config, figment })
}

/// figment's error (possibly several), as one line naming the key and the
/// layer it came from.
fn one_line(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| {
            let key = e
                .path
                .iter()
                .filter(|p| p.as_str() != "default")
                .cloned()
                .collect::<Vec<_>>()
                .join(".");
            let from = e.metadata.as_ref().map(|m| match &m.source {
                Some(figment::Source::File(p)) => p.display().to_string(),
                _ => m.name.to_string(),
            });
            match (key.is_empty(), from) {
                (false, Some(from)) => format!("{key} (from {from}): {}", e.kind),
                (false, None) => format!("{key}: {}", e.kind),
                (true, Some(from)) => format!("{from}: {}", e.kind),
                (true, None) => e.kind.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
