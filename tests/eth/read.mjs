// Reads a Palisade node through ethers v6, as an application would: the
// network, blocks and fees, balances, code and storage, a contract's view
// functions over eth_call, a gas estimate, and a revert reason decoded by
// ethers from the node's error. Prints what it read as one JSON object;
// the Rust test (tests/tests/it/eth_clients.rs) checks it.
//
// usage: node read.mjs RPC_URL TOKEN_ADDRESS HOLDER SPENDER
import { ethers } from "ethers";

const [url, tokenAddress, holder, spender] = process.argv.slice(2);
const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: false });
const abi = [
  "function name() view returns (string)",
  "function balanceOf(address) view returns (uint256)",
  "function transfer(address to, uint256 value) returns (bool)",
  "function transferFrom(address from, address to, uint256 value) returns (bool)",
  "error InsufficientBalance(uint256 available, uint256 required)",
];
const token = new ethers.Contract(tokenAddress, abi, provider);

const out = {};
const network = await provider.getNetwork();
out.chainId = network.chainId.toString();
out.blockNumber = await provider.getBlockNumber();
const block = await provider.getBlock("latest");
out.blockHasBaseFee = block.baseFeePerGas !== null;
out.blockTimestamp = block.timestamp;
const fees = await provider.getFeeData();
out.gasPrice = fees.gasPrice.toString();
// ethers offers EIP-1559 fees only when the base fee is non-zero; on a
// gas-free chain it prices transactions with the legacy gas price.
out.maxPriorityFeePerGas = String(fees.maxPriorityFeePerGas);
out.holderBalance = (await provider.getBalance(holder)).toString();
out.holderNonce = await provider.getTransactionCount(holder);
out.codeLength = (await provider.getCode(tokenAddress)).length;
out.name = await token.name();
out.tokenBalance = (await token.balanceOf(holder)).toString();
out.estimate = (await token.transfer.estimateGas(spender, 1n, { from: holder })).toString();
try {
  await token.transferFrom.staticCall(holder, spender, 1n, { from: spender });
  out.revert = "no revert";
} catch (e) {
  out.revert = e.reason ?? e.shortMessage ?? String(e);
}
try {
  await token.transfer.staticCall(holder, 10n ** 30n, { from: spender });
  out.customError = "no revert";
} catch (e) {
  out.customError = e.revert ? `${e.revert.name}(${e.revert.args.join(",")})` : String(e);
}
console.log(JSON.stringify(out));
