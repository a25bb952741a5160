// Compiles Solidity sources with solc-js (the locked npm `solc`, no
// download) for the EVM version Palisade runs.
//
//   node compile.mjs OUT.json FILE.sol...
//
// OUT.json maps each contract name to { abi, bytecode, deployedBytecode }
// (bytecode as 0x-hex). Import with `compile(files)` from other scripts.

import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import solc from 'solc';

// Palisade's hardfork (runtime/src/evm: revm's Osaka).
export const EVM_VERSION = 'osaka';

export function compile(files) {
  const sources = {};
  for (const f of files) sources[basename(f)] = { content: readFileSync(f, 'utf8') };
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
  }
  const contracts = {};
  for (const file of Object.values(out.contracts || {})) {
    for (const [name, c] of Object.entries(file)) {
      contracts[name] = {
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      };
    }
  }
  return contracts;
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  const [outFile, ...files] = process.argv.slice(2);
  if (!outFile || files.length === 0) {
    console.error('usage: node compile.mjs OUT.json FILE.sol...');
    process.exit(2);
  }
  writeFileSync(outFile, JSON.stringify(compile(files), null, 1));
}
