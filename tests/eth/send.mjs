// Sends Ethereum transactions to a Palisade node through ethers v6, as a
// dapp would with the standard development accounts: deploys the ERC-20
// with a ContractFactory, calls it, pays value with legacy and EIP-1559
// transactions, reads the transactions and receipts back, sees a failed
// transaction's status, and is refused for an address without `member`.
// Prints what happened as one JSON object; tests/tests/it/eth_clients.rs
// checks it.
//
// usage: node send.mjs RPC_URL TOKEN_JSON KEY0 KEY1
import { readFileSync } from "node:fs";
import { ethers } from "ethers";

const [url, tokenJson, key0, key1] = process.argv.slice(2);
const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 100 });
// ethers caches identical requests for 250 ms, a pending nonce included:
// with blocks faster than that, a NonceManager (counting nonces locally,
// as dapps do) keeps back-to-back sends apart.
const w0 = new ethers.NonceManager(new ethers.Wallet(key0, provider));
const w1 = new ethers.NonceManager(new ethers.Wallet(key1, provider));
w0.address = await w0.getAddress();
w1.address = await w1.getAddress();
const { abi, bytecode } = JSON.parse(readFileSync(tokenJson, "utf8"));
const out = {};

const factory = new ethers.ContractFactory(abi, bytecode, w0);
const token = await factory.deploy(1000n);
await token.waitForDeployment();
out.tokenAddress = await token.getAddress();
const deployTx = token.deploymentTransaction();
out.deployHash = deployTx.hash;
const deployReceipt = await provider.getTransactionReceipt(deployTx.hash);
out.deployStatus = deployReceipt.status;
out.deployContract = deployReceipt.contractAddress;

const tx = await token.transfer(w1.address, 25n);
const receipt = await tx.wait();
out.transferStatus = receipt.status;
out.transferEvents = receipt.logs.map((l) => token.interface.parseLog(l)?.name);
out.transferGasUsed = receipt.gasUsed.toString();
out.balance1 = (await token.balanceOf(w1.address)).toString();
const fetched = await provider.getTransaction(tx.hash);
out.fetchedFrom = fetched.from;
out.fetchedTo = fetched.to;
out.fetchedNonce = fetched.nonce;

// Value, legacy pricing (what ethers picks at base fee 0), then EIP-1559.
const pay = await w0.sendTransaction({ to: w1.address, value: 7n });
const payReceipt = await pay.wait();
const typed = await w0.sendTransaction({
  to: w1.address,
  value: 3n,
  type: 2,
  maxFeePerGas: 1n,
  maxPriorityFeePerGas: 0n,
});
const typedReceipt = await typed.wait();
out.typedType = typedReceipt.type;
// Read at the blocks themselves: ethers answers an identical call made
// within 250 ms from its cache, and both blocks may come that fast.
const before = await provider.getBalance(w1.address, payReceipt.blockNumber - 1);
const after = await provider.getBalance(w1.address, typedReceipt.blockNumber);
out.received = (after - before).toString();
// The committed EVM nonce after four transactions: read until this node
// shows the block that the last receipt came from (bounded).
for (let i = 0; i < 50; i++) {
  out.nonce0 = await provider.getTransactionCount(w0.address, "latest");
  if (out.nonce0 >= 4) break;
  await new Promise((r) => setTimeout(r, 100));
}

// A transaction that reverts in its block: status 0.
try {
  const bad = await token.connect(w1).transferFrom(w0.address, w1.address, 1n, { gasLimit: 100000n });
  await bad.wait();
  out.failedStatus = "no failure";
} catch (e) {
  out.failedStatus = e.receipt ? e.receipt.status : `error: ${e.shortMessage ?? e.message}`;
}

// An address without the member role is refused at submission.
const outsider = ethers.Wallet.createRandom(provider);
try {
  await outsider.sendTransaction({ to: w0.address, value: 0n, gasLimit: 21000n, gasPrice: 0n });
  out.outsider = "accepted";
} catch (e) {
  out.outsider = e.error?.message ?? e.shortMessage ?? e.message;
}
console.log(JSON.stringify(out));
