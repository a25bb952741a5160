// Shared widgets.
import { el, type Child } from './dom';
import { RpcError } from './rpc';

export function section(title: Child, ...body: Child[]): HTMLElement {
  return el('section', { class: 'card' }, el('h2', null, title), ...body);
}

export function kvTable(rows: [string, Child][], testid?: string): HTMLElement {
  return el(
    'table',
    { class: 'kv', 'data-testid': testid },
    el('tbody', null, rows.map(([k, v]) => el('tr', null, el('th', null, k), el('td', null, v)))),
  );
}

export function table(head: string[], rows: HTMLElement[], opts: { testid?: string; empty?: string } = {}): HTMLElement {
  if (rows.length === 0 && opts.empty) return el('p', { class: 'muted', 'data-testid': opts.testid }, opts.empty);
  return el(
    'div',
    { class: 'table-wrap' },
    el('table', { class: 'list', 'data-testid': opts.testid }, el('thead', null, el('tr', null, head.map((h) => el('th', null, h)))), el('tbody', null, rows)),
  );
}

export function errorText(e: unknown): string {
  if (e instanceof RpcError) {
    if (e.methodMissing) return `This node does not provide ${e.method} (JSON-RPC -32601, method not found): it needs a newer Palisade node.`;
    return `${e.method}: ${e.message}${e.code !== null ? ` (code ${e.code})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

export function errorBox(e: unknown, what?: string): HTMLElement {
  const missing = e instanceof RpcError && e.methodMissing;
  return el('div', { class: missing ? 'notice warn' : 'notice error', role: 'alert', 'data-testid': missing ? 'method-missing' : 'error' }, what ? `${what}: ` : '', errorText(e));
}

export function notFound(what: string, detail?: Child): HTMLElement {
  return el('div', { class: 'notice notfound', 'data-testid': 'not-found', role: 'alert' }, el('strong', null, 'Not found. '), what, detail ? el('div', { class: 'muted' }, detail) : null);
}

export function loading(text = 'Loading…'): HTMLElement {
  return el('p', { class: 'muted loading' }, text);
}

export function badge(text: string, kind: 'ok' | 'fail' | 'muted' | 'warn' | 'info'): HTMLElement {
  return el('span', { class: `badge ${kind}` }, text);
}

/** Collapsed long hex/text, with its size in the summary. */
export function collapsed(summary: string, body: string): HTMLElement {
  return el('details', { class: 'collapsed' }, el('summary', null, summary), el('pre', { class: 'mono wrap' }, body));
}
