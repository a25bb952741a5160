//! `palisade bench --workload erc20`: ERC-20 `transfer` calls signed by
//! well-known secp256k1 accounts (given `member` by `palisade testnet
//! --bench-accounts N`, account 0 also `deployer`), sent with
//! `eth_sendRawTransaction`.
//!
//! Before the clock starts the generator deploys the solc-compiled token
//! of the runtime's tests from account 0 and hands tokens out along a
//! tree (account 0 to the first [`FANOUT`] accounts, each of those to the
//! next ones), waiting for each round to commit; then it signs every
//! measured transfer (account `s` pays 1 to account `s + 1`).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::HttpClient;
use jsonrpsee::rpc_params;
use palisade_ethtx::{Address, Eip1559, EthSigner};
use palisade_types::{sha256, Hash};

/// The token: `constructor(uint256 supply)` gives the deployer the supply.
const TOKEN_JSON: &str = include_str!("../../runtime/tests/fixtures/Token.json");
/// `transfer(address,uint256)`.
const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// Accounts each holder hands tokens to per round (the Ethereum pool keeps
/// up to 1,024 pending transactions per sender).
pub const FANOUT: usize = 128;
/// Gas of one transfer: about 51,000 to a new holder, 34,000 otherwise.
const TRANSFER_GAS: u64 = 100_000;
const DEPLOY_GAS: u64 = 2_000_000;
/// Calls per JSON-RPC batch (a node's default `rpc.max_batch`).
const BATCH: usize = 50;
/// How long one set-up round may take to commit.
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);

/// Load-test Ethereum account `i`: its key derives from a public string.
pub fn bench_eth_signer(i: u32) -> EthSigner {
    let mut seed = sha256(format!("palisade bench eth account {i}").as_bytes()).0;
    // A hash is a valid secret unless it is zero or above the group order
    // (odds about 2^-128); hash again then.
    loop {
        match EthSigner::from_secret(seed) {
            Ok(s) => return s,
            Err(_) => seed = sha256(&seed).0,
        }
    }
}

/// The genesis entries of the first `n` load-test Ethereum accounts:
/// `member`, and `deployer` for account 0, no ether (the bench network
/// is gas-free).
pub fn genesis_accounts(n: u32) -> Vec<palisade_genesis::GenesisEvmAccount> {
    use palisade_types::Role;
    (0..n)
        .map(|i| palisade_genesis::GenesisEvmAccount {
            address: palisade_types::EvmAddress(bench_eth_signer(i).address().0 .0),
            balance: 0,
            roles: if i == 0 {
                vec![Role::Member, Role::Deployer]
            } else {
                vec![Role::Member]
            },
        })
        .collect()
}

fn transfer_data(to: Address, amount: u128) -> Vec<u8> {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&TRANSFER_SELECTOR);
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(to.as_slice());
    data.extend_from_slice(&[0u8; 16]);
    data.extend_from_slice(&amount.to_be_bytes());
    data
}

fn quantity(v: &serde_json::Value) -> Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow!("not a quantity: {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| anyhow!("{s}: {e}"))
}

/// A signed transaction: its hash (keccak256 of the bytes) and hex.
pub type Signed = (Hash, String);

fn signed(raw: Vec<u8>) -> Signed {
    (
        Hash(palisade_types::keccak256(&raw)),
        format!("0x{}", hex::encode(raw)),
    )
}

/// The accounts, their EVM nonces, the chain id and the deployed token:
/// what signing the measured load needs.
#[derive(Debug)]
pub struct Erc20Setup {
    pub signers: Vec<EthSigner>,
    pub nonces: Vec<u64>,
    pub chain_id: u64,
    pub token: Address,
}

async fn nonces(client: &HttpClient, signers: &[EthSigner]) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(signers.len());
    for chunk in signers.chunks(BATCH) {
        let mut b = BatchRequestBuilder::new();
        for s in chunk {
            b.insert(
                "eth_getTransactionCount",
                rpc_params![s.address().to_string(), "latest"],
            )
            .map_err(|e| anyhow!("{e}"))?;
        }
        let resp = client
            .batch_request::<serde_json::Value>(b)
            .await
            .map_err(|e| anyhow!("eth_getTransactionCount: {e}"))?;
        for r in resp.into_iter() {
            let v = r.map_err(|e| anyhow!("eth_getTransactionCount: {}", e.message()))?;
            out.push(quantity(&v)?);
        }
    }
    Ok(out)
}

/// Sends `txs` (in batches) and waits until every sender in `expect` has
/// reached its nonce.
async fn send_and_wait(
    client: &HttpClient,
    txs: &[Signed],
    expect: &[(usize, u64)],
    signers: &[EthSigner],
) -> Result<()> {
    for chunk in txs.chunks(BATCH) {
        let mut b = BatchRequestBuilder::new();
        for (_, hex) in chunk {
            b.insert("eth_sendRawTransaction", rpc_params![hex])
                .map_err(|e| anyhow!("{e}"))?;
        }
        let resp = client
            .batch_request::<serde_json::Value>(b)
            .await
            .map_err(|e| anyhow!("eth_sendRawTransaction: {e}"))?;
        for r in resp.into_iter() {
            r.map_err(|e| {
                anyhow!(
                    "eth_sendRawTransaction refused a set-up transaction: {} {} (start the \
                     network with `palisade testnet --bench-accounts N`)",
                    e.message(),
                    e.data().map(|d| d.get()).unwrap_or_default()
                )
            })?;
        }
    }
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        let who: Vec<EthSigner> = expect.iter().map(|(i, _)| signers[*i].clone()).collect();
        let now = nonces(client, &who).await?;
        if now.iter().zip(expect).all(|(n, (_, want))| n >= want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("set-up transactions did not commit within {ROUND_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deploys the token from account 0 and gives every account tokens.
pub async fn prepare(client: &HttpClient, accounts: usize) -> Result<Erc20Setup> {
    let chain_id = quantity(
        &client
            .request::<serde_json::Value, _>("eth_chainId", rpc_params![])
            .await
            .map_err(|e| anyhow!("eth_chainId: {e}"))?,
    )?;
    eprintln!("bench: deriving {accounts} secp256k1 accounts");
    let signers: Vec<EthSigner> = (0..accounts as u32).map(bench_eth_signer).collect();
    let mut nonces_now = nonces(client, &signers).await?;
    let token = deploy_token(client, &signers, &mut nonces_now, chain_id).await?;
    let mut setup = Erc20Setup {
        signers,
        nonces: nonces_now,
        chain_id,
        token,
    };
    hand_out_tokens(client, &mut setup).await?;
    Ok(setup)
}

/// Deploys the token from `signers[0]` (at its nonce in `nonces_now`,
/// advanced) and waits for it to commit; returns its address.
async fn deploy_token(
    client: &HttpClient,
    signers: &[EthSigner],
    nonces_now: &mut [u64],
    chain_id: u64,
) -> Result<Address> {
    let token: serde_json::Value = serde_json::from_str(TOKEN_JSON).context("token JSON")?;
    let mut code = hex::decode(
        token["bytecode"]
            .as_str()
            .ok_or_else(|| anyhow!("token bytecode"))?
            .trim_start_matches("0x"),
    )?;
    // supply = 2^120: far more than every transfer of any run.
    let mut supply = [0u8; 32];
    supply[16] = 1;
    code.extend_from_slice(&supply);
    let deployer = &signers[0];
    let deploy = signed(deployer.sign_eip1559(&Eip1559 {
        chain_id,
        nonce: nonces_now[0],
        gas_limit: DEPLOY_GAS,
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
        to: None,
        value: 0,
        input: code,
    }));
    let token_address = deployer.address().create(nonces_now[0]);
    nonces_now[0] += 1;
    eprintln!("bench: deploying the token at {token_address}");
    send_and_wait(client, &[deploy], &[(0, nonces_now[0])], signers).await?;
    Ok(token_address)
}

/// Gives every account tokens from account 0, which holds them all.
async fn hand_out_tokens(client: &HttpClient, setup: &mut Erc20Setup) -> Result<()> {
    let accounts = setup.signers.len();
    let signers = &setup.signers;
    let nonces_now = &mut setup.nonces;
    let (chain_id, token_address) = (setup.chain_id, setup.token);
    // Hand tokens out along a tree: each holder gives the next FANOUT
    // accounts enough for their own subtrees and the run.
    let mut holders = vec![0usize];
    let mut next = 1usize;
    let mut share: u128 = 1 << 112;
    while next < accounts {
        let mut txs = Vec::new();
        let mut expect = Vec::new();
        let mut new_holders = Vec::new();
        for &h in &holders {
            let start = nonces_now[h];
            for _ in 0..FANOUT {
                if next >= accounts {
                    break;
                }
                let to = signers[next].address();
                txs.push(signed(signers[h].sign_eip1559(&Eip1559 {
                    chain_id,
                    nonce: nonces_now[h],
                    gas_limit: TRANSFER_GAS,
                    max_fee_per_gas: 0,
                    max_priority_fee_per_gas: 0,
                    to: Some(token_address),
                    value: 0,
                    input: transfer_data(to, share),
                })));
                nonces_now[h] += 1;
                new_holders.push(next);
                next += 1;
            }
            if nonces_now[h] > start {
                expect.push((h, nonces_now[h]));
            }
        }
        eprintln!(
            "bench: {} holders hand tokens to {} accounts",
            holders.len(),
            new_holders.len()
        );
        send_and_wait(client, &txs, &expect, signers).await?;
        holders.extend(new_holders);
        share /= (FANOUT as u128) * 2;
    }
    Ok(())
}

/// The measured load: `total` transfers of 1 token, account `s` paying
/// account `s + 1`, round robin over the accounts.
pub fn sign_load(setup: &Erc20Setup, total: usize) -> Vec<Signed> {
    let n = setup.signers.len();
    (0..total)
        .map(|j| {
            let s = j % n;
            let to = setup.signers[(s + 1) % n].address();
            signed(setup.signers[s].sign_eip1559(&Eip1559 {
                chain_id: setup.chain_id,
                nonce: setup.nonces[s] + (j / n) as u64,
                gas_limit: TRANSFER_GAS,
                max_fee_per_gas: 0,
                max_priority_fee_per_gas: 0,
                to: Some(setup.token),
                value: 0,
                input: transfer_data(to, 1),
            }))
        })
        .collect()
}

/// How many of `sample` committed load transactions failed (a transfer
/// that reverted was committed but moved nothing: the report must say so).
pub async fn failed_receipts(client: &HttpClient, sample: &[Hash]) -> Result<usize> {
    let mut failed = 0;
    for chunk in sample.chunks(BATCH) {
        let mut b = BatchRequestBuilder::new();
        for h in chunk {
            b.insert("eth_getTransactionReceipt", rpc_params![h.to_string()])
                .map_err(|e| anyhow!("{e}"))?;
        }
        let resp = client
            .batch_request::<serde_json::Value>(b)
            .await
            .map_err(|e| anyhow!("eth_getTransactionReceipt: {e}"))?;
        for r in resp.into_iter() {
            let v = r.map_err(|e| anyhow!("eth_getTransactionReceipt: {}", e.message()))?;
            if v["status"] != "0x1" {
                failed += 1;
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_calls_are_abi_encoded() {
        let to = Address::repeat_byte(0x11);
        let d = transfer_data(to, 258);
        assert_eq!(d.len(), 68);
        assert_eq!(d[..4], TRANSFER_SELECTOR);
        assert_eq!(&d[16..36], to.as_slice());
        assert_eq!(d[66..], [1, 2]);
        assert!(d[36..66].iter().all(|b| *b == 0));
    }

    #[test]
    fn bench_accounts_are_fixed_and_distinct() {
        let a = bench_eth_signer(0).address();
        assert_eq!(a, bench_eth_signer(0).address());
        assert_ne!(a, bench_eth_signer(1).address());
        let g = genesis_accounts(3);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].address.0, a.0 .0);
        assert!(g[0].roles.contains(&palisade_types::Role::Deployer));
        assert!(!g[1].roles.contains(&palisade_types::Role::Deployer));
    }
}
