//! The ERC-20 of `tests/fixtures/Token.sol` (compiled by solc-js into
//! `Token.json`) and the ABI encoding of its calls, for tests and benches.

use palisade_types::EvmAddress;
use revm::primitives::keccak256;

const TOKEN_JSON: &str = include_str!("../fixtures/Token.json");

/// The first 4 bytes of keccak256 of a function or error signature.
pub fn selector(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

fn word_u128(v: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}

fn word_address(a: &EvmAddress) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_bytes());
    w
}

/// Creation code deploying a token whose `supply` goes to the deployer.
pub fn creation_code(supply: u128) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_str(TOKEN_JSON).expect("Token.json");
    let hex_code = json["bytecode"].as_str().expect("bytecode");
    let mut code = hex::decode(hex_code.trim_start_matches("0x")).expect("bytecode hex");
    code.extend_from_slice(&word_u128(supply));
    code
}

pub fn transfer(to: &EvmAddress, value: u128) -> Vec<u8> {
    [
        selector("transfer(address,uint256)").as_slice(),
        &word_address(to),
        &word_u128(value),
    ]
    .concat()
}

pub fn balance_of(who: &EvmAddress) -> Vec<u8> {
    [
        selector("balanceOf(address)").as_slice(),
        &word_address(who),
    ]
    .concat()
}

/// A returned uint256 that fits in u128.
pub fn decode_u128(out: &[u8]) -> u128 {
    assert_eq!(out.len(), 32, "not one word: {out:?}");
    assert!(out[..16].iter().all(|b| *b == 0), "over u128");
    u128::from_be_bytes(out[16..].try_into().expect("16 bytes"))
}
