// Serve a built explorer (explorer/dist) under /explorer/ with the node's
// Content-Security-Policy, to test the app under it without the node.
//   node serve-csp.mjs [DIST_DIR] [PORT]
// Defaults: ../../explorer/dist, port 4174. Ctrl-C stops it.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(process.argv[2] ?? join(here, '../../explorer/dist'));
const port = Number(process.argv[3] ?? 4174);

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self' http: https: ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers = {
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  };
  if (url.pathname === '/' || url.pathname === '/explorer') {
    res.writeHead(308, { ...headers, Location: '/explorer/' + url.search });
    res.end();
    return;
  }
  if (!url.pathname.startsWith('/explorer/')) {
    res.writeHead(404, headers);
    res.end('not found');
    return;
  }
  let rel = decodeURIComponent(url.pathname.slice('/explorer/'.length)) || 'index.html';
  const file = normalize(join(root, rel));
  if (!file.startsWith(root + sep)) {
    res.writeHead(403, headers);
    res.end();
    return;
  }
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new Error('not a file');
    const body = await readFile(file);
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404, headers);
    res.end('not found');
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`serving ${root} at http://127.0.0.1:${port}/explorer/ with CSP`);
});
