//! `palisade file ...`: share files through a node. Publishing and read
//! permits are signed here, with the account's key; the node only ever
//! sees signatures.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use jsonrpsee::http_client::HttpClient;
use palisade_files::{FileRoot, Purpose, ReadPermit, SignedReadPermit, MAX_PERMIT_MS};
use palisade_rpc::files::api::FilesApiClient;
use palisade_rpc::files::http::{PATH, PERMIT_HEADER};
use palisade_rpc::files::types::{FileListQuery, FilePhase, FileProgress};
use palisade_rpc::PalisadeApiClient;
use palisade_types::file::{MAX_FILE_READER_ACCOUNTS, MAX_MIN_REPLICAS};
use palisade_types::{
    encode, Action, Address, BoundedString, BoundedVec, ChainId, FileReaders, Hash, Keypair, Role,
};

use crate::client::{
    client, node_chain_id, print, receipt_text, rpc_err, runtime, send_action, signing_key,
    ClientArgs, Output, Sent,
};

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Key file of the account (mode 0600).
    #[arg(long, env = "PALISADE_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Use a key file that group or others can read.
    #[arg(long, env = "PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_insecure_key_permissions: bool,
}

#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Hash a file, publish it on chain (role member) and hand it to the
    /// node, which serves it to readers from then on.
    Add(AddArgs),
    /// Fetch a file onto the node (from every peer that holds it) for the
    /// account whose key signs the read permit, and save it.
    Get {
        root: FileRoot,
        /// Where to write it (checked against its root before it takes
        /// this name). Without it, the file is fetched onto the node only
        /// (kept there, pinned).
        #[arg(long)]
        output: Option<PathBuf>,
        /// How long the read permit is good for, in minutes (at most a day).
        #[arg(long, default_value_t = 360)]
        permit_minutes: u64,
        #[command(flatten)]
        key: KeyArgs,
        /// The node's JSON-RPC endpoint.
        #[arg(long, env = "PALISADE_RPC", default_value = "http://127.0.0.1:8545")]
        rpc: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A file's record, who holds it, and the node's copy.
    Status {
        root: FileRoot,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Files published on chain, newest first (`--local`: the files this
    /// node holds, with why it keeps each).
    Ls {
        #[arg(long)]
        local: bool,
        /// At most this many (1 to 100).
        #[arg(long, default_value_t = 25)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Keep a file on the node whatever garbage collection does.
    Pin {
        root: FileRoot,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Let garbage collection remove a file from the node. A file
    /// published through the node stays until enough peers hold it.
    Unpin {
        root: FileRoot,
        /// Unpin even if fewer peers than the record's min_replicas hold it.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete files nothing pins (and files unpublished on chain) from
    /// the node; never one being downloaded or served.
    Gc {
        /// Only list what would go.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Withdraw a file you published (or, as an admin, any file): no
    /// honest node serves it any more, and each deletes its copy.
    #[command(alias = "purge")]
    Unpublish {
        root: FileRoot,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a file's root and size (what `add` would publish).
    Hash { path: PathBuf },
}

pub fn run(cmd: FileCommand) -> Result<()> {
    match cmd {
        FileCommand::Add(a) => add(a),
        FileCommand::Get {
            root,
            output,
            permit_minutes,
            key,
            rpc,
            json,
        } => {
            let client = ClientArgs {
                rpc,
                output: if json { Output::Json } else { Output::Text },
            };
            get(root, output.as_deref(), permit_minutes, &key, &client)
        }
        FileCommand::Status { root, client } => status(root, &client),
        FileCommand::Ls {
            local,
            limit,
            client,
        } => ls(local, limit, &client),
        FileCommand::Pin { root, client } => with_node(&client, |c, url| async move {
            c.file_pin(root).await.map_err(rpc_err(&url))?;
            println!("pinned {root}");
            Ok(())
        }),
        FileCommand::Unpin {
            root,
            force,
            client,
        } => with_node(&client, |c, url| async move {
            let dropped = c
                .file_unpin(root, Some(force))
                .await
                .map_err(rpc_err(&url))?;
            if dropped.is_empty() {
                println!("{root} was not pinned");
            } else {
                println!("unpinned {root} ({})", dropped.join(", "));
            }
            Ok(())
        }),
        FileCommand::Gc { dry_run, client } => {
            let output = client.output;
            with_node(&client, |c, url| async move {
                let gone = c.file_gc(Some(dry_run)).await.map_err(rpc_err(&url))?;
                print(output, &gone, || {
                    let total: u64 = gone.iter().map(|g| g.bytes).sum();
                    let mut text: Vec<String> = gone
                        .iter()
                        .map(|g| format!("{} {} ({})", g.root, bytes(g.bytes), g.why))
                        .collect();
                    let verb = if dry_run { "would free" } else { "freed" };
                    text.push(format!("{verb} {} in {} files", bytes(total), gone.len()));
                    text.join("\n")
                })
            })
        }
        FileCommand::Unpublish { root, key, client } => unpublish(root, &key, &client),
        FileCommand::Hash { path } => {
            let f = std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
            let (root, size) = FileRoot::of_reader(std::io::BufReader::new(f))?;
            println!("{root} {size}");
            Ok(())
        }
    }
}

fn with_node<F, Fut>(client_args: &ClientArgs, f: F) -> Result<()>
where
    F: FnOnce(HttpClient, String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let url = client_args.rpc.clone();
    runtime()?.block_on(async move {
        let c = client(&url)?;
        f(c, url).await
    })
}

/// `0x`-hex of a signed permit (what `file_fetch` and the HTTP header take).
fn permit_hex(p: &SignedReadPermit) -> String {
    format!("0x{}", hex::encode(encode(p)))
}

/// Permits for the node at `c`, signed by `key`, good for `minutes`: one
/// to fetch from its peers (it shows them that one) and one to read the
/// bytes at the node (or, the publisher, upload them), which no peer sees.
async fn permits_for(
    c: &HttpClient,
    url: &str,
    root: FileRoot,
    key: &Keypair,
    minutes: u64,
) -> Result<(SignedReadPermit, SignedReadPermit)> {
    let status = c.system_status().await.map_err(rpc_err(url))?;
    let chain_id =
        ChainId::new(status.chain_id.clone()).map_err(|e| anyhow!("node's chain id: {e}"))?;
    let peer: libp2p::PeerId = status
        .peer_id
        .parse()
        .map_err(|e| anyhow!("the node's peer id {:?}: {e}", status.peer_id))?;
    let ms = minutes.saturating_mul(60_000).min(MAX_PERMIT_MS - 60_000);
    if ms == 0 {
        bail!("--permit-minutes must be at least 1");
    }
    let expires = crate::files::now_ms().saturating_add(ms);
    let permit = ReadPermit::new(root, &peer.to_bytes(), expires, key.address())
        .map_err(|e| anyhow!("{e}"))?;
    Ok((
        permit.clone().sign(&chain_id, key, Purpose::Fetch),
        permit.sign(&chain_id, key, Purpose::Access),
    ))
}

fn readers_arg(s: &str) -> Result<FileReaders> {
    let s = s.trim();
    if s == "everyone" {
        return Ok(FileReaders::Everyone);
    }
    let parts: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.iter().all(|p| p.starts_with("role:")) {
        let roles = parts
            .iter()
            .map(|p| p["role:".len()..].parse::<Role>().map_err(|e| anyhow!(e)))
            .collect::<Result<Vec<_>>>()?;
        return BoundedVec::new(roles)
            .map(FileReaders::Roles)
            .map_err(|n| anyhow!("{n} roles; there are only 5"));
    }
    if parts.iter().any(|p| p.starts_with("role:")) {
        bail!("--readers is everyone, roles (role:member,...) or accounts (0x...,...), not a mix");
    }
    let accounts = parts
        .iter()
        .map(|p| {
            p.parse::<Address>()
                .map_err(|e| anyhow!("--readers {p:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    BoundedVec::new(accounts)
        .map(FileReaders::Accounts)
        .map_err(|n| anyhow!("{n} accounts; at most {MAX_FILE_READER_ACCOUNTS}"))
}

#[derive(Debug, Args)]
pub struct AddArgs {
    path: PathBuf,
    /// Who may read it besides you: `everyone`, roles
    /// (`role:member,role:minter`) or accounts (`0x...,0x...`).
    #[arg(long, default_value = "role:member")]
    readers: String,
    /// The name shown (default: the file's name).
    #[arg(long)]
    name: Option<String>,
    /// The media type shown.
    #[arg(long, default_value = "application/octet-stream")]
    media_type: String,
    /// Complete copies the network should hold before this node may
    /// stop keeping it.
    #[arg(long, default_value_t = 1)]
    min_replicas: u16,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    client: ClientArgs,
}

fn add(a: AddArgs) -> Result<()> {
    let key = signing_key(
        a.key.key_file.as_ref(),
        a.key.allow_insecure_key_permissions,
    )?;
    let readers = readers_arg(&a.readers)?;
    if a.min_replicas > MAX_MIN_REPLICAS {
        bail!("--min-replicas is at most {MAX_MIN_REPLICAS}");
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None => a
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{} has no file name; give --name", a.path.display()))?,
    };
    let name =
        BoundedString::new(name).map_err(|n| anyhow!("the name is {n} bytes; at most 255"))?;
    let media_type = BoundedString::new(a.media_type.clone())
        .map_err(|n| anyhow!("the media type is {n} bytes; at most 127"))?;
    let file = std::fs::File::open(&a.path).with_context(|| format!("{}", a.path.display()))?;
    let bar = bar(file.metadata()?.len(), "hashing");
    let (root, size) = FileRoot::of_reader(Counted {
        inner: std::io::BufReader::new(file),
        bar: &bar,
    })?;
    bar.finish_and_clear();
    let url = a.client.rpc.clone();
    let output = a.client.output;
    runtime()?.block_on(async move {
        let c = client(&url)?;
        let chain_id = node_chain_id(&c, &url, None).await?;
        let existing = c
            .file_get(root)
            .await
            .map_err(rpc_err(&url))?
            .map(|g| (g.record.publisher, g.record.size));
        match existing {
            Some((publisher, rsize)) if publisher == key.address() && rsize == size => {
                eprintln!("{root} is on record already (yours); handing the node its bytes");
            }
            Some(_) => bail!("a file with root {root} is on record already, published by another account or with another size"),
            None => {
                let action = Action::FilePublish {
                    root: Hash(root.0),
                    size,
                    name,
                    media_type,
                    readers,
                    min_replicas: a.min_replicas,
                };
                match send_action(&c, &url, &key, chain_id, None, action, Some(60_000)).await? {
                    Sent::Receipt(r) if r.success => eprintln!("{}", receipt_text(&r)),
                    Sent::Receipt(r) => bail!("publishing failed: {}", r.error),
                    Sent::Submitted(..) => bail!("the publish transaction was not confirmed"),
                }
            }
        }
        let (_, permit) = permits_for(&c, &url, root, &key, 60).await?;
        let upload_url = format!("{}{PATH}{root}", url.trim_end_matches('/'));
        let path = a.path.clone();
        tokio::task::spawn_blocking(move || upload(&upload_url, &path, size, &permit))
            .await
            .map_err(|e| anyhow!("upload task: {e}"))??;
        let out = serde_json::json!({"root": root, "size": size});
        print(output, &out, || format!("{root} ({}) published and served by {url}", bytes(size)))
    })
}

fn upload(url: &str, path: &Path, size: u64, permit: &SignedReadPermit) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    if file.metadata()?.len() != size {
        bail!("{} changed while it was published", path.display());
    }
    let bar = bar(size, "uploading");
    let mut body = Counted {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        bar: &bar,
    };
    let agent = agent();
    let resp = agent
        .put(url)
        .header(PERMIT_HEADER, permit_hex(permit))
        .header("content-length", size.to_string())
        .send(ureq::SendBody::from_reader(&mut body))
        .map_err(|e| anyhow!("upload to {url}: {e}"))?;
    bar.finish_and_clear();
    let status = resp.status();
    if !status.is_success() {
        let text = resp.into_body().read_to_string().unwrap_or_default();
        bail!("the node refused the upload ({status}): {}", text.trim());
    }
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn get(
    root: FileRoot,
    output: Option<&Path>,
    minutes: u64,
    key: &KeyArgs,
    client_args: &ClientArgs,
) -> Result<()> {
    let key = signing_key(key.key_file.as_ref(), key.allow_insecure_key_permissions)?;
    let url = client_args.rpc.clone();
    let json = client_args.output == Output::Json;
    let output = output.map(Path::to_path_buf);
    runtime()?.block_on(async move {
        let c = client(&url)?;
        let (fetch_permit, permit) = permits_for(&c, &url, root, &key, minutes).await?;
        let fetch_start = Instant::now();
        let mut p = c
            .file_fetch(root, permit_hex(&fetch_permit))
            .await
            .map_err(rpc_err(&url))?;
        let bar = bar(p.size, "fetching");
        let plain = !std::io::stderr().is_terminal();
        let mut last_line = Instant::now() - Duration::from_secs(10);
        loop {
            show(&bar, &p);
            let last = p.phase != FilePhase::Downloading;
            if plain && !json && (last || last_line.elapsed() >= Duration::from_secs(2)) {
                eprintln!("{}", line(&p));
                last_line = Instant::now();
            }
            match p.phase {
                FilePhase::Complete => break,
                FilePhase::Failed | FilePhase::Stopped => {
                    bar.abandon();
                    bail!(
                        "the download of {root} stopped: {}",
                        p.error.as_deref().unwrap_or("no reason given")
                    )
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            p = c
                .file_status(root)
                .await
                .map_err(rpc_err(&url))?
                .ok_or_else(|| anyhow!("the node lost track of {root}"))?;
        }
        bar.finish_and_clear();
        // The node's own count when it downloaded (no polling delay).
        let fetch_s = if p.elapsed_ms > 0 {
            p.elapsed_ms as f64 / 1000.0
        } else {
            fetch_start.elapsed().as_secs_f64()
        };
        let size = p.size;
        let Some(output) = output else {
            let done = serde_json::json!({"root": root, "size": size, "fetchSeconds": fetch_s});
            return print(client_args.output, &done, || {
                format!("{root} ({}) is on the node at {url}", bytes(size))
            });
        };
        let read_url = format!("{}{PATH}{root}", url.trim_end_matches('/'));
        let out = output.clone();
        let save_start = Instant::now();
        tokio::task::spawn_blocking(move || save(&read_url, &permit, root, size, &out))
            .await
            .map_err(|e| anyhow!("save task: {e}"))??;
        let done = serde_json::json!({
            "root": root,
            "size": size,
            "output": output,
            "fetchSeconds": fetch_s,
            "saveSeconds": save_start.elapsed().as_secs_f64(),
        });
        print(client_args.output, &done, || {
            format!("{root} ({}) saved to {}", bytes(size), output.display())
        })
    })
}

/// Reads the whole file from the node into `output`, checking it hashes
/// to `root` before it takes that name.
fn save(
    url: &str,
    permit: &SignedReadPermit,
    root: FileRoot,
    size: u64,
    output: &Path,
) -> Result<()> {
    let resp = agent()
        .get(url)
        .header(PERMIT_HEADER, permit_hex(permit))
        .call()
        .map_err(|e| anyhow!("read {url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.into_body().read_to_string().unwrap_or_default();
        bail!(
            "the node refused to hand over the file ({status}): {}",
            text.trim()
        );
    }
    // `PATH.part` beside it (the name with `.part` added, not an extension
    // swapped: `notes.txt` must not become an unrelated `notes.part`).
    let mut part_name = output.as_os_str().to_owned();
    part_name.push(".part");
    let part = PathBuf::from(part_name);
    let mut out = std::fs::File::create(&part).with_context(|| format!("{}", part.display()))?;
    let mut body = resp.into_body();
    let mut reader = body.as_reader();
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        got += n as u64;
    }
    out.sync_all()?;
    let hashed = FileRoot(*hasher.finalize().as_bytes());
    if got != size || hashed != root {
        let _ = std::fs::remove_file(&part);
        bail!("the bytes received ({got}) do not hash to {root}; nothing saved");
    }
    std::fs::rename(&part, output).with_context(|| format!("{}", output.display()))?;
    Ok(())
}

fn status(root: FileRoot, client_args: &ClientArgs) -> Result<()> {
    let output = client_args.output;
    with_node(client_args, |c, url| async move {
        let got = c
            .file_get(root)
            .await
            .map_err(rpc_err(&url))?
            .ok_or_else(|| anyhow!("no file with root {root} is on record"))?;
        print(output, &got, || {
            let r = &got.record;
            let mut text = vec![
                format!("{root}  {}  {} ({})", r.name, bytes(r.size), r.media_type),
                format!(
                    "published by {} at height {}{}",
                    r.publisher,
                    r.published,
                    r.unpublished
                        .map(|h| format!(", UNPUBLISHED at height {h}"))
                        .unwrap_or_default()
                ),
                format!(
                    "readers: {}",
                    serde_json::to_string(&r.readers).unwrap_or_default()
                ),
                format!("min replicas: {}", r.min_replicas),
                format!(
                    "peers holding it: {} ({} complete)",
                    got.holders.len(),
                    got.holders.iter().filter(|h| h.complete).count()
                ),
            ];
            text.push(match &got.local {
                Some(p) => format!("this node: {}", line(p)),
                None => "this node: none".into(),
            });
            text.join("\n")
        })
    })
}

fn ls(local: bool, limit: u32, client_args: &ClientArgs) -> Result<()> {
    let output = client_args.output;
    with_node(client_args, |c, url| async move {
        if local {
            let files = c.file_local().await.map_err(rpc_err(&url))?;
            return print(output, &files, || {
                files
                    .iter()
                    .map(|f| {
                        format!(
                            "{}  {}  {}  pins: {}",
                            f.root,
                            if f.complete { "complete" } else { "partial " },
                            bytes(f.disk_bytes),
                            if f.pins.is_empty() {
                                "none".to_string()
                            } else {
                                f.pins.join(",")
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        let page = c
            .file_list(Some(FileListQuery {
                limit: Some(limit),
                before: None,
            }))
            .await
            .map_err(rpc_err(&url))?;
        print(output, &page, || {
            page.files
                .iter()
                .map(|f| {
                    format!(
                        "{}  {}  {}  height {}{}",
                        f.root,
                        bytes(f.size),
                        f.name,
                        f.published,
                        if f.unpublished.is_some() {
                            "  (unpublished)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
    })
}

fn unpublish(root: FileRoot, key: &KeyArgs, client_args: &ClientArgs) -> Result<()> {
    let key = signing_key(key.key_file.as_ref(), key.allow_insecure_key_permissions)?;
    let output = client_args.output;
    with_node(client_args, |c, url| async move {
        let chain_id = node_chain_id(&c, &url, None).await?;
        let action = Action::FileUnpublish { root: Hash(root.0) };
        match send_action(&c, &url, &key, chain_id, None, action, Some(60_000)).await? {
            Sent::Receipt(r) => {
                print(output, &r, || receipt_text(&r))?;
                if !r.success {
                    bail!("unpublishing failed: {}", r.error);
                }
                Ok(())
            }
            Sent::Submitted(..) => bail!("the transaction was not confirmed"),
        }
    })
}

/// Counts what passes through into a progress bar.
struct Counted<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A byte progress bar on stderr (hidden when stderr is not a terminal).
fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}

fn show(bar: &ProgressBar, p: &FileProgress) {
    bar.set_length(p.size);
    bar.set_position(p.bytes_held);
    bar.set_message(format!("{} peers", p.peers));
}

/// One plain line of progress (logs, pipes).
fn line(p: &FileProgress) -> String {
    let eta = if p.rate > 0 && p.phase == FilePhase::Downloading {
        format!(", ETA {}s", (p.size - p.bytes_held.min(p.size)) / p.rate)
    } else {
        String::new()
    };
    format!(
        "{}: {}/{} pieces, {} of {}, {}/s, {} peers{eta}",
        p.phase,
        p.pieces_held,
        p.pieces,
        bytes(p.bytes_held),
        bytes(p.size),
        bytes(p.rate),
        p.peers
    )
}

fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
