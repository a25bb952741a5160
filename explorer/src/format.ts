// Formatting helpers. Everything returns plain strings or nodes built with el().
import { el } from './dom';

export const HASH_RE = /^0x[0-9a-fA-F]{64}$/;
export const EVM_ADDR_RE = /^0x[0-9a-fA-F]{40}$/;
export const HEX_RE = /^0x[0-9a-fA-F]*$/;

export function short(v: string, head = 8, tail = 6): string {
  if (v.length <= head + tail + 3) return v;
  return `${v.slice(0, head)}…${v.slice(-tail)}`;
}

/** A shortened monospace value with the full value in `title`. */
export function mono(v: unknown, opts: { full?: boolean } = {}): HTMLElement {
  const s = v === null || v === undefined ? '' : String(v);
  return el('span', { class: 'mono', title: s }, opts.full ? s : short(s));
}

export function blockLink(id: number | string, text?: string): HTMLElement {
  const s = String(id);
  return el('a', { href: `#/block/${s}`, class: HASH_RE.test(s) ? 'mono' : null, title: s }, text ?? (HASH_RE.test(s) ? short(s) : `#${s}`));
}

export function txLink(hash: string, full = false): HTMLElement {
  return el('a', { href: HASH_RE.test(hash) ? `#/tx/${hash.toLowerCase()}` : null, class: 'mono', title: hash, 'data-testid': 'tx-link' }, full ? hash : short(hash));
}

export function accountLink(addr: string, full = false): HTMLElement {
  const ok = HASH_RE.test(addr) || EVM_ADDR_RE.test(addr);
  return el('a', { href: ok ? `#/account/${addr.toLowerCase()}` : null, class: 'mono', title: addr }, full ? addr : short(addr));
}

export function groupDigits(dec: string): string {
  if (!/^\d+$/.test(dec)) return dec;
  return dec.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A 0x quantity (Ethereum style) as a decimal string; the input when it is not one. */
export function hexToDec(q: unknown): string {
  if (typeof q !== 'string' || !/^0x[0-9a-fA-F]+$/.test(q)) return q === null || q === undefined ? '' : String(q);
  return BigInt(q).toString(10);
}

export function hexToNumber(q: unknown): number | null {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string' || !/^0x[0-9a-fA-F]+$/.test(q)) return null;
  return Number(BigInt(q));
}

export function hexByteLength(h: string): number {
  return HEX_RE.test(h) ? Math.floor((h.length - 2) / 2) : 0;
}

/** UTF-8 text of 0x-hex bytes when they are valid, printable-ish UTF-8; else null. */
export function hexToText(h: unknown): string | null {
  if (typeof h !== 'string' || !HEX_RE.test(h) || h.length % 2 !== 0 || h.length <= 2) return null;
  const bytes = new Uint8Array((h.length - 2) / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(h.slice(2 + i * 2, 4 + i * 2), 16);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
  // Control characters other than tab and newlines: binary, not text.
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) return null;
  return text;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Unix milliseconds as `YYYY-MM-DD HH:MM:SS.mmm UTC`. */
export function utc(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return String(ms ?? '');
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)} UTC`;
}

export function clock(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

export function age(ms: unknown, now = Date.now()): string {
  if (typeof ms !== 'number') return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function bytesHuman(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** JSON for display, bigints as decimal strings. */
export function toJson(v: unknown, indent = 2): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), indent) ?? String(v);
}
