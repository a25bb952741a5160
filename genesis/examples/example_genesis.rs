//! Prints an example genesis file (fixed keys) and its hash, state root and
//! validators hash: the example of `docs/genesis.md`.

use palisade_genesis::Genesis;
use palisade_types::Keypair;

fn main() {
    let k = |n: u8| Keypair::from_seed([n; 32]).public_key().to_string();
    let json = format!(
        r#"{{
  "chain_id": "palisade-example",
  "genesis_time_ms": 1700000000000,
  "consensus": {{
    "propose_ms": 1000, "propose_delta_ms": 500,
    "prevote_ms": 500, "prevote_delta_ms": 250,
    "precommit_ms": 500, "precommit_delta_ms": 250,
    "max_timeout_ms": 30000, "block_interval_ms": 250
  }},
  "params": {{
    "max_block_txs": 20000, "max_block_bytes": 8388608, "max_tx_bytes": 65536,
    "max_value_bytes": 16384, "validator_update_delay": 2,
    "max_block_gas": 1000000000, "min_gas_price": "0", "evm_chain_id": 1337
  }},
  "validators": [
    {{ "name": "validator-0", "consensus_key": "{}", "node_key": "{}", "power": 10 }},
    {{ "name": "validator-1", "consensus_key": "{}", "node_key": "{}", "power": 10 }}
  ],
  "accounts": [
    {{ "address": "{}", "balance": "1000000000", "roles": ["admin", "member", "minter"] }},
    {{ "address": "{}", "balance": "5000", "roles": ["member"] }}
  ],
  "evm_accounts": [
    {{ "address": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "balance": "7000", "roles": ["member", "deployer"] }}
  ]
}}
"#,
        k(0x33),
        k(0x44),
        k(0x34),
        k(0x45),
        k(0x11),
        k(0x22)
    );
    let g = match Genesis::from_json(&json) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("example genesis is invalid: {e}");
            std::process::exit(1);
        }
    };
    let root = match g.initial_state() {
        Ok(c) => c.root.to_string(),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let vals = g
        .validator_set()
        .map(|s| s.hash().to_string())
        .unwrap_or_default();
    println!("```json\n{json}```\n");
    println!(
        "```text\nvector: example-genesis\ngenesis_hash: {}\nstate_root: {root}\nvalidators_hash: {vals}\n```",
        g.hash()
    );
}
