//! `palisade config show`: the effective settings as TOML, each value with
//! where it came from and the variable that sets it. The output is itself
//! a valid `config.toml` (sources are comments), so it can be saved as one.

use super::layers::{settings, Layered};

/// The effective settings of `layered`, as commented TOML.
pub fn render(layered: &Layered) -> String {
    let table = match toml::Table::try_from(&layered.config) {
        Ok(t) => t,
        Err(e) => return format!("# cannot render the settings: {e}\n"),
    };
    let rows: Vec<(String, String, String)> = settings()
        .into_iter()
        .map(|s| {
            let value = lookup(&table, &s.key).map_or_else(String::new, |v| v.to_string());
            let note = format!("from {}; {}", layered.source_of(&s.key), s.env_var());
            (s.key, value, note)
        })
        .collect();
    let width = rows
        .iter()
        .map(|(k, v, _)| leaf(k).len() + 3 + v.len())
        .max()
        .unwrap_or(0)
        // A long list shouldn't push every comment off the screen.
        .min(48);
    let mut out = String::new();
    let mut section = String::new();
    for (key, value, note) in rows {
        let here = key.rsplit_once('.').map_or("", |(s, _)| s);
        if here != section {
            out.push_str(&format!("\n[{here}]\n"));
            section = here.to_string();
        }
        let line = format!("{} = {}", leaf(&key), value);
        out.push_str(&format!("{line:<width$}  # {note}\n"));
    }
    out
}

fn leaf(key: &str) -> &str {
    key.rsplit_once('.').map_or(key, |(_, k)| k)
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut v = table.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v)
}
