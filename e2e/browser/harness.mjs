// Shared setup for the Node tests in this directory: build (or take) the
// Caddy binary with oauthgate, run a Caddyfile on free ports with a fresh
// store, call the admin API, and start Debian's Chromium.
//
//   import { startCaddy, adminRequest, launchBrowser, newPage, stopAll } from './harness.mjs';
//
// CADDY_BIN=/path/to/caddy uses a binary already built; otherwise the first
// startCaddy builds ./cmd/caddy once per test file. Under CI=true a browser
// that cannot start fails the run instead of skipping it.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const inCI = process.env.CI === 'true';
export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const running = [];
const picked = new Set();
let work, bin;

function workDir() {
  if (!work) work = mkdtempSync(path.join(tmpdir(), 'oauthgate-node-'));
  return work;
}

function binary() {
  if (process.env.CADDY_BIN) return process.env.CADDY_BIN;
  if (!bin) {
    bin = path.join(workDir(), 'bin', 'caddy');
    execFileSync('go', ['build', '-o', bin, './cmd/caddy'], { cwd: repoRoot, stdio: 'inherit' });
  }
  return bin;
}

function canListen(port, host) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

// freePort returns a port below the ephemeral range (so no outgoing
// connection holds it) that nothing listens on, on loopback or the wildcard
// address (Caddy listens with SO_REUSEPORT: a stale instance would silently
// share the port). A port is never handed out twice in one process.
export async function freePort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (picked.has(port)) continue;
    picked.add(port);
    if (await canListen(port, '127.0.0.1') && await canListen(port, '0.0.0.0')) return port;
  }
}

// startCaddy runs a Caddyfile (path relative to the repository root; the
// root demo Caddyfile by default) on free ports with a fresh data
// directory, and waits until both the gateway's discovery document and the
// admin API answer. env adds or overrides environment variables; the
// OAUTHGATE_* and DEMO_* ones the examples read are set to free ports.
// It returns { issuer, admin, metadata, log(), stop() }.
export async function startCaddy({ caddyfile = 'Caddyfile', env = {}, readyPath = '/.well-known/openid-configuration' } = {}) {
  const exe = binary();
  const data = mkdtempSync(path.join(workDir(), 'data-'));
  const port = await freePort();
  const adminPort = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const fullEnv = {
    ...process.env,
    XDG_DATA_HOME: data,
    XDG_CONFIG_HOME: data,
    OAUTHGATE_HTTP: `127.0.0.1:${port}`,
    OAUTHGATE_ISSUER: issuer,
    OAUTHGATE_ADMIN: `127.0.0.1:${adminPort}`,
    DEMO_ACCOUNTING: `127.0.0.1:${await freePort()}`,
    DEMO_CRM: `127.0.0.1:${await freePort()}`,
    ...env,
  };
  const proc = spawn(exe, ['run', '--config', path.resolve(repoRoot, caddyfile), '--adapter', 'caddyfile'],
    { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (b) => { log += b; });
  proc.stderr.on('data', (b) => { log += b; });
  const node = {
    proc,
    issuer,
    admin: `http://127.0.0.1:${adminPort}`,
    env: fullEnv,
    metadata: null,
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
  running.push(node);
  const end = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`caddy exited early (${proc.exitCode}):\n${log}`);
    try {
      const r = await fetch(`${issuer}${readyPath}`);
      if (r.ok) {
        node.metadata = await r.json();
        // The admin API can answer 503 for a moment after the gateway answers.
        const a = await adminRequest(node, 'GET', '/oauthgate/clients');
        if (a.status === 200) break;
      }
    } catch { /* not listening yet */ }
    if (Date.now() > end) throw new Error(`caddy did not become ready:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return node;
}

// adminRequest calls the admin API with node:http: Node's fetch sends
// Sec-Fetch-Mode: cors without an Origin, which Caddy's admin refuses.
// It resolves to { status, headers, text, json } (json is null when the
// body is not JSON).
export function adminRequest(node, method, p, body) {
  const u = new URL(p, node.admin);
  const data = body === undefined ? '' : JSON.stringify(body);
  const headers = {};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = Buffer.byteLength(data);
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`admin ${method} ${p}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

// createClient registers a client on the admin API and returns its JSON
// (client_id, and client_secret for a confidential client).
export async function createClient(node, spec) {
  const r = await adminRequest(node, 'POST', '/oauthgate/clients', spec);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

let browser, browserError;

// launchBrowser starts Debian's Chromium once per test file. Outside CI it
// resolves to null when no browser can start; under CI=true it throws.
export async function launchBrowser() {
  if (browser || browserError) return browser ?? null;
  try {
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (err) {
    browserError = err;
    if (inCI) throw new Error(`Chromium (${chromiumPath}) did not start, and CI=true: ${err.message}`);
  }
  return browser ?? null;
}

// newPage opens a page in a fresh browser context (no cookies), or skips
// the test when no browser could start outside CI.
export async function newPage(t, { viewport = { width: 960, height: 940 } } = {}) {
  const b = await launchBrowser();
  if (!b) {
    t.skip(`no browser: ${browserError?.message}`);
    return null;
  }
  const context = await b.newContext({ viewport, deviceScaleFactor: 2 });
  t.after(() => context.close());
  return context.newPage();
}

// stopAll stops the browser and every Caddy started here, prints the log
// of any that panicked, and removes the work directory. Call it in after().
export async function stopAll() {
  await browser?.close();
  browser = undefined;
  for (const node of running.splice(0)) {
    await node.stop();
    if (/panic:/.test(node.log())) console.error(node.log());
  }
  if (work) rmSync(work, { recursive: true, force: true });
  work = undefined;
  bin = undefined;
}
