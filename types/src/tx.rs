use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_KEY_LEN, MAX_NAMESPACE_LEN, MAX_TX_BYTES, MAX_VALUE_LEN};
use crate::{
    signing_bytes, Address, BoundedBytes, ChainId, Domain, EvmAddress, FileName, FileReaders, Hash,
    Keypair, MediaType, PublicKey, Signature, SignatureError, Wire,
};

/// Token amount in the chain's smallest unit.
pub type Amount = u128;
/// Key-value namespace (at most 64 bytes).
pub type Namespace = BoundedBytes<MAX_NAMESPACE_LEN>;
/// Key within a namespace (at most 256 bytes).
pub type DataKey = BoundedBytes<MAX_KEY_LEN>;
/// Stored value (at most 64 KiB on the wire; the chain parameter may be lower).
pub type DataValue = BoundedBytes<MAX_VALUE_LEN>;
/// EVM call data or contract creation code (bounded by the transaction's
/// size; `max_tx_bytes` and EIP-3860's init code limit apply on top).
pub type EvmData = BoundedBytes<MAX_TX_BYTES>;

/// A permission an account can hold. The borsh tag is the variant index.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Role {
    /// Manages roles, validators and chain parameters.
    Admin = 0,
    /// May submit validator-set changes for the validators it operates.
    ValidatorOperator = 1,
    /// May transact (transfer, burn own funds, write data).
    Member = 2,
    /// May mint new tokens.
    Minter = 3,
    /// May create EVM contracts (directly, or through a contract that runs
    /// CREATE or CREATE2), beside `member`.
    Deployer = 4,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::ValidatorOperator,
        Role::Member,
        Role::Minter,
        Role::Deployer,
    ];

    /// The roles a 20-byte EVM address may hold: it can only send EVM
    /// transactions, so the roles of native governance stay with native
    /// (ed25519) accounts.
    pub const EVM: [Role; 2] = [Role::Member, Role::Deployer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ValidatorOperator => "validator_operator",
            Role::Member => "member",
            Role::Minter => "minter",
            Role::Deployer => "deployer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s || r.as_str().replace('_', "-") == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (expected admin, validator_operator, member, minter or deployer)")
            })
    }
}

/// A chain parameter an admin may change with [`Action::SetParam`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case", tag = "name", content = "value")]
pub enum Param {
    /// Most transactions per block.
    MaxBlockTxs(u32),
    /// Largest encoded block, in bytes.
    MaxBlockBytes(u32),
    /// Largest encoded transaction, in bytes.
    MaxTxBytes(u32),
    /// Largest key-value value, in bytes.
    MaxValueBytes(u32),
    /// Heights between a validator-set change's block and the height it takes effect.
    ValidatorUpdateDelay(u64),
    /// Most EVM gas per block.
    MaxBlockGas(u64),
    /// Least EVM gas price, in wei (the smallest unit) per gas.
    MinGasPrice(#[serde(with = "crate::hex_serde::amount_str")] u128),
    /// Most bytes of published files one account may have on record.
    FileQuotaBytes(u64),
}

/// What a transaction does. The borsh tag (one byte) is the variant index;
/// new actions are only ever appended.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Action {
    /// Move `amount` from the signer to `to`.
    Transfer {
        to: Address,
        #[serde(with = "crate::hex_serde::amount_str")]
        amount: Amount,
    },
    /// Create `amount` new tokens in `to` (role `minter`).
    Mint {
        to: Address,
        #[serde(with = "crate::hex_serde::amount_str")]
        amount: Amount,
    },
    /// Destroy `amount` of the signer's own tokens.
    Burn {
        #[serde(with = "crate::hex_serde::amount_str")]
        amount: Amount,
    },
    /// Write `value` under `namespace`/`key`.
    Put {
        namespace: Namespace,
        key: DataKey,
        value: DataValue,
    },
    /// Remove `namespace`/`key`.
    Delete { namespace: Namespace, key: DataKey },
    /// Give `account` the role `role` (admin).
    GrantRole { account: Address, role: Role },
    /// Take the role `role` from `account` (admin).
    RevokeRole { account: Address, role: Role },
    /// Add a validator with its consensus key, libp2p node key and voting power.
    AddValidator {
        consensus_key: PublicKey,
        node_key: PublicKey,
        power: u64,
    },
    /// Remove the validator with this consensus key.
    RemoveValidator { consensus_key: PublicKey },
    /// Change the voting power of the validator with this consensus key.
    SetValidatorPower {
        consensus_key: PublicKey,
        power: u64,
    },
    /// Change a chain parameter (admin).
    SetParam { param: Param },
    /// Call the EVM contract (or pay the address) `to` as the signer's EVM
    /// address, sending `value` (role `member`; creations inside need
    /// `deployer`).
    EvmCall {
        to: EvmAddress,
        #[serde(with = "crate::hex_serde::amount_str")]
        value: Amount,
        data: EvmData,
        gas_limit: u64,
    },
    /// Create an EVM contract running `code` (its init code) with `value`
    /// (roles `member` and `deployer`).
    EvmCreate {
        #[serde(with = "crate::hex_serde::amount_str")]
        value: Amount,
        code: EvmData,
        gas_limit: u64,
    },
    /// Give a 20-byte EVM address the role `role` (admin; `member` or
    /// `deployer`). The EVM address of a native account names that account.
    GrantEvmRole { address: EvmAddress, role: Role },
    /// Take the role `role` from a 20-byte EVM address (admin).
    RevokeEvmRole { address: EvmAddress, role: Role },
    /// Record a file (role `member`): its BLAKE3 `root` and `size`, a name
    /// and media type to show, who may read it, and how many complete
    /// copies the publisher keeps serving it until (see docs/files.md).
    /// Counts `size` against the signer's file quota.
    FilePublish {
        root: Hash,
        size: u64,
        name: FileName,
        media_type: MediaType,
        readers: FileReaders,
        min_replicas: u16,
    },
    /// Withdraw a published file (its publisher or an admin): honest nodes
    /// stop serving it and may delete its bytes; the record stays, marked,
    /// and its size leaves the publisher's quota.
    FileUnpublish { root: Hash },
}

impl Action {
    /// The gas limit of an EVM action (`EvmCall`, `EvmCreate`); none for
    /// the others.
    pub fn evm_gas_limit(&self) -> Option<u64> {
        match self {
            Action::EvmCall { gas_limit, .. } | Action::EvmCreate { gas_limit, .. } => {
                Some(*gas_limit)
            }
            _ => None,
        }
    }
}

/// An unsigned transaction.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Transaction {
    pub chain_id: ChainId,
    /// Must equal the signer's account nonce at execution: each nonce is used
    /// exactly once, in order.
    pub nonce: u64,
    pub signer: Address,
    pub action: Action,
}

/// A transaction with the signer's signature over its signing bytes.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl Transaction {
    /// `signing_bytes(Domain::Transaction, chain_id, tx)`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(Domain::Transaction, &self.chain_id, self)
    }

    /// Signs with `key`. The caller keeps `signer` equal to `key.address()`;
    /// otherwise the result simply fails [`SignedTransaction::verify`].
    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    /// The transaction id: SHA-256 of the canonical encoding of the signed
    /// transaction.
    pub fn hash(&self) -> Hash {
        crate::hash_encoding(self)
    }

    /// Checks the signature against the signer's key. Chain id, nonce and
    /// permissions are the runtime's to check.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.tx
            .signer
            .public_key()
            .verify(&self.tx.signing_bytes(), &self.signature)
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        crate::encoded_len(self)
    }
}

impl Wire for Transaction {
    const NAME: &'static str = "transaction";
    const MAX_ENCODED_LEN: usize = MAX_TX_BYTES - 64;
}

impl Wire for SignedTransaction {
    const NAME: &'static str = "signed transaction";
    const MAX_ENCODED_LEN: usize = MAX_TX_BYTES;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &Keypair) -> SignedTransaction {
        Transaction {
            chain_id: ChainId::new("test").unwrap(),
            nonce: 3,
            signer: key.address(),
            action: Action::Transfer {
                to: Address([2u8; 32]),
                amount: 10,
            },
        }
        .sign(key)
    }

    #[test]
    fn signed_tx_verifies_and_tamper_fails() {
        let key = Keypair::from_seed([1u8; 32]);
        let stx = sample(&key);
        assert!(stx.verify().is_ok());

        let mut other_nonce = stx.clone();
        other_nonce.tx.nonce = 4;
        assert!(other_nonce.verify().is_err());

        let mut other_chain = stx.clone();
        other_chain.tx.chain_id = ChainId::new("test2").unwrap();
        assert!(other_chain.verify().is_err());

        let mut other_signer = stx;
        other_signer.tx.signer = Keypair::from_seed([9u8; 32]).address();
        assert!(other_signer.verify().is_err());
    }

    #[test]
    fn tx_signature_is_not_a_vote_signature() {
        let key = Keypair::from_seed([1u8; 32]);
        let stx = sample(&key);
        let as_vote = signing_bytes(Domain::Vote, &stx.tx.chain_id, &stx.tx);
        assert!(key.public_key().verify(&as_vote, &stx.signature).is_err());
    }

    #[test]
    fn unknown_action_tag_is_rejected() {
        let key = Keypair::from_seed([1u8; 32]);
        let mut enc = crate::encode(&sample(&key));
        // chain id "test": 4 (len) + 4 bytes; nonce 8; signer 32 -> action tag at 48.
        assert_eq!(enc[48], 0);
        enc[48] = 200;
        assert!(crate::decode::<SignedTransaction>(&enc).is_err());
    }

    #[test]
    fn role_text_forms() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert_eq!(
            "validator-operator".parse::<Role>().unwrap(),
            Role::ValidatorOperator
        );
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn json_shape_is_readable() {
        let action = Action::Transfer {
            to: Address([0xab; 32]),
            amount: 5,
        };
        let json = serde_json::to_value(&action).unwrap();
        assert_eq!(json["type"], "transfer");
        assert_eq!(json["to"], format!("0x{}", "ab".repeat(32)));
        assert_eq!(json["amount"], "5");
        let back: Action = serde_json::from_value(json).unwrap();
        assert_eq!(back, action);
    }
}
