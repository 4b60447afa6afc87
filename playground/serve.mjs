#!/usr/bin/env node
// A tiny static file server for the built playground (dist/), bound to 127.0.0.1 only: WebGPU
// needs a secure context, which plain http has on localhost. The page is served cross-origin
// isolated, so the CPU backend has its threads. Port: the first argument, else
// $PORT, else 5173; port 0 picks a free one. The first line printed is the page's address
// (the end-to-end test reads it).
// Usage: node playground/serve.mjs [PORT]
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const distDir = join(dirname(fileURLToPath(import.meta.url)), 'dist');
const host = '127.0.0.1';
const requestedPort = process.argv[2] ?? process.env.PORT ?? '5173';
const port = Number(requestedPort);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: port must be an integer 0–65535, got ${JSON.stringify(requestedPort)}`);
  process.exit(2);
}

const contentTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The file under dist/ a URL path names, or null when it would leave dist/. */
function fileFor(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const relative = normalize(decoded === '/' ? '/index.html' : decoded).replace(/^([/\\])+/, '');
  const file = join(distDir, relative);
  return file === distDir || file.startsWith(distDir + sep) ? file : null;
}

const server = createServer((request, response) => {
  let path;
  try {
    path = new URL(request.url ?? '/', `http://${host}`).pathname;
  } catch {
    // A request target no URL parser reads ('//%5B', 'http://['): answered, not a crash of the server.
    response.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bad request: the request target is not a URL\n');
    return;
  }
  const file = fileFor(path);
  let size = -1;
  try {
    const stats = file ? statSync(file) : null;
    if (stats?.isFile()) size = stats.size;
  } catch {
    // a missing file is answered with 404 below
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (!file || size < 0) {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: ${path}\n`);
    return;
  }
  response.writeHead(200, {
    'content-type': contentTypes[extname(file)] ?? 'application/octet-stream',
    'content-length': size,
    // A rebuilt bundle must reach the next reload.
    'cache-control': 'no-store',
    // Cross-origin isolation: the page may then use SharedArrayBuffer, so the CPU backend keeps its
    // arrays in one shared WebAssembly memory and splits products and large elementwise kernels
    // across Web Workers. Every file is served from here (the icon is a data: URL), so requiring
    // CORP of cross-origin resources blocks nothing.
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
  });
  if (request.method === 'HEAD') response.end();
  else createReadStream(file).pipe(response);
});

server.on('error', (e) => {
  console.error(`serve: ${e.message}`);
  process.exit(1);
});
server.listen(port, host, () => {
  const address = server.address();
  console.log(`playground: http://${host}:${address.port}/`);
});
// Browsers hold keep-alive connections open; without closing them `close` would wait for them.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
