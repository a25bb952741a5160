use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEip4844, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use k256::ecdsa::SigningKey;
use palisade_ethtx::{decode, recover_batch, reference_sender, Backend, EthTxError, TxType};

/// EIP-155's own example: private key 0x4646…46, nonce 9, 20 gwei, 21,000
/// gas, to 0x3535…35, 1 ether, chain 1.
const EIP155_RAW: &str = "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";
const EIP155_SENDER: &str = "9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f";

fn key(n: u8) -> SigningKey {
    SigningKey::from_slice(&[n; 32]).unwrap()
}

fn sign<T: SignableTransaction<Signature>>(tx: T, key: &SigningKey) -> alloy_consensus::Signed<T> {
    let hash = tx.signature_hash();
    let (sig, id) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
    let sig = Signature::from_signature_and_parity(sig, id.is_y_odd());
    tx.into_signed(sig)
}

fn address_of(key: &SigningKey) -> Address {
    let point = key.verifying_key().to_encoded_point(false);
    Address::from_slice(&alloy_primitives::keccak256(&point.as_bytes()[1..])[12..])
}

fn eip1559(chain_id: u64, nonce: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 100_000,
        max_fee_per_gas: 7,
        max_priority_fee_per_gas: 3,
        to: TxKind::Call(Address::repeat_byte(0x35)),
        value: U256::from(1_000u64),
        input: Bytes::from(vec![0xa9, 0x05, 0x9c, 0xbb]),
        access_list: Default::default(),
    }
}

fn raw(env: TxEnvelope) -> Vec<u8> {
    env.encoded_2718()
}

#[test]
fn the_eip155_example_decodes_to_its_documented_sender() {
    let raw = hex::decode(EIP155_RAW).unwrap();
    let tx = decode(&raw, 1).unwrap();
    assert_eq!(tx.tx_type, TxType::Legacy);
    assert_eq!((tx.nonce, tx.gas_limit), (9, 21_000));
    assert_eq!(tx.max_fee_per_gas, 20_000_000_000);
    assert_eq!(tx.to, Some(Address::repeat_byte(0x35)));
    assert_eq!(tx.value, U256::from(1_000_000_000_000_000_000u128));
    assert_eq!(tx.hash, alloy_primitives::keccak256(&raw));
    let want: Address = EIP155_SENDER.parse().unwrap();
    for backend in [Backend::Libsecp256k1, Backend::K256] {
        assert_eq!(tx.recover_sender(backend).unwrap(), want, "{backend:?}");
    }
    assert_eq!(reference_sender(&raw).unwrap(), want);
    // The key of the example is 0x46…46.
    assert_eq!(address_of(&key(0x46)), want);
    assert_eq!(
        decode(&raw, 2).unwrap_err(),
        EthTxError::WrongChain { got: 1, want: 2 }
    );
}

#[test]
fn each_supported_type_round_trips_with_its_sender() {
    let k = key(7);
    let legacy = TxLegacy {
        chain_id: Some(42),
        nonce: 1,
        gas_price: 5,
        gas_limit: 21_000,
        to: TxKind::Create,
        value: U256::ZERO,
        input: Bytes::from(vec![0x60, 0x00]),
    };
    let access = TxEip2930 {
        chain_id: 42,
        nonce: 2,
        gas_price: 5,
        gas_limit: 50_000,
        to: TxKind::Call(Address::repeat_byte(1)),
        value: U256::from(9u64),
        input: Bytes::new(),
        access_list: alloy_eips::eip2930::AccessList(vec![alloy_eips::eip2930::AccessListItem {
            address: Address::repeat_byte(2),
            storage_keys: vec![B256::repeat_byte(3)],
        }]),
    };
    let cases: Vec<(TxEnvelope, TxType)> = vec![
        (sign(legacy, &k).into(), TxType::Legacy),
        (sign(access, &k).into(), TxType::Eip2930),
        (sign(eip1559(42, 3), &k).into(), TxType::Eip1559),
    ];
    for (env, ty) in cases {
        let bytes = raw(env);
        let tx = decode(&bytes, 42).unwrap();
        assert_eq!(tx.tx_type, ty);
        assert_eq!(tx.hash, alloy_primitives::keccak256(&bytes));
        for backend in [Backend::Libsecp256k1, Backend::K256] {
            assert_eq!(tx.recover_sender(backend).unwrap(), address_of(&k));
        }
    }
    let tx = decode(&raw(sign(eip1559(42, 3), &k).into()), 42).unwrap();
    assert_eq!(tx.effective_gas_price(), 3);
    assert_eq!(tx.max_priority_fee_per_gas, Some(3));
    assert_eq!(tx.input, vec![0xa9, 0x05, 0x9c, 0xbb]);
}

#[test]
fn refusals() {
    let k = key(9);
    // Pre-EIP-155: a legacy transaction without a chain id.
    let unprotected = TxLegacy {
        chain_id: None,
        nonce: 0,
        gas_price: 1,
        gas_limit: 21_000,
        to: TxKind::Call(Address::ZERO),
        value: U256::ZERO,
        input: Bytes::new(),
    };
    assert_eq!(
        decode(&raw(sign(unprotected, &k).into()), 42).unwrap_err(),
        EthTxError::NoChainId
    );
    // A blob transaction (type 3).
    let blob = TxEip4844 {
        chain_id: 42,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        to: Address::ZERO,
        value: U256::ZERO,
        access_list: Default::default(),
        blob_versioned_hashes: vec![B256::repeat_byte(1)],
        max_fee_per_blob_gas: 1,
        input: Bytes::new(),
    };
    let blob: alloy_consensus::TxEip4844Variant =
        alloy_consensus::TxEip4844Variant::TxEip4844(blob);
    let env: TxEnvelope = sign(blob, &k).into();
    assert_eq!(
        decode(&raw(env), 42).unwrap_err(),
        EthTxError::UnsupportedType(3)
    );
    // The high-s twin of a valid signature.
    let signed = sign(eip1559(42, 0), &k);
    let sig = *signed.signature();
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let twin = Signature::new(sig.r(), n - sig.s(), !sig.v());
    let env: TxEnvelope = eip1559(42, 0).into_signed(twin).into();
    assert_eq!(decode(&raw(env), 42).unwrap_err(), EthTxError::HighS);
    // Handed a high-s signature directly, both backends refuse it alike.
    let mut tx = decode(&raw(signed.clone().into()), 42).unwrap();
    tx.signature[32..].copy_from_slice(&(n - sig.s()).to_be_bytes::<32>());
    tx.y_parity = !tx.y_parity;
    for backend in [Backend::Libsecp256k1, Backend::K256] {
        assert_eq!(tx.recover_sender(backend).unwrap_err(), EthTxError::HighS);
    }
    // A tip above the fee cap (EIP-1559 forbids it).
    let greedy = TxEip1559 {
        max_priority_fee_per_gas: 8,
        ..eip1559(42, 0)
    };
    assert_eq!(
        decode(&raw(sign(greedy, &k).into()), 42).unwrap_err(),
        EthTxError::TipAboveFeeCap { tip: 8, cap: 7 }
    );
    // Trailing bytes, truncation, garbage, oversize.
    let good = raw(signed.into());
    let mut long = good.clone();
    long.push(0);
    for bad in [long, good[..good.len() - 1].to_vec(), vec![0x02], vec![]] {
        assert!(
            matches!(decode(&bad, 42), Err(EthTxError::Malformed(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        decode(&vec![0u8; 200_000], 42).unwrap_err(),
        EthTxError::TooLarge(200_000)
    );
}

#[test]
fn a_batch_recovers_exactly_what_single_recovery_does() {
    let mut txs = Vec::new();
    for i in 0..300u64 {
        let k = key(u8::try_from(i % 50 + 1).unwrap());
        let mut tx = decode(&raw(sign(eip1559(42, i), &k).into()), 42).unwrap();
        if i % 7 == 0 {
            // Another message: recovers some other address (or none).
            tx.signing_hash = B256::repeat_byte(u8::try_from(i % 256).unwrap());
        }
        txs.push(tx);
    }
    let one: Vec<_> = txs
        .iter()
        .map(|t| t.recover_sender(Backend::Libsecp256k1))
        .collect();
    for threads in [1, 2, 4, 7] {
        assert_eq!(recover_batch(&txs, threads), one, "{threads} threads");
    }
    for (i, (t, got)) in txs.iter().zip(&one).enumerate() {
        let want = t.recover_sender(Backend::K256);
        assert_eq!(got, &want, "backends disagree on tx {i}");
        if i % 7 != 0 {
            let k = key(u8::try_from(i % 50 + 1).unwrap());
            assert_eq!(got.as_ref().unwrap(), &address_of(&k));
        }
    }
}

/// The load generator's signer gives the bytes alloy and k256 give (both
/// sign with RFC 6979 nonces), and Palisade decodes and recovers them.
#[test]
fn eth_signer_signs_as_alloy_and_k256_do() {
    use palisade_ethtx::{Eip1559, EthSigner};
    let signer = EthSigner::from_secret([7; 32]).unwrap();
    assert_eq!(signer.address(), address_of(&key(7)));
    let fields = eip1559(1337, 4);
    let raw = signer.sign_eip1559(&Eip1559 {
        chain_id: fields.chain_id,
        nonce: fields.nonce,
        gas_limit: fields.gas_limit,
        max_fee_per_gas: fields.max_fee_per_gas,
        max_priority_fee_per_gas: fields.max_priority_fee_per_gas,
        to: Some(Address::repeat_byte(0x35)),
        value: 1_000,
        input: vec![0xa9, 0x05, 0x9c, 0xbb],
    });
    let reference = TxEnvelope::from(sign(fields, &key(7))).encoded_2718();
    assert_eq!(hex::encode(&raw), hex::encode(&reference));
    let tx = decode(&raw, 1337).unwrap();
    assert_eq!(tx.nonce, 4);
    for backend in [Backend::Libsecp256k1, Backend::K256] {
        assert_eq!(tx.recover_sender(backend).unwrap(), signer.address());
    }
    assert!(EthSigner::from_secret([0; 32]).is_err());
    assert!(EthSigner::from_secret([0xff; 32]).is_err());
}
