//! Shared files on real node processes: publish on one node, fetch on
//! others (at once, from many holders, after the publisher dies, after the
//! downloader dies), read permissions, purge, garbage collection and a
//! Byzantine holder.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use palisade_files::{FileRoot, Purpose, ReadPermit};
use palisade_node::home::write_key;
use palisade_tests::{palisade_bin, rpc_call, Devnet};
use palisade_types::{encode, Action, Keypair, Role, Transaction};
use serde_json::{json, Value};

const MIB: usize = 1 << 20;

/// `len` bytes no compressor or deduplication would shortcut.
fn random_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

fn new_key(dir: &Path, name: &str, seed: u8) -> (Keypair, PathBuf) {
    let key = Keypair::from_seed([seed; 32]);
    let path = dir.join(name);
    write_key(&path, &key).unwrap();
    (key, path)
}

fn file_cmd(net: &Devnet, node: usize, args: &[&str]) -> Command {
    let mut c = Command::new(palisade_bin());
    c.arg("file")
        .args(args)
        .env("PALISADE_RPC", format!("http://{}", net.rpc_addr(node)))
        .stdin(Stdio::null());
    c
}

fn run(net: &Devnet, node: usize, args: &[&str]) -> Output {
    file_cmd(net, node, args)
        .output()
        .expect("run palisade file")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn call(net: &Devnet, node: usize, method: &str, params: Value) -> Value {
    rpc_call(&net.rpc_addr(node), method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Publishes `path` through `node` with `extra` arguments; its root.
fn publish(net: &Devnet, node: usize, key: &Path, path: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "add",
        path.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--output", "json"]);
    let out = ok(run(net, node, &args), "file add");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["root"].as_str().unwrap().to_string()
}

fn get_cmd(net: &Devnet, node: usize, key: &Path, root: &str, out: &Path) -> Command {
    let mut c = file_cmd(
        net,
        node,
        &[
            "get",
            root,
            "--key-file",
            key.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn fetch(net: &Devnet, node: usize, key: &Path, root: &str, out: &Path) -> Duration {
    let start = Instant::now();
    ok(
        get_cmd(net, node, key, root, out).output().unwrap(),
        "file get",
    );
    start.elapsed()
}

fn same_bytes(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

/// Grants `role` to `who` with the devnet's admin, through node 0.
fn grant(net: &Devnet, who: &Keypair, role: Role, nonce: u64) {
    let admin = net.admin_key();
    let tx = Transaction {
        chain_id: net.chain_id(),
        nonce,
        signer: admin.address(),
        action: Action::GrantRole {
            account: who.address(),
            role,
        },
    }
    .sign(&admin);
    let r = call(
        net,
        0,
        "tx_submitAndWait",
        json!([format!("0x{}", hex::encode(encode(&tx))), 20_000]),
    );
    assert_eq!(r["success"], true, "{r}");
}

/// A permit of `key`'s for `node`, for `purpose`, as the header carries it.
fn permit_hex(net: &Devnet, node: usize, key: &Keypair, root: &str, purpose: Purpose) -> String {
    let peer: libp2p::PeerId = call(net, node, "system_status", json!([]))["peerId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let root: FileRoot = root.parse().unwrap();
    let p = ReadPermit::new(root, &peer.to_bytes(), now + 600_000, key.address())
        .unwrap()
        .sign(&net.chain_id(), key, purpose);
    format!("0x{}", hex::encode(encode(&p)))
}

/// A raw HTTP request to `node`'s RPC port: the status code and body.
fn http(net: &Devnet, node: usize, request: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(net.rpc_addr(node)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, buf[head_end + 4..].to_vec())
}

fn status(net: &Devnet, node: usize, root: &str) -> Value {
    call(net, node, "file_status", json!([root]))
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_child(c: &mut Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = c.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = Output {
        status: c.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    if let Some(mut s) = c.stdout.take() {
        let _ = s.read_to_end(&mut out.stdout);
    }
    if let Some(mut s) = c.stderr.take() {
        let _ = s.read_to_end(&mut out.stderr);
    }
    out
}

fn started(n: usize, extra: &[&str]) -> Devnet {
    let mut net = Devnet::generate(n);
    for i in 0..n {
        net.start_with(i, extra);
    }
    net.wait_height(&(0..n).collect::<Vec<_>>(), 2, Duration::from_secs(30));
    net
}

/// A 64 MiB file published on node 0 reaches nodes 2 and 3 at once, byte
/// for byte; a non-reader is refused; garbage collection removes only
/// what is unpinned; after the publisher withdraws it, every node deletes
/// it and none serves it.
#[test]
fn a_published_file_is_fetched_elsewhere_with_access_control_gc_and_purge() {
    let mut net = started(4, &[]);
    let dir = net.dir.path().to_path_buf();
    let admin_key = net.dir.path().join("net/admin_key.json");
    let (reader, reader_key) = new_key(&dir, "reader.json", 42);
    let (_, stranger_key) = new_key(&dir, "stranger.json", 43);
    grant(&net, &reader, Role::Member, 0);

    let src = random_file(&dir, "big.bin", 64 * MIB, 7);
    let root = publish(&net, 0, &admin_key, &src, &["--min-replicas", "3"]);
    assert_eq!(status(&net, 0, &root)["phase"], "complete");

    // Two nodes fetch at once.
    let (out2, out3) = (dir.join("got2.bin"), dir.join("got3.bin"));
    let mut a = get_cmd(&net, 2, &reader_key, &root, &out2).spawn().unwrap();
    let mut b = get_cmd(&net, 3, &reader_key, &root, &out3).spawn().unwrap();
    ok(
        wait_child(&mut a, Duration::from_secs(120)),
        "get on node 2",
    );
    ok(
        wait_child(&mut b, Duration::from_secs(120)),
        "get on node 3",
    );
    same_bytes(&src, &out2);
    same_bytes(&src, &out3);

    // Reading the bytes at node 2 takes an access permit: the fetch permit
    // node 2 showed its peers while downloading does not read them.
    let get = |permit: &str| {
        http(
            &net,
            2,
            &format!(
                "GET /files/{root} HTTP/1.1\r\nHost: x\r\nx-palisade-permit: {permit}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let (code, body) = get(&permit_hex(&net, 2, &reader, &root, Purpose::Fetch));
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    let (code, body) = get(&permit_hex(&net, 2, &reader, &root, Purpose::Access));
    assert_eq!(code, 200);
    assert_eq!(body.len(), 64 * MIB);
    // Through a proxy, the disk-managing methods are not the machine's own.
    let gc = r#"{"jsonrpc":"2.0","id":1,"method":"file_gc","params":[true]}"#;
    let (code, body) = http(
        &net,
        2,
        &format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Forwarded-For: 203.0.113.7\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{gc}",
            gc.len()
        ),
    );
    assert_eq!(code, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("-32054"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Node 1 sees three complete holders (once their announcements and
    // answers have reached it).
    let complete = |got: &Value| {
        got["holders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["complete"] == true)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = call(&net, 1, "file_get", json!([root]));
        if complete(&got) == 3 || Instant::now() >= deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(complete(&got), 3, "{got}");
    assert_eq!(got["record"]["name"], "big.bin");

    // Not a member: refused, nothing written, nothing fetched.
    let out = run(
        &net,
        1,
        &[
            "get",
            &root,
            "--key-file",
            stranger_key.to_str().unwrap(),
            "--output",
            dir.join("no.bin").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("may not read"), "{err}");
    assert!(!dir.join("no.bin").exists());
    assert_eq!(status(&net, 1, &root), Value::Null);

    // Garbage collection on node 3: its fetched copy is pinned until
    // unpinned; then it goes, and only it.
    let dry = call(&net, 3, "file_gc", json!([true]));
    assert_eq!(dry, json!([]), "pinned copies are kept");
    ok(run(&net, 3, &["unpin", &root]), "unpin");
    let dry = call(&net, 3, "file_gc", json!([true]));
    assert_eq!(dry.as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(status(&net, 3, &root)["phase"], "complete", "dry run only");
    let gone = call(&net, 3, "file_gc", json!([false]));
    assert_eq!(gone[0]["why"], "unpinned", "{gone}");
    assert_eq!(status(&net, 3, &root), Value::Null);
    assert_eq!(status(&net, 2, &root)["phase"], "complete");
    // The publisher's pin holds while fewer than min_replicas (3) peers
    // have complete copies (node 2 only, now).
    let out = run(&net, 0, &["unpin", &root]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("min_replicas")
            || String::from_utf8_lossy(&out.stderr).contains("the record asks for 3")
    );

    // Withdrawn: every holder deletes it; no node serves it.
    ok(
        run(
            &net,
            0,
            &[
                "unpublish",
                &root,
                "--key-file",
                admin_key.to_str().unwrap(),
            ],
        ),
        "unpublish",
    );
    for node in [0, 2] {
        wait_for("the copy to be deleted", Duration::from_secs(20), || {
            status(&net, node, &root) == Value::Null
        });
    }
    let out = run(
        &net,
        1,
        &[
            "get",
            &root,
            "--key-file",
            reader_key.to_str().unwrap(),
            "--output",
            dir.join("late.bin").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unpublished"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    net.stop_all();
}

/// With every node's uploads capped at 4 MiB/s: a download from three
/// holders is at least twice as fast as from one; a download goes on when
/// the publisher is killed; a downloader killed and restarted resumes and
/// fetches only what it lacked; garbage collection leaves a download in
/// progress alone.
#[test]
fn swarming_survives_the_publisher_and_the_downloader_dying() {
    let cap = [
        "--set",
        "files.upload_bytes_per_s=4194304",
        "--set",
        "files.peer_upload_bytes_per_s=4194304",
    ];
    let mut net = started(4, &cap);
    let dir = net.dir.path().to_path_buf();
    let admin_key = net.dir.path().join("net/admin_key.json");

    // One holder, then three.
    // Big enough that the caps set the pace, not the fixed cost of a
    // download (starting the CLI, finding holders, the first requests),
    // which a busy machine stretches: 16 s from one, 5.3 s from three.
    let src = random_file(&dir, "a.bin", 64 * MIB, 11);
    let root = publish(&net, 0, &admin_key, &src, &[]);
    let one = fetch(&net, 1, &admin_key, &root, &dir.join("a1.bin"));
    fetch(&net, 2, &admin_key, &root, &dir.join("a2.bin"));
    let three = fetch(&net, 3, &admin_key, &root, &dir.join("a3.bin"));
    for i in 1..4 {
        same_bytes(&src, &dir.join(format!("a{i}.bin")));
    }
    eprintln!("64 MiB from one holder in {one:?}, from three in {three:?}");
    assert!(
        one >= three * 2,
        "from one holder {one:?}, from three {three:?}: not twice as fast"
    );

    // The publisher dies mid-download: the others finish it.
    let src = random_file(&dir, "b.bin", 24 * MIB, 13);
    let root = publish(&net, 0, &admin_key, &src, &[]);
    fetch(&net, 1, &admin_key, &root, &dir.join("b1.bin"));
    fetch(&net, 2, &admin_key, &root, &dir.join("b2.bin"));
    let out3 = dir.join("b3.bin");
    let mut get = get_cmd(&net, 3, &admin_key, &root, &out3).spawn().unwrap();
    wait_for(
        "node 3 to hold some pieces",
        Duration::from_secs(30),
        || status(&net, 3, &root)["piecesHeld"].as_u64().unwrap_or(0) >= 2,
    );
    net.kill9(0);
    ok(
        wait_child(&mut get, Duration::from_secs(120)),
        "get after the publisher died",
    );
    same_bytes(&src, &out3);
    net.start_with(0, &cap);

    // The downloader dies mid-download and resumes.
    let src = random_file(&dir, "c.bin", 32 * MIB, 17);
    let root = publish(&net, 1, &admin_key, &src, &[]);
    let out3 = dir.join("c3.bin");
    let mut get = get_cmd(&net, 3, &admin_key, &root, &out3).spawn().unwrap();
    // Enough that losing the last half second's pieces (below) still
    // leaves some, and short of all 32.
    wait_for("node 3 to hold 12 pieces", Duration::from_secs(60), || {
        status(&net, 3, &root)["piecesHeld"].as_u64().unwrap_or(0) >= 12
    });
    // Not even a dry run lists a download in progress.
    let gc = call(&net, 3, "file_gc", json!([false]));
    assert!(
        !gc.as_array()
            .unwrap()
            .iter()
            .any(|g| g["root"] == root.as_str()),
        "{gc}"
    );
    net.kill9(3);
    let _ = get.kill();
    let _ = get.wait();
    net.start_with(3, &cap);
    net.wait_height(&[3], net.top_height(&[1]), Duration::from_secs(30));
    let after = status(&net, 3, &root);
    assert_eq!(after["phase"], "stopped", "{after}");
    // Pieces are synced in batches: those of the last half second before
    // the kill may be gone; most are kept.
    let held = after["piecesHeld"].as_u64().unwrap();
    assert!(held >= 4, "{after}");
    fetch(&net, 3, &admin_key, &root, &out3);
    same_bytes(&src, &out3);
    let downloaded = net
        .metric(3, "palisade_file_download_bytes_total")
        .unwrap_or(0.0);
    let missing = (32 - held) as f64 * MIB as f64;
    assert!(
        downloaded <= missing + MIB as f64 * 2.0,
        "fetched {downloaded} bytes after the restart, {missing} were missing"
    );
    net.stop_all();
}

/// A holder that serves corrupted pieces is caught at the first bad group,
/// cut off and penalized; the file still arrives intact.
#[test]
fn a_byzantine_holder_is_cut_off_and_the_file_still_arrives() {
    let mut net = Devnet::generate(4);
    net.start(0);
    net.start_byzantine(1, "corrupt-pieces");
    net.start(2);
    net.start(3);
    net.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(30));
    let dir = net.dir.path().to_path_buf();
    let admin_key = net.dir.path().join("net/admin_key.json");
    let src = random_file(&dir, "d.bin", 12 * MIB, 19);
    let root = publish(&net, 0, &admin_key, &src, &[]);
    // Node 1 downloads honestly (it verifies what it gets) and then holds
    // a complete copy that it serves corrupted.
    fetch(&net, 1, &admin_key, &root, &dir.join("d1.bin"));
    same_bytes(&src, &dir.join("d1.bin"));
    let out3 = dir.join("d3.bin");
    fetch(&net, 3, &admin_key, &root, &out3);
    same_bytes(&src, &out3);
    let penalties = net
        .metric(3, "palisade_p2p_penalties_total{reason=\"bad_file_piece\"}")
        .unwrap_or(0.0);
    assert!(
        penalties >= 1.0,
        "node 3 did not penalize the corrupt holder"
    );
    assert!(
        net.log(3).contains("does not verify"),
        "{}",
        net.log_tail(3)
    );
    net.stop_all();
}
