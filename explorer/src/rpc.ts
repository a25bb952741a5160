// JSON-RPC 2.0 over HTTP (calls) and one WebSocket (the new-heads
// subscription), to one endpoint.

const STORAGE_KEY = 'palisade-explorer.rpc';

export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number | null,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcError';
  }

  get methodMissing(): boolean {
    return this.code === -32601;
  }
}

/** Normalize a user-given endpoint to an http(s) URL string, or null. */
export function normalizeEndpoint(raw: string): string | null {
  const text = raw.trim();
  if (!text) return null;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    return null;
  }
  if (url.protocol === 'ws:') url.protocol = 'http:';
  else if (url.protocol === 'wss:') url.protocol = 'https:';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username || url.password) return null;
  url.hash = '';
  url.search = '';
  const s = url.toString();
  return url.pathname === '/' ? s.replace(/\/$/, '') : s;
}

export function pageOrigin(): string | null {
  const o = location.origin;
  return o && o !== 'null' && /^https?:/.test(o) ? o : null;
}

/**
 * The endpoint: `?rpc=` (for this page load only: a link must not be able
 * to repoint later visits), else the one saved with "change", else the
 * page's own origin. Null when there is none (a page opened from a file).
 */
export function resolveEndpoint(): { url: string | null; source: 'query' | 'saved' | 'origin' | 'none' } {
  const q = new URLSearchParams(location.search).get('rpc');
  if (q !== null) {
    const n = normalizeEndpoint(q);
    if (n) return { url: n, source: 'query' };
  }
  let saved: string | null = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    saved = null;
  }
  if (saved) {
    const n = normalizeEndpoint(saved);
    if (n) return { url: n, source: 'saved' };
  }
  const o = pageOrigin();
  return o ? { url: o, source: 'origin' } : { url: null, source: 'none' };
}

export function saveEndpoint(url: string | null): void {
  try {
    if (url) localStorage.setItem(STORAGE_KEY, url);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage unavailable: the endpoint lasts for this page only
  }
}

type Pending = { method: string; resolve: (v: unknown) => void; reject: (e: unknown) => void };

export type Head = {
  hash: string;
  txCount: number;
  header: Record<string, unknown> & { height: number; time: number; proposer: string; chain_id: string };
  missed?: number;
};

export type ConnState = 'connecting' | 'open' | 'closed';

type Msg = { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown }; method?: unknown; params?: unknown };

export type BatchCall = { method: string; params: unknown[] };
export type BatchResult = { ok: true; value: unknown } | { ok: false; error: RpcError };

export class Rpc {
  private nextId = 1;
  private ws: WebSocket | null = null;
  private wsPending = new Map<number, Pending>();
  private headSub: string | null = null;
  private retry = 0;
  private retryTimer: number | null = null;
  private stopped = false;
  private headListeners = new Set<(h: Head) => void>();
  private stateListeners = new Set<(s: ConnState) => void>();
  state: ConnState = 'closed';

  constructor(readonly url: string) {}

  private async post(body: unknown, method: string): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new RpcError(method, null, `cannot reach ${this.url}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!res.ok) {
      const hint = res.status === 403 ? ' (is this page\'s origin in the node\'s rpc.allowed_origins?)' : '';
      throw new RpcError(method, null, `HTTP ${res.status} from ${this.url}${hint}`);
    }
    try {
      return await res.json();
    } catch {
      throw new RpcError(method, null, `the answer of ${this.url} is not JSON`);
    }
  }

  private static settle(method: string, msg: Msg): BatchResult {
    if (msg && typeof msg === 'object' && msg.error && typeof msg.error === 'object') {
      const code = typeof msg.error.code === 'number' ? msg.error.code : null;
      const text = typeof msg.error.message === 'string' ? msg.error.message : 'error';
      return { ok: false, error: new RpcError(method, code, text, msg.error.data) };
    }
    if (msg && typeof msg === 'object' && 'result' in msg) return { ok: true, value: msg.result };
    return { ok: false, error: new RpcError(method, null, 'malformed JSON-RPC answer') };
  }

  async call<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    const id = this.nextId++;
    const msg = (await this.post({ jsonrpc: '2.0', id, method, params }, method)) as Msg;
    const r = Rpc.settle(method, msg);
    if (!r.ok) throw r.error;
    return r.value as T;
  }

  /** Several calls in JSON-RPC batches of at most 50; one result per call, in order. */
  async batch(calls: BatchCall[]): Promise<BatchResult[]> {
    const out: BatchResult[] = [];
    for (let start = 0; start < calls.length; start += 50) {
      const chunk = calls.slice(start, start + 50);
      const firstId = this.nextId;
      this.nextId += chunk.length;
      const body = chunk.map((c, i) => ({ jsonrpc: '2.0', id: firstId + i, method: c.method, params: c.params }));
      const label = chunk[0]?.method ?? 'batch';
      let answer: unknown;
      try {
        answer = await this.post(body, label);
      } catch (e) {
        const err = e instanceof RpcError ? e : new RpcError(label, null, String(e));
        for (const c of chunk) out.push({ ok: false, error: new RpcError(c.method, err.code, err.message) });
        continue;
      }
      const byId = new Map<number, Msg>();
      if (Array.isArray(answer)) {
        for (const m of answer as Msg[]) if (m && typeof m.id === 'number') byId.set(m.id, m);
      } else if (answer && typeof answer === 'object') {
        // A batch refused as a whole (for instance -32010): one error object.
        const r = Rpc.settle(label, answer as Msg);
        for (const c of chunk) out.push(r.ok ? { ok: false, error: new RpcError(c.method, null, 'malformed batch answer') } : { ok: false, error: new RpcError(c.method, r.error.code, r.error.message) });
        continue;
      }
      chunk.forEach((c, i) => {
        const m = byId.get(firstId + i);
        out.push(m ? Rpc.settle(c.method, m) : { ok: false, error: new RpcError(c.method, null, 'no answer in batch') });
      });
    }
    return out;
  }

  // ---- WebSocket: one socket, the new-heads subscription, reconnect with backoff.

  get wsUrl(): string {
    const u = new URL(this.url);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.toString();
  }

  onHead(fn: (h: Head) => void): () => void {
    this.headListeners.add(fn);
    return () => this.headListeners.delete(fn);
  }

  onState(fn: (s: ConnState) => void): () => void {
    this.stateListeners.add(fn);
    fn(this.state);
    return () => this.stateListeners.delete(fn);
  }

  private setState(s: ConnState): void {
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.setState('closed');
  }

  private connect(): void {
    if (this.stopped || this.ws) return; // at most one socket
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.wsUrl);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.setState('connecting');
    ws.onopen = () => {
      this.retry = 0;
      this.setState('open');
      this.wsCall(ws, 'chain_subscribeNewHeads', [])
        .then((id) => {
          this.headSub = typeof id === 'string' || typeof id === 'number' ? String(id) : null;
        })
        .catch(() => {
          // The subscription was refused: drop this socket and try later.
          ws.close();
        });
    };
    ws.onmessage = (ev) => this.onMessage(ev);
    ws.onerror = () => {
      // onclose follows; nothing to do here
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.headSub = null;
      for (const p of this.wsPending.values()) p.reject(new RpcError(p.method, null, 'connection closed'));
      this.wsPending.clear();
      this.setState('closed');
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer !== null) return;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.retry, 5)) * (0.75 + Math.random() * 0.5);
    this.retry++;
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private wsCall(ws: WebSocket, method: string, params: unknown[]): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.wsPending.set(id, { method, resolve, reject });
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  private onMessage(ev: MessageEvent): void {
    if (typeof ev.data !== 'string') return;
    let msg: Msg;
    try {
      msg = JSON.parse(ev.data) as Msg;
    } catch {
      return;
    }
    if (typeof msg.id === 'number' && this.wsPending.has(msg.id)) {
      const p = this.wsPending.get(msg.id)!;
      this.wsPending.delete(msg.id);
      const r = Rpc.settle(p.method, msg);
      if (r.ok) p.resolve(r.value);
      else p.reject(r.error);
      return;
    }
    if (msg.method === 'chain_newHead' && msg.params && typeof msg.params === 'object') {
      const params = msg.params as { subscription?: unknown; result?: unknown };
      if (this.headSub !== null && String(params.subscription) !== this.headSub) return;
      const head = params.result as Head | undefined;
      if (!head || typeof head !== 'object' || !head.header || typeof head.header.height !== 'number') return;
      for (const fn of this.headListeners) {
        try {
          fn(head);
        } catch (e) {
          console.warn('head listener failed', e);
        }
      }
    }
  }
}
