//! Signing EIP-1559 transactions with libsecp256k1: what a load generator
//! needs to pre-sign many transactions fast (wallets and tests use their
//! own libraries).

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, U256};
use secp256k1::{Message, PublicKey, Secp256k1, SecretKey, SignOnly};

use crate::EthTxError;

/// The fields of an EIP-1559 transaction without an access list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eip1559 {
    pub chain_id: u64,
    pub nonce: u64,
    pub gas_limit: u64,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    /// `None` creates a contract.
    pub to: Option<Address>,
    pub value: u128,
    pub input: Vec<u8>,
}

impl Eip1559 {
    /// A plain value transfer at no fee: the 21,000 gas a transfer to an
    /// account without code takes, and zero fees, as on the default
    /// gas-free network.
    pub fn transfer(chain_id: u64, nonce: u64, to: Address, value: u128) -> Eip1559 {
        Eip1559 {
            chain_id,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 0,
            max_priority_fee_per_gas: 0,
            to: Some(to),
            value,
            input: Vec::new(),
        }
    }
}

/// A secp256k1 key that signs transactions.
#[derive(Clone)]
pub struct EthSigner {
    secret: SecretKey,
    address: Address,
    ctx: Secp256k1<SignOnly>,
}

impl std::fmt::Debug for EthSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EthSigner({})", self.address)
    }
}

impl EthSigner {
    /// The key whose secret is `secret` (a scalar below the group order,
    /// not zero).
    pub fn from_secret(secret: [u8; 32]) -> Result<EthSigner, EthTxError> {
        let secret = SecretKey::from_byte_array(secret)
            .map_err(|_| EthTxError::Malformed("not a secp256k1 secret key".into()))?;
        let ctx = Secp256k1::signing_only();
        let public = PublicKey::from_secret_key(&ctx, &secret).serialize_uncompressed();
        let address = Address::from_slice(&keccak256(&public[1..])[12..]);
        Ok(EthSigner {
            secret,
            address,
            ctx,
        })
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// The signed transaction's EIP-2718 bytes (libsecp256k1 signs with a
    /// low `s`, as EIP-2 requires).
    pub fn sign_eip1559(&self, tx: &Eip1559) -> Vec<u8> {
        let unsigned = TxEip1559 {
            chain_id: tx.chain_id,
            nonce: tx.nonce,
            gas_limit: tx.gas_limit,
            max_fee_per_gas: tx.max_fee_per_gas,
            max_priority_fee_per_gas: tx.max_priority_fee_per_gas,
            to: tx.to.map_or(TxKind::Create, TxKind::Call),
            value: U256::from(tx.value),
            input: Bytes::from(tx.input.clone()),
            access_list: Default::default(),
        };
        let digest = unsigned.signature_hash();
        let (id, rs) = self
            .ctx
            .sign_ecdsa_recoverable(Message::from_digest(digest.0), &self.secret)
            .serialize_compact();
        let odd = i32::from(id) == 1;
        let sig = Signature::from_bytes_and_parity(&rs, odd);
        unsigned.into_signed(sig).encoded_2718()
    }
}
