//! `docs/operators.md`'s walkthrough of a network of four machines, run
//! as written. Its shell blocks marked `<!-- ceremony: ... -->` are taken
//! out of the document and run in order: `machine=each` in each of four
//! network namespaces (each machine its own address), `coordinator` on the
//! host (which reaches every namespace), `unit` must be the shipped
//! `docs/palisade.service`, and `start` starts each node the way that unit
//! does: its `ExecStart` with its `EnvironmentFile`. The test maps only
//! what differs from real machines: the addresses `10.0.0.N` become the
//! namespaces' addresses, absolute paths (`/var/lib/palisade`,
//! `/etc/palisade`, `/tmp`) fall under a directory per machine, `scp`
//! copies into that directory, and `<FIELD of machine N>` is what
//! machine N's commands printed as `FIELD: value`, as an operator would
//! send it to the coordinator.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_tests::{metric, palisade_bin, rpc_call, NetNs};

const DOC: &str = include_str!("../../../docs/operators.md");
const UNIT: &str = include_str!("../../../docs/palisade.service");
const MACHINES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Each,
    Coordinator,
    Unit,
    Start,
}

#[derive(Debug)]
struct Block {
    kind: Kind,
    /// Line of the marker in the document, for messages.
    line: usize,
    text: String,
}

/// The marked blocks of `doc`, in order.
fn blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(marker) = lines[i]
            .trim()
            .strip_prefix("<!-- ceremony:")
            .and_then(|m| m.strip_suffix("-->"))
        else {
            i += 1;
            continue;
        };
        let kind = match marker.trim() {
            "machine=each" => Kind::Each,
            "coordinator" => Kind::Coordinator,
            "unit" => Kind::Unit,
            "start" => Kind::Start,
            other => panic!("docs/operators.md:{}: unknown marker {other:?}", i + 1),
        };
        let fence = lines.get(i + 1).copied().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "docs/operators.md:{}: a ceremony marker must come right before a ``` block",
            i + 1
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect();
        out.push(Block {
            kind,
            line: i + 1,
            text: body.join("\n") + "\n",
        });
        i += 2 + body.len();
    }
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-'
}

/// `text` with each whole occurrence of a `map` key (not part of a longer
/// word, address or path component) replaced, in one pass.
fn map_text(text: &str, map: &[(String, String)]) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    'next: while i < text.len() {
        if i == 0 || !is_word(b[i - 1]) {
            for (from, to) in map {
                if text[i..].starts_with(from.as_str())
                    && b.get(i + from.len()).is_none_or(|c| !is_word(*c))
                {
                    out.push_str(to);
                    i += from.len();
                    continue 'next;
                }
            }
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `<FIELD of machine N>` replaced by what machine N printed as `FIELD:`.
fn fill_placeholders(text: &str, printed: &[HashMap<String, String>], line: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            out.push_str(after);
            return out;
        };
        let inner = &after[1..end];
        // `<<EOF` and the like: not a placeholder, go on after its `<`.
        if inner.contains('<') {
            out.push('<');
            rest = &after[1..];
            continue;
        }
        match inner.split_once(" of machine ") {
            Some((field, n)) => {
                let n: usize = n.trim().parse().unwrap_or_else(|_| {
                    panic!("docs/operators.md:{line}: bad placeholder <{inner}>")
                });
                let value = printed
                    .get(n.wrapping_sub(1))
                    .and_then(|m| m.get(field))
                    .unwrap_or_else(|| {
                        panic!(
                            "docs/operators.md:{line}: <{inner}>: machine {n} printed no `{field}:` line"
                        )
                    });
                out.push_str(value);
            }
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `FIELD: value` lines of a command's output.
fn fields(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v = v.trim();
            (!k.is_empty()
                && k.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
                && !v.is_empty())
            .then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Four "machines": namespaces, a directory each standing for their file
/// systems, and the nodes started; every node is killed when dropped
/// (before the namespaces go, with the fields after this Drop).
struct Machines {
    nodes: Vec<Child>,
    net: NetNs,
    dir: tempfile::TempDir,
}

impl Drop for Machines {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Machines {
    fn root(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("machine{}", i + 1))
    }
    fn coordinator(&self) -> PathBuf {
        self.dir.path().join("coordinator")
    }
    fn tools(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    /// The addresses of the document and the namespaces' in their place.
    fn addresses(&self) -> Vec<(String, String)> {
        (0..MACHINES)
            .map(|i| (format!("10.0.0.{}", i + 1), self.net.ip(i)))
            .collect()
    }
    /// What a command on machine `i` sees: its addresses, and its file
    /// system under its directory.
    fn machine_map(&self, i: usize) -> Vec<(String, String)> {
        let root = self.root(i);
        let mut m = self.addresses();
        m.push((
            "/usr/local/bin/palisade".into(),
            palisade_bin().display().to_string(),
        ));
        for p in ["/var/lib/palisade", "/etc/palisade", "/tmp"] {
            m.push((p.into(), format!("{}{p}", root.display())));
        }
        m
    }
    fn path_env(&self) -> String {
        let bin_dir = palisade_bin()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        format!(
            "{}:{}:{}",
            self.tools().display(),
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

/// The directories the document's unmarked first step (user, directories,
/// binary) makes, and `scp` for the coordinator: `HOST:PATH` is PATH under
/// that machine's directory.
fn prepare(m: &Machines) {
    for i in 0..MACHINES {
        for d in ["var/lib/palisade", "etc/palisade", "tmp"] {
            std::fs::create_dir_all(m.root(i).join(d)).unwrap();
        }
    }
    std::fs::create_dir_all(m.coordinator()).unwrap();
    std::fs::create_dir_all(m.tools()).unwrap();
    let cases: String = (0..MACHINES)
        .map(|i| format!("  {}) root={} ;;\n", m.net.ip(i), m.root(i).display()))
        .collect();
    let scp = format!(
        "#!/bin/sh\n# The test's scp: HOST:PATH is PATH under that machine's directory.\nset -eu\nfor last; do :; done\nhost=${{last%%:*}}\npath=${{last#*:}}\ncase \"$host\" in\n{cases}  *) echo \"scp: unknown host $host\" >&2; exit 1 ;;\nesac\nn=$#\ni=0\nfor a; do\n  i=$((i+1))\n  if [ \"$i\" -lt \"$n\" ]; then cp \"$a\" \"$root$path\"; fi\ndone\n"
    );
    let path = m.tools().join("scp");
    std::fs::write(&path, scp).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `script` with `sh -eu` (in namespace `ns` if given), bounded.
fn run_sh(m: &Machines, ns: Option<&str>, script: &str, cwd: &Path, n: Option<usize>) -> Ran {
    let out_path = cwd.join(".block.out");
    let err_path = cwd.join(".block.err");
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "sh", "-eu", "-c", script]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-eu", "-c", script]);
            c
        }
    };
    for (k, _) in std::env::vars() {
        if k.starts_with("PALISADE_") {
            cmd.env_remove(k);
        }
    }
    if let Some(n) = n {
        cmd.env("N", n.to_string());
    }
    let mut child = cmd
        .env("PATH", m.path_env())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn sh");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Ran {
        ok: status.is_some_and(|s| s.success()),
        stdout: read(&out_path),
        stderr: read(&err_path)
            + if status.is_none() {
                "\n(timed out)"
            } else {
                ""
            },
    }
}

fn check(ran: &Ran, block: &Block, who: &str, script: &str) {
    assert!(
        ran.ok,
        "docs/operators.md:{}: the block failed on {who}:\n--- script:\n{script}--- stdout:\n{}--- stderr:\n{}",
        block.line, ran.stdout, ran.stderr
    );
}

/// The unit's `EnvironmentFile` and `ExecStart` as machine `i` sees them.
fn unit_command(m: &Machines, i: usize) -> (Vec<(String, String)>, Vec<String>) {
    let value = |key: &str| {
        UNIT.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("palisade.service has no {key}"))
            .trim()
            .to_string()
    };
    let map = m.machine_map(i);
    let env_file = map_text(value("EnvironmentFile=").trim_start_matches('-'), &map);
    let env = std::fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("machine {}: {env_file}: {e}", i + 1))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let exec = map_text(&value("ExecStart="), &map)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    (env, exec)
}

/// Starts machine `i`'s node as the unit does; its stderr (the journal)
/// goes to `node.log` in its directory.
fn start_node(m: &Machines, i: usize) -> Child {
    let (env, exec) = unit_command(m, i);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &m.net.ns(i)]).args(&exec);
    for (k, _) in std::env::vars() {
        if k.starts_with("PALISADE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(m.root(i).join("node.log")).unwrap())
        .spawn()
        .expect("start a node")
}

fn log_tails(m: &Machines) -> String {
    (0..MACHINES)
        .map(|i| {
            let text = std::fs::read_to_string(m.root(i).join("node.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "--- machine {} log tail:\n{}",
                i + 1,
                lines[lines.len().saturating_sub(30)..].join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until every node has committed `h`; panics with their logs after
/// `timeout` or when one exits.
fn wait_all_commit(m: &mut Machines, h: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let heights: Vec<Option<u64>> = (0..MACHINES)
            .map(|i| metric(&format!("{}:9615", m.net.ip(i)), "palisade_height").map(|v| v as u64))
            .collect();
        if heights.iter().all(|x| x.is_some_and(|x| x >= h)) {
            return;
        }
        for (i, c) in m.nodes.iter_mut().enumerate() {
            if let Ok(Some(s)) = c.try_wait() {
                panic!("machine {}'s node exited ({s}):\n{}", i + 1, log_tails(m));
            }
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not all reach height {h} in {timeout:?}: {heights:?}\n{}",
            log_tails(m)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_documented_blocks_are_found() {
    let b = blocks(DOC);
    let count = |k: Kind| b.iter().filter(|x| x.kind == k).count();
    assert!(count(Kind::Each) >= 3, "{b:?}");
    assert!(count(Kind::Coordinator) >= 3, "{b:?}");
    assert_eq!(count(Kind::Unit), 1);
    assert_eq!(count(Kind::Start), 1);
    let unit = b.iter().find(|x| x.kind == Kind::Unit).unwrap();
    assert_eq!(
        unit.text, UNIT,
        "the unit in docs/operators.md differs from docs/palisade.service"
    );
    let map = vec![
        ("10.0.0.1".to_string(), "A".to_string()),
        ("/tmp".to_string(), "/r/tmp".to_string()),
    ];
    assert_eq!(
        map_text(
            "10.0.0.1 10.0.0.10 x10.0.0.1 \"$ip\":/tmp/ /a/tmp /tmpx",
            &map
        ),
        "A 10.0.0.10 x10.0.0.1 \"$ip\":/r/tmp/ /a/tmp /tmpx"
    );
}

#[test]
fn a_four_machine_network_from_the_operators_guide() {
    if !palisade_tests::netns_prerequisites() {
        return;
    }
    let net = NetNs::create(MACHINES).expect("create the namespaces");
    let mut m = Machines {
        nodes: Vec::new(),
        net,
        dir: tempfile::tempdir().unwrap(),
    };
    prepare(&m);
    let blocks = blocks(DOC);
    // What each machine printed (`FIELD: value`), and the coordinator.
    let mut printed: Vec<HashMap<String, String>> = vec![HashMap::new(); MACHINES];
    let mut coordinator: HashMap<String, String> = HashMap::new();
    let mut genesis_hashes: Vec<String> = Vec::new();
    let mut last_coordinator_out = String::new();
    for block in &blocks {
        match block.kind {
            Kind::Each => {
                for i in 0..MACHINES {
                    let script = fill_placeholders(
                        &map_text(&block.text, &m.machine_map(i)),
                        &printed,
                        block.line,
                    );
                    let ran = run_sh(&m, Some(&m.net.ns(i)), &script, &m.root(i), Some(i + 1));
                    check(&ran, block, &format!("machine {}", i + 1), &script);
                    let f = fields(&ran.stdout);
                    if let Some(h) = f.get("genesis_hash") {
                        genesis_hashes.push(h.clone());
                    }
                    printed[i].extend(f);
                }
            }
            Kind::Coordinator => {
                let script =
                    fill_placeholders(&map_text(&block.text, &m.addresses()), &printed, block.line);
                let ran = run_sh(&m, None, &script, &m.coordinator(), None);
                check(&ran, block, "the coordinator", &script);
                coordinator.extend(fields(&ran.stdout));
                last_coordinator_out = ran.stdout;
            }
            Kind::Unit => assert_eq!(
                block.text, UNIT,
                "the unit in docs/operators.md differs from docs/palisade.service"
            ),
            Kind::Start => {
                for i in 0..MACHINES {
                    let child = start_node(&m, i);
                    m.nodes.push(child);
                }
                wait_all_commit(&mut m, 5, Duration::from_secs(90));
            }
        }
    }

    // Each machine's init printed an address of its own namespace.
    for (i, p) in printed.iter().enumerate() {
        let addr = p.get("p2p_address").expect("init printed a p2p_address");
        assert!(
            addr.starts_with(&format!("/ip4/{}/tcp/26656/p2p/12D3", m.net.ip(i))),
            "machine {}: {addr}",
            i + 1
        );
    }
    // Every node checked the coordinator's genesis.
    let hash = coordinator
        .get("genesis_hash")
        .expect("the coordinator validated the genesis");
    assert!(
        genesis_hashes.len() >= MACHINES && genesis_hashes.iter().all(|h| h == hash),
        "genesis hashes {genesis_hashes:?}, coordinator's {hash}"
    );
    // The last block sent a transfer and read the balance back.
    assert!(
        last_coordinator_out.contains("balance 1000"),
        "{last_coordinator_out}"
    );
    // The network goes on committing, and every node has the same blocks.
    let top = (0..MACHINES)
        .filter_map(|i| metric(&format!("{}:9615", m.net.ip(i)), "palisade_height"))
        .fold(0.0, f64::max) as u64;
    wait_all_commit(&mut m, top + 3, Duration::from_secs(60));
    for h in 1..=top {
        let hashes: Vec<String> = (0..MACHINES)
            .map(|i| {
                rpc_call(
                    &format!("{}:8545", m.net.ip(i)),
                    "chain_getBlock",
                    serde_json::json!([h]),
                )
                .ok()
                .and_then(|b| b["hash"].as_str().map(str::to_string))
                .unwrap_or_default()
            })
            .collect();
        assert!(
            !hashes[0].is_empty() && hashes.iter().all(|x| *x == hashes[0]),
            "height {h}: {hashes:?}"
        );
    }
}
