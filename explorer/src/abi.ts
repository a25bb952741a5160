// Contract ABIs the user pasted, per address (localStorage), and decoding of
// call data and logs with viem.
import { decodeEventLog, decodeFunctionData, parseAbi, type Abi, type Hex } from 'viem';
import { el, replace } from './dom';
import { toJson } from './format';

const PREFIX = 'palisade-explorer.abi.';

export function loadAbiText(address: string): string | null {
  try {
    return localStorage.getItem(PREFIX + address.toLowerCase());
  } catch {
    return null;
  }
}

function saveAbiText(address: string, text: string | null): void {
  try {
    if (text) localStorage.setItem(PREFIX + address.toLowerCase(), text);
    else localStorage.removeItem(PREFIX + address.toLowerCase());
  } catch {
    // storage unavailable
  }
}

/** A JSON ABI (an array, or an object with `abi`), or human-readable lines. */
export function parseAbiText(text: string): Abi {
  const t = text.trim();
  if (t.startsWith('[') || t.startsWith('{')) {
    const v = JSON.parse(t) as unknown;
    const arr = Array.isArray(v) ? v : v && typeof v === 'object' && Array.isArray((v as { abi?: unknown }).abi) ? (v as { abi: unknown[] }).abi : null;
    if (!arr) throw new Error('JSON ABI must be an array, or an object with an "abi" array');
    return arr as Abi;
  }
  const lines = t
    .split('\n')
    .map((l) => l.trim().replace(/;$/, ''))
    .filter((l) => l && !l.startsWith('//'));
  return parseAbi(lines) as Abi;
}

export function abiFor(address: string | null | undefined): Abi | null {
  if (!address) return null;
  const text = loadAbiText(address);
  if (!text) return null;
  try {
    return parseAbiText(text);
  } catch {
    return null;
  }
}

type Decoded = { name: string; args: [string, string][] };

function show(a: unknown): string {
  if (typeof a === 'string') return a;
  if (typeof a === 'bigint' || typeof a === 'number' || typeof a === 'boolean') return String(a);
  return toJson(a, 0);
}

function argList(inputs: readonly { name?: string | undefined; type: string }[] | undefined, args: unknown): [string, string][] {
  const out: [string, string][] = [];
  if (Array.isArray(args)) {
    args.forEach((a, i) => {
      const inp = inputs?.[i];
      out.push([`${inp?.name || `arg${i}`} (${inp?.type ?? '?'})`, show(a)]);
    });
  } else if (args && typeof args === 'object') {
    for (const [k, a] of Object.entries(args)) {
      const inp = inputs?.find((x) => x.name === k);
      out.push([`${k} (${inp?.type ?? '?'})`, show(a)]);
    }
  }
  return out;
}

export function decodeCall(abi: Abi, data: string): Decoded | Error {
  try {
    const r = decodeFunctionData({ abi, data: data as Hex });
    const fn = abi.find((x) => x.type === 'function' && x.name === r.functionName) as { inputs?: { name?: string; type: string }[] } | undefined;
    return { name: r.functionName, args: argList(fn?.inputs, r.args) };
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

export function decodeLog(abi: Abi, topics: string[], data: string): Decoded | Error {
  try {
    const r = decodeEventLog({ abi, topics: topics as [Hex, ...Hex[]], data: data as Hex, strict: false });
    const ev = abi.find((x) => x.type === 'event' && x.name === r.eventName) as { inputs?: { name?: string; type: string }[] } | undefined;
    return { name: r.eventName ?? '?', args: argList(ev?.inputs, r.args) };
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

export function decodedView(d: Decoded | Error, label: string): HTMLElement {
  if (d instanceof Error) return el('div', { class: 'notice warn small' }, `Cannot decode with the saved ABI: ${d.message.split('\n')[0] ?? ''}`);
  return el(
    'div',
    { class: 'decoded' },
    el('div', null, el('span', { class: 'muted' }, `${label} `), el('strong', { class: 'mono' }, d.name)),
    d.args.length
      ? el('table', { class: 'kv' }, el('tbody', null, d.args.map(([k, v]) => el('tr', null, el('th', null, k), el('td', { class: 'mono wrap' }, v)))))
      : null,
  );
}

/** A box to paste/save/clear the ABI of `address`; `onChange` re-renders decoding. */
export function abiBox(address: string, onChange: () => void): HTMLElement {
  const current = loadAbiText(address);
  const area = el('textarea', {
    rows: 6,
    spellcheck: 'false',
    'aria-label': `ABI for ${address}`,
    placeholder: 'Paste the contract ABI: JSON ([{"type":"function",…}]) or one signature a line (function set(uint256 x), event Stored(uint256 value))',
    'data-testid': 'abi-input',
  }) as HTMLTextAreaElement;
  area.value = current ?? '';
  const msg = el('span', { class: 'small' });
  const save = (): void => {
    const text = area.value.trim();
    if (!text) {
      saveAbiText(address, null);
      replace(msg, 'Cleared.');
      onChange();
      return;
    }
    try {
      const abi = parseAbiText(text);
      saveAbiText(address, text);
      replace(msg, `Saved (${abi.length} entries).`);
      onChange();
    } catch (e) {
      replace(msg, el('span', { class: 'error-text' }, `Not a valid ABI: ${(e instanceof Error ? e.message : String(e)).split('\n')[0] ?? ''}`));
    }
  };
  return el(
    'details',
    { class: 'abi-box', open: !current },
    el('summary', null, current ? 'Contract ABI (saved) for ' : 'Add the contract ABI to decode calls and logs of ', el('span', { class: 'mono' }, address)),
    area,
    el(
      'div',
      { class: 'row' },
      el('button', { type: 'button', onclick: save, 'data-testid': 'abi-save' }, 'Save ABI'),
      el(
        'button',
        {
          type: 'button',
          onclick: () => {
            area.value = '';
            save();
          },
        },
        'Clear',
      ),
      msg,
    ),
  );
}
