#!/usr/bin/env python3
"""web3.py and eth-account against a Palisade node, as a Python dapp would.

With the standard development accounts (test mnemonic accounts 0 and 1,
which `palisade dev` funds and grants `member` and `deployer`): deploys the
solc-js-compiled ERC-20 with an EIP-1559 transaction signed locally by
eth-account (fees as web3.py picks them), calls it, transfers tokens with
an explicit type-2 transaction, decodes a custom error and a revert reason
from eth_call and eth_estimateGas, pays value through web3.py's signing
middleware, reads the transactions, receipts and blocks back, sees a failed
transaction's status 0, and is refused for an address without `member`.

Prints what it saw as one JSON object; tests/tests/it/eth_web3py.rs checks
it. Exits non-zero at the first failed check (checks are explicit, not
`assert`, so `python -O` cannot remove them).

usage: python web3_flow.py RPC_URL CONTRACTS_JSON KEY0 KEY1
       (CONTRACTS_JSON: tests/eth/compile.mjs's output with `Token`)
"""

import json
import sys
from importlib.metadata import version

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.utils.address import get_create_address

CHAIN_ID = 1337
SUPPLY = 1000
RECEIPT_TIMEOUT_S = 30


class CheckFailed(Exception):
    pass


def check(ok, what, got=None):
    if not ok:
        raise CheckFailed(f"{what} (got {got!r})" if got is not None else what)


def check_eq(got, want, what):
    check(got == want, f"{what}: expected {want!r}", got)


def main(url, contracts_json, key0, key1):
    out = {"web3": version("web3"), "ethAccount": version("eth-account")}
    with open(contracts_json, encoding="utf-8") as f:
        token_art = json.load(f)["Token"]
    abi, bytecode = token_art["abi"], token_art["bytecode"]

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    check(w3.is_connected(), f"no answer from {url}")
    out["chainId"] = w3.eth.chain_id
    check_eq(out["chainId"], CHAIN_ID, "eth_chainId")
    check(w3.eth.block_number >= 1, "eth_blockNumber", w3.eth.block_number)

    a0 = Account.from_key(key0)
    a1 = Account.from_key(key1)
    # The standard test mnemonic's accounts 0 and 1.
    check_eq(a0.address, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "account 0")
    check_eq(a1.address, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "account 1")
    check(w3.eth.get_balance(a0.address) > 10**18, "account 0 is funded",
          w3.eth.get_balance(a0.address))
    nonce0 = w3.eth.get_transaction_count(a0.address, "pending")
    nonce1 = w3.eth.get_transaction_count(a1.address, "pending")
    out["gasPrice"] = w3.eth.gas_price
    out["maxPriorityFeePerGas"] = w3.eth.max_priority_fee
    out["baseFeePerGas"] = w3.eth.get_block("latest")["baseFeePerGas"]

    def send(account, tx):
        signed = account.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        check_eq(tx_hash, signed.hash, "eth_sendRawTransaction's hash")
        return w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.1
        )

    # --- Deploy: web3.py fills gas, chain id and EIP-1559 fees itself. ---
    Token = w3.eth.contract(abi=abi, bytecode=bytecode)
    deploy_tx = Token.constructor(SUPPLY).build_transaction(
        {"from": a0.address, "nonce": nonce0}
    )
    check("maxFeePerGas" in deploy_tx and "gasPrice" not in deploy_tx,
          "web3.py's default transaction is EIP-1559", deploy_tx)
    out["defaultMaxFeePerGas"] = deploy_tx["maxFeePerGas"]
    out["defaultMaxPriorityFeePerGas"] = deploy_tx["maxPriorityFeePerGas"]
    check_eq(deploy_tx["chainId"], CHAIN_ID, "filled chainId")
    receipt = send(a0, deploy_tx)
    out["deployStatus"] = receipt["status"]
    out["deployType"] = receipt["type"]
    check_eq(receipt["status"], 1, "deployment status")
    check_eq(receipt["type"], 2, "deployment receipt type")
    expected = get_create_address(a0.address, nonce0)
    out["tokenAddress"] = receipt["contractAddress"]
    check_eq(receipt["contractAddress"], expected, "contractAddress (CREATE)")
    check(receipt["to"] is None, "a creation receipt's to is null", receipt["to"])
    dtx = w3.eth.get_transaction(receipt["transactionHash"])
    check(dtx["to"] is None, "a creation's to is null", dtx["to"])
    check_eq(dtx["type"], 2, "deployment transaction type")
    check_eq(dtx["input"].to_0x_hex(), bytecode + f"{SUPPLY:064x}", "deployment input")
    code = w3.eth.get_code(expected)
    check_eq(code.to_0x_hex(), token_art["deployedBytecode"], "eth_getCode")
    out["codeLength"] = len(code)

    token = w3.eth.contract(address=expected, abi=abi)
    out["name"] = token.functions.name().call()
    out["totalSupply"] = token.functions.totalSupply().call()
    check_eq(out["totalSupply"], SUPPLY, "totalSupply")
    check_eq(token.functions.balanceOf(a0.address).call(), SUPPLY, "balanceOf(0)")
    check_eq(token.functions.balanceOf(a1.address).call(), 0, "balanceOf(1)")
    # The state of the deployment's block, by number.
    check_eq(
        token.functions.totalSupply().call(block_identifier=receipt["blockNumber"]),
        SUPPLY, "totalSupply at the deployment block")

    # --- Transfer: an explicit type-2 transaction. ---
    transfer = token.functions.transfer(a1.address, 25)
    gas = transfer.estimate_gas({"from": a0.address})
    out["transferEstimate"] = gas
    check(21_000 < gas < 200_000, "transfer's gas estimate", gas)
    tx = transfer.build_transaction({
        "type": 2,
        "chainId": CHAIN_ID,
        "from": a0.address,
        "nonce": nonce0 + 1,
        "gas": gas,
        "maxFeePerGas": out["baseFeePerGas"] + out["maxPriorityFeePerGas"],
        "maxPriorityFeePerGas": out["maxPriorityFeePerGas"],
    })
    receipt = send(a0, tx)
    check_eq(receipt["status"], 1, "transfer status")
    check(receipt["gasUsed"] <= gas, "gasUsed within the estimate", receipt["gasUsed"])
    events = token.events.Transfer().process_receipt(receipt)
    out["transferEvents"] = [
        [e["event"], e["args"]["from"], e["args"]["to"], e["args"]["value"]] for e in events
    ]
    check_eq(out["transferEvents"], [["Transfer", a0.address, a1.address, 25]],
             "Transfer event")
    out["balance0"] = token.functions.balanceOf(a0.address).call()
    out["balance1"] = token.functions.balanceOf(a1.address).call()
    check_eq(out["balance0"], SUPPLY - 25, "token balance 0 after")
    check_eq(out["balance1"], 25, "token balance 1 after")

    # --- Reverts, decoded by web3.py from eth_call's and eth_estimateGas's error data. ---
    selector = keccak(text="InsufficientBalance(uint256,uint256)")[:4]
    too_much = 10**30
    for how in ("call", "estimate_gas"):
        try:
            fn = token.functions.transfer(a0.address, too_much)
            getattr(fn, how)({"from": a1.address})
            raise CheckFailed(f"{how} of a transfer beyond the balance did not raise")
        except ContractCustomError as e:
            data = e.data if isinstance(e.data, str) else str(e.data)
            raw = bytes.fromhex(data.removeprefix("0x"))
            check_eq(raw[:4], selector, f"{how}: custom error selector")
            args = abi_decode(["uint256", "uint256"], raw[4:])
            out[f"customError_{how}"] = f"InsufficientBalance({args[0]},{args[1]})"
            check_eq(args, (25, too_much), f"{how}: InsufficientBalance's arguments")
    try:
        token.functions.transferFrom(a0.address, a1.address, 1).call({"from": a1.address})
        raise CheckFailed("transferFrom without an allowance did not revert")
    except ContractCustomError as e:
        raise CheckFailed(f"transferFrom reverted with a custom error: {e!r}") from e
    except ContractLogicError as e:
        out["revertReason"] = e.message
        check_eq(e.message, "execution reverted: allowance exceeded", "revert reason")

    # --- Value: web3.py's signing middleware fills every field itself. ---
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(a0), layer=0)
    before0 = w3.eth.get_balance(a0.address)
    before1 = w3.eth.get_balance(a1.address)
    value = 12_345
    pay_hash = w3.eth.send_transaction({"from": a0.address, "to": a1.address, "value": value})
    receipt = w3.eth.wait_for_transaction_receipt(
        pay_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.1)
    check_eq(receipt["status"], 1, "value transfer status")
    check_eq(receipt["gasUsed"], 21_000, "value transfer gasUsed")
    block = receipt["blockNumber"]
    # Read at the receipt's block: "latest" could lag on another node.
    after0 = w3.eth.get_balance(a0.address, block)
    after1 = w3.eth.get_balance(a1.address, block)
    out["received"] = after1 - before1
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    out["paid"] = before0 - after0
    check_eq(out["received"], value, "value received by account 1")
    check_eq(out["paid"], value + fee, "value and fee paid by account 0")

    # --- The transaction and receipt as web3.py parses them. ---
    tx = w3.eth.get_transaction(pay_hash)
    check_eq(tx["hash"], pay_hash, "transaction hash")
    check_eq(tx["type"], 2, "transaction type")
    check_eq(tx["from"], a0.address, "transaction from")
    check_eq(tx["to"], a1.address, "transaction to")
    check_eq(tx["value"], value, "transaction value")
    check_eq(tx["nonce"], nonce0 + 2, "transaction nonce")
    check_eq(tx["chainId"], CHAIN_ID, "transaction chainId")
    # web3.py's send_transaction adds 100,000 to eth_estimateGas's answer.
    check_eq(tx["gas"], 121_000, "transaction gas (web3.py's buffered estimate)")
    check_eq(tx["blockNumber"], block, "transaction blockNumber")
    check_eq(tx["blockHash"], receipt["blockHash"], "transaction blockHash")
    check_eq(tx["transactionIndex"], receipt["transactionIndex"], "transactionIndex")
    check("maxFeePerGas" in tx and "maxPriorityFeePerGas" in tx,
          "EIP-1559 fee fields in the transaction", dict(tx))
    check(tx["v"] in (0, 1) or tx.get("yParity") in (0, 1), "signature parity", dict(tx))
    base_fee = w3.eth.get_block(block)["baseFeePerGas"]
    want_price = min(tx["maxFeePerGas"], base_fee + tx["maxPriorityFeePerGas"])
    check_eq(receipt["type"], 2, "receipt type")
    check_eq(receipt["effectiveGasPrice"], want_price, "receipt effectiveGasPrice")
    check_eq(receipt["from"], a0.address, "receipt from")
    check_eq(receipt["to"], a1.address, "receipt to")
    check(receipt["blockNumber"] >= 1, "receipt blockNumber", receipt["blockNumber"])
    check(receipt["cumulativeGasUsed"] >= receipt["gasUsed"], "cumulativeGasUsed",
          receipt["cumulativeGasUsed"])
    full = w3.eth.get_block(block, full_transactions=True)
    check(any(t["hash"] == pay_hash for t in full["transactions"]),
          "the block lists the transaction")
    out["txType"] = tx["type"]
    out["receiptType"] = receipt["type"]
    out["receiptStatus"] = receipt["status"]
    out["effectiveGasPrice"] = receipt["effectiveGasPrice"]
    out["blockNumber"] = block

    # --- A transaction that reverts in its block: status 0. ---
    bad = token.functions.transferFrom(a0.address, a1.address, 1).build_transaction({
        "from": a1.address, "nonce": nonce1, "gas": 100_000, "chainId": CHAIN_ID,
        "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
    })
    receipt = send(a1, bad)
    out["failedStatus"] = receipt["status"]
    check_eq(receipt["status"], 0, "a reverting transaction's status")
    check_eq(token.functions.balanceOf(a1.address).call(block_identifier=receipt["blockNumber"]),
             25, "token balance 1 after the failed transaction")

    # --- An address without `member` is refused at submission. ---
    outsider = Account.create()
    signed = outsider.sign_transaction({
        "type": 2, "chainId": CHAIN_ID, "nonce": 0, "to": a0.address, "value": 0,
        "gas": 21_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
    })
    try:
        w3.eth.send_raw_transaction(signed.raw_transaction)
        raise CheckFailed("an outsider's transaction was accepted")
    except Web3RPCError as e:
        out["outsider"] = str(e)
        check("member" in str(e), "the refusal names the missing role", str(e))

    out["nonce0"] = w3.eth.get_transaction_count(a0.address, "latest")
    check_eq(out["nonce0"], nonce0 + 3, "account 0's EVM nonce")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        summary = main(*sys.argv[1:])
    except CheckFailed as e:
        print(f"check failed: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(summary, default=str))
