#!/usr/bin/env python3
"""A Palisade client written only from docs/spec.md and docs/rpc.md.

It signs a transfer with a standard ed25519 library, submits it over
JSON-RPC, waits for the receipt and reads the balances back. The end-to-end
test `spec_client_in_python_submits_a_transfer` runs it against a real
node: if the documents were incomplete or wrong, this could not work.

Usage: spec_client.py RPC_ADDR SIGNER_SEED_HEX RECIPIENT_HEX AMOUNT
"""

import hashlib
import json
import struct
import sys
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def rpc(addr, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(
        "http://" + addr, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=70) as resp:
        answer = json.load(resp)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


# spec.md section 1: borsh.
def u32(n):
    return struct.pack("<I", n)


def u64(n):
    return struct.pack("<Q", n)


def u128(n):
    return n.to_bytes(16, "little")


def string(s):
    b = s.encode()
    return u32(len(b)) + b


def unhex(s):
    assert s.startswith("0x"), s
    return bytes.fromhex(s[2:])


def main():
    addr, seed_hex, to_hex, amount = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    key = Ed25519PrivateKey.from_private_bytes(unhex(seed_hex))
    signer = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    to = unhex(to_hex)

    status = rpc(addr, "system_status", [])
    chain_id = status["chainId"]
    account = rpc(addr, "state_getAccount", ["0x" + signer.hex()])
    nonce = account["nonce"]
    before = int(rpc(addr, "state_getAccount", [to_hex])["balance"])

    # spec.md section 4: Transaction { chain_id, nonce, signer, action }
    # with Action tag 0 = Transfer { to, amount }.
    tx = string(chain_id) + u64(nonce) + signer + bytes([0]) + to + u128(amount)
    # spec.md section 3: signing bytes.
    signing_bytes = string("palisade/tx/v1") + string(chain_id) + tx
    signature = key.sign(signing_bytes)
    signed = tx + signature
    tx_hash = "0x" + hashlib.sha256(signed).hexdigest()

    receipt = rpc(addr, "tx_submitAndWait", ["0x" + signed.hex(), 30000])
    assert receipt["txHash"] == tx_hash, (receipt["txHash"], tx_hash)
    assert receipt["success"], receipt
    again = rpc(addr, "tx_getReceipt", [tx_hash])
    assert again == receipt, (again, receipt)
    after = int(rpc(addr, "state_getAccount", [to_hex])["balance"])
    assert after == before + amount, (before, after)
    block = rpc(addr, "chain_getBlock", [receipt["height"]])
    assert block["block"]["txs"][receipt["index"]]["signature"] == "0x" + signature.hex()
    print(f"ok: {tx_hash} committed in block {receipt['height']}, balance {before} -> {after}")


if __name__ == "__main__":
    main()
