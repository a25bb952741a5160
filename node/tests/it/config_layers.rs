//! Settings layering: defaults < config.toml < PALISADE_* variables <
//! flags, every setting reachable by a variable and `--set`, and
//! `config show` telling where each value came from.

use palisade_node::config::layers::{load_with_env, settings, Kind, SettingFlags};
use palisade_node::config::show::render;
use palisade_node::config::NodeConfig;

fn home_with(toml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, toml).unwrap();
    (dir, path)
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn each_layer_overrides_the_one_below_and_is_named_as_the_source() {
    let (_d, path) = home_with(
        "[rpc]\nmax_batch = 10\nmax_connections = 20\nmax_subscriptions_per_connection = 30\n",
    );
    let flags = SettingFlags {
        rpc_listen: Some("0.0.0.0:1".parse().unwrap()),
        set: vec!["rpc.max_subscriptions_per_connection=40".into()],
        ..SettingFlags::default()
    };
    let vars = env(&[
        ("PALISADE_RPC_MAX_CONNECTIONS", "21"),
        ("PALISADE_RPC_MAX_SUBSCRIPTIONS_PER_CONNECTION", "31"),
        ("PALISADE_RPC_LISTEN", "10.0.0.1:2"),
    ]);
    let l = load_with_env(&path, &flags, vars).unwrap();
    let c = &l.config;
    assert_eq!(
        c.rpc.max_request_bytes,
        NodeConfig::default().rpc.max_request_bytes
    );
    assert_eq!(l.source_of("rpc.max_request_bytes"), "default");
    assert_eq!(c.rpc.max_batch, 10);
    assert_eq!(l.source_of("rpc.max_batch"), path.display().to_string());
    assert_eq!(c.rpc.max_connections, 21);
    assert_eq!(
        l.source_of("rpc.max_connections"),
        "PALISADE_RPC_MAX_CONNECTIONS"
    );
    assert_eq!(c.rpc.listen.to_string(), "0.0.0.0:1");
    assert_eq!(l.source_of("rpc.listen"), "--rpc-listen");
    assert_eq!(c.rpc.max_subscriptions_per_connection, 40);
    assert_eq!(
        l.source_of("rpc.max_subscriptions_per_connection"),
        "--set rpc.max_subscriptions_per_connection"
    );
}

/// Every setting, including ones added later, has a variable and `--set`:
/// each is set to a value different from its default and must arrive.
#[test]
fn every_setting_has_a_working_variable_and_set_flag() {
    let all = settings();
    assert!(all.len() >= 25, "only {} settings found", all.len());
    let (_d, path) = home_with("");
    for s in &all {
        let value = match (s.kind, s.key.as_str()) {
            (_, "log.format") => "json".to_string(),
            (_, k) if k.ends_with("listen") && s.kind == Kind::Text => "10.1.2.3:4567".into(),
            (Kind::List, k) if k.ends_with("listen") => {
                "/ip4/10.1.2.3/tcp/1,/ip4/10.1.2.4/tcp/2".into()
            }
            (Kind::List, "rpc.allowed_origins") => "http://a.example,https://b.example:8443".into(),
            (Kind::List, _) => String::new(),
            // Zero by default (off), with a least value when on.
            (_, "pruning.keep_blocks") => "200".into(),
            (_, "pruning.keep_state_versions") => "20".into(),
            (_, "statesync.trust_height") => "5".into(),
            (_, "statesync.trust_hash") => format!("0x{}", "ab".repeat(32)),
            // Twice the default: changed, and within every limit's checks.
            (Kind::Number, k) => (default_number(k) * 2).to_string(),
            (Kind::Bool, k) => (!default_value(k).as_bool().unwrap()).to_string(),
            (Kind::Text, _) => "changed".into(),
        };
        let var = s.env_var();
        let by_env = load_with_env(&path, &SettingFlags::default(), env(&[(&var, &value)]))
            .unwrap_or_else(|e| panic!("{var}={value}: {e}"));
        assert_eq!(by_env.source_of(&s.key), var, "{}", s.key);
        let flags = SettingFlags {
            set: vec![format!("{}={value}", s.key)],
            ..SettingFlags::default()
        };
        let by_flag = load_with_env(&path, &flags, env(&[])).unwrap();
        assert_eq!(by_flag.config, by_env.config, "{}", s.key);
        let rendered = render(&by_env);
        let line = rendered
            .lines()
            .find(|l| l.contains(&format!("# from {var};")))
            .unwrap_or_else(|| panic!("{} not shown as set by {var}:\n{rendered}", s.key));
        if s.kind != Kind::List {
            assert!(line.contains(value.as_str()), "{line}");
        }
        if s.kind != Kind::List || !value.is_empty() {
            assert_ne!(
                by_env.config,
                NodeConfig::default(),
                "{var} changed nothing"
            );
        }
    }
}

fn default_value(key: &str) -> toml::Value {
    let t = toml::Table::try_from(NodeConfig::default()).unwrap();
    let mut v = &toml::Value::Table(t);
    for part in key.split('.') {
        v = &v[part];
    }
    v.clone()
}

fn default_number(key: &str) -> u64 {
    u64::try_from(default_value(key).as_integer().unwrap()).unwrap()
}

#[test]
fn lists_are_comma_separated_and_an_empty_value_clears_them() {
    let (_d, path) = home_with("[p2p]\npeers = [\"/ip4/1.1.1.1/tcp/1\"]\n");
    let l = load_with_env(
        &path,
        &SettingFlags::default(),
        env(&[(
            "PALISADE_P2P_PEERS",
            " /ip4/1.2.3.4/tcp/1 , /ip4/1.2.3.5/tcp/2 ",
        )]),
    )
    .unwrap();
    assert_eq!(
        l.config.p2p.peers,
        vec!["/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.5/tcp/2"]
    );
    let l = load_with_env(
        &path,
        &SettingFlags::default(),
        env(&[("PALISADE_P2P_PEERS", "")]),
    )
    .unwrap();
    assert!(l.config.p2p.peers.is_empty());
}

#[test]
fn older_variable_names_work_and_the_current_name_wins() {
    let (_d, path) = home_with("");
    let l = load_with_env(
        &path,
        &SettingFlags::default(),
        env(&[("PALISADE_LOG", "debug")]),
    )
    .unwrap();
    assert_eq!(l.config.log.level, "debug");
    assert_eq!(l.source_of("log.level"), "PALISADE_LOG");
    for order in [
        [("PALISADE_LOG_LEVEL", "warn"), ("PALISADE_LOG", "debug")],
        [("PALISADE_LOG", "debug"), ("PALISADE_LOG_LEVEL", "warn")],
    ] {
        let l = load_with_env(&path, &SettingFlags::default(), env(&order)).unwrap();
        assert_eq!(l.config.log.level, "warn");
    }
}

#[test]
fn bad_values_name_the_variable_flag_or_file_and_unknown_names_are_refused() {
    let (_d, path) = home_with("[rpc]\nmax_batch = \"many\"\n");
    let e = load_with_env(&path, &SettingFlags::default(), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rpc.max_batch") && e.contains(&path.display().to_string()),
        "{e}"
    );

    let (_d, path) = home_with("");
    type Case = (Vec<(String, String)>, SettingFlags, &'static str);
    let cases: Vec<Case> = vec![
        (
            env(&[("PALISADE_RPC_MAX_BATCH", "x")]),
            SettingFlags::default(),
            "PALISADE_RPC_MAX_BATCH",
        ),
        (
            env(&[("PALISADE_RPC_LISTEN", "nowhere")]),
            SettingFlags::default(),
            "PALISADE_RPC_LISTEN",
        ),
        (
            env(&[("PALISADE_METRICS_ENABLED", "maybe")]),
            SettingFlags::default(),
            "PALISADE_METRICS_ENABLED",
        ),
        (
            env(&[("PALISADE_RPC_LISTN", "127.0.0.1:1")]),
            SettingFlags::default(),
            "PALISADE_RPC_LISTN is not a setting",
        ),
        (
            env(&[]),
            SettingFlags {
                set: vec!["rpc.nope=1".into()],
                ..SettingFlags::default()
            },
            "rpc.nope is not a setting",
        ),
        (
            env(&[]),
            SettingFlags {
                set: vec!["rpc.max_batch".into()],
                ..SettingFlags::default()
            },
            "expected KEY=VALUE",
        ),
        (
            env(&[]),
            SettingFlags {
                set: vec!["log.format=xml".into()],
                ..SettingFlags::default()
            },
            "--set log.format",
        ),
        // Parsed fine but checked like the file: a zero limit is refused.
        (
            env(&[("PALISADE_MEMPOOL_MAX_TXS", "0")]),
            SettingFlags::default(),
            "mempool limits",
        ),
    ];
    for (vars, flags, want) in cases {
        let e = load_with_env(&path, &flags, vars.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{vars:?} {flags:?}: {e}");
    }
    // A top-level setting misspelt: refused, with the variable meant.
    let e = load_with_env(
        &path,
        &SettingFlags::default(),
        env(&[("PALISADE_MONIKR", "x")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("did you mean PALISADE_MONIKER?"), "{e}");
    // Variables outside the settings' sections are not settings and not errors.
    let l = load_with_env(
        &path,
        &SettingFlags::default(),
        env(&[
            ("PALISADE_HOME", "/x"),
            ("PALISADE_RPC", "http://x"),
            ("PALISADE_FAULT_SEED", "1"),
            ("PALISADE_KEY_FILE", "/k"),
            ("PALISADE_BIN", "/b"),
            ("PALISADE_TEST_NODE_BIN", "/t"),
            ("PALISADE_FAULTS_FULL", "1"),
            ("PALISADE_SIM_SEEDS_PER_CHUNK", "9"),
            ("PALISADE_DOC_EXAMPLES", "write"),
            ("PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(l.config, NodeConfig::default());
}

#[test]
fn config_show_is_a_config_file_that_loads_back_to_the_same_settings() {
    let (_d, path) = home_with("moniker = \"n1\"\n[mempool]\nmax_txs = 77\n");
    let flags = SettingFlags {
        peers: Some(vec!["/ip4/10.0.0.2/tcp/26656".into()]),
        ..SettingFlags::default()
    };
    let l = load_with_env(&path, &flags, env(&[("PALISADE_RPC_MAX_BATCH", "9")])).unwrap();
    let shown = render(&l);
    assert!(shown.contains("max_txs = 77"), "{shown}");
    assert!(
        shown.contains("# from --peers; PALISADE_P2P_PEERS"),
        "{shown}"
    );
    assert!(
        shown.contains("# from default; PALISADE_RPC_MAX_CONNECTIONS"),
        "{shown}"
    );
    assert_eq!(NodeConfig::from_toml(&shown).unwrap(), l.config);
}
