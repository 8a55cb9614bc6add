// The example platforms' own pages in a real browser (Debian's Chromium
// via playwright-core): each example Caddyfile is run by the built binary,
// a user and an app are registered on its admin API, and the sign-in,
// consent and sign-out pages must show that platform — its name, its mark
// in its accent colour, legible text on the accent — and never oauthgate.
// Screenshots go to the system temp dir, or with UPDATE_SCREENSHOTS=1 to
// docs/img/brand-<platform>-<page>.png.
//
// Under CI=true a browser that cannot start fails the run instead of
// skipping it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const inCI = process.env.CI === 'true';
const shotDir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(repoRoot, 'docs', 'img') : tmpdir();

const user = { email: 'ada@example.com', password: 'brand-password-1', name: 'Ada Lovelace' };

let work, bin, browser, browserError;
const running = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// startExample runs one example Caddyfile on free ports with a fresh store.
async function startExample(name) {
  const data = path.join(work, name);
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const admin = `http://127.0.0.1:${await freePort()}`;
  const env = {
    ...process.env,
    XDG_DATA_HOME: data,
    XDG_CONFIG_HOME: data,
    OAUTHGATE_HTTP: `:${port}`,
    OAUTHGATE_ISSUER: issuer,
    OAUTHGATE_ADMIN: admin.replace('http://', ''),
    DEMO_ACCOUNTING: `127.0.0.1:${await freePort()}`,
    DEMO_CRM: `127.0.0.1:${await freePort()}`,
  };
  const proc = spawn(bin, ['run', '--config', path.join(repoRoot, 'examples', name, 'Caddyfile'), '--adapter', 'caddyfile'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ex = { proc, issuer, admin, log: '' };
  proc.stdout.on('data', (b) => { ex.log += b; });
  proc.stderr.on('data', (b) => { ex.log += b; });
  running.push(ex);
  const end = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`caddy exited early (${proc.exitCode}):\n${ex.log}`);
    try {
      const r = await fetch(`${issuer}/.well-known/openid-configuration`);
      if (r.ok) {
        ex.metadata = await r.json();
        break;
      }
    } catch { /* not listening yet */ }
    if (Date.now() > end) throw new Error(`caddy did not become ready:\n${ex.log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return ex;
}

// adminPost calls the admin API with node:http: fetch adds Sec-Fetch
// headers, which Caddy's admin endpoint refuses as a browser's request.
function adminPost(ex, p, body) {
  const u = new URL(p, ex.admin);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        try {
          assert.equal(res.statusCode, 201, text);
          resolve(JSON.parse(text));
        } catch (err) { reject(err); }
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'oauthgate-brand-'));
  bin = process.env.CADDY_BIN;
  if (!bin) {
    bin = path.join(work, 'bin', 'caddy');
    execFileSync('go', ['build', '-o', bin, './cmd/caddy'], { cwd: repoRoot, stdio: 'inherit' });
  }
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
});

after(async () => {
  await browser?.close();
  for (const ex of running) {
    if (ex.proc.exitCode === null) {
      ex.proc.kill('SIGTERM');
      await new Promise((r) => ex.proc.once('exit', r));
    }
    if (/panic:/.test(ex.log)) console.error(ex.log);
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

// The rendered colours as the browser computes them.
async function colours(locator) {
  return locator.evaluate((el) => {
    const s = getComputedStyle(el);
    return { background: s.backgroundColor, color: s.color };
  });
}

// contrast is WCAG 2's ratio of two computed rgb() colours.
function contrast(a, b) {
  const lum = (c) => {
    const [r, g, bl] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const hexToRgb = (h) => `rgb(${parseInt(h.slice(1, 3), 16)}, ${parseInt(h.slice(3, 5), 16)}, ${parseInt(h.slice(5, 7), 16)})`;

for (const ex of [
  { dir: 'yionstack', brand: 'YionStack', mark: 'YS', accent: '#2563eb', app: 'Ledgerly', scope: 'openid read:invoices read:contacts' },
  { dir: 'yoco', brand: 'Yoco', mark: 'Y', accent: '#0ea5e9', app: 'Till Insights', scope: 'openid business/orders:read offline_access' },
  { dir: 'yappointment', brand: 'yAppointment', mark: 'yA', accent: '#7c3aed', app: 'Calendly Sync', scope: 'openid bookings:read calendars:read' },
  { dir: 'yuvo', brand: 'Yuvo', mark: 'Y', accent: '#0f766e', app: 'Payroll Bridge', scope: 'openid companies:read employees:write' },
]) {
  test(`${ex.brand}: sign-in, consent and sign-out pages show the platform`, async (t) => {
    if (!browser) {
      t.skip(`no browser: ${browserError?.message}`);
      return;
    }
    const node = await startExample(ex.dir);
    await adminPost(node, '/oauthgate/users', {
      email: user.email, password: user.password, name: user.name,
      businesses: [{ id: 'biz_engines', name: 'Analytical Engines' }, { id: 'biz_looms', name: 'Jacquard Looms' }],
    });
    const client = await adminPost(node, '/oauthgate/clients', {
      name: ex.app, grant_types: ['authorization_code'], scopes: ex.scope.split(' '),
      redirect_uris: ['http://127.0.0.1/cb'],
    });
    const context = await browser.newContext({ viewport: { width: 640, height: 560 }, deviceScaleFactor: 1 });
    t.after(() => context.close());
    const page = await context.newPage();
    // The app's redirect target is not served; the test stops there.
    await page.route('http://127.0.0.1/cb**', (route) => route.fulfill({ status: 200, body: 'callback' }));

    const auth = new URL(node.metadata.authorization_endpoint);
    auth.search = new URLSearchParams({ response_type: 'code', client_id: client.client_id, redirect_uri: 'http://127.0.0.1/cb', scope: ex.scope, state: 'brand' }).toString();
    await page.goto(auth.toString());
    await page.waitForURL(/\/sign-in\?/);
    assert.equal(await page.title(), `Sign in to ${ex.brand}`);
    const header = page.locator('header.brand');
    assert.equal(await header.locator('.brand-name').textContent(), ex.brand);
    assert.equal((await header.locator('.logo.mark').textContent()).trim(), ex.mark);
    const mark = await colours(header.locator('.logo.mark'));
    assert.equal(mark.background, hexToRgb(ex.accent), 'the mark is drawn in the accent colour');
    assert.ok(contrast(mark.background, mark.color) >= 4.5, `mark text contrast ${contrast(mark.background, mark.color)}`);
    const button = await colours(page.getByRole('button', { name: 'Sign in' }));
    assert.equal(button.background, hexToRgb(ex.accent));
    assert.ok(contrast(button.background, button.color) >= 4.5, `button text contrast ${contrast(button.background, button.color)}`);
    assert.ok(!(await page.content()).includes('oauthgate account'));
    await page.getByLabel('E-mail address').fill(user.email);
    mkdirSync(shotDir, { recursive: true });
    await page.screenshot({ path: path.join(shotDir, `brand-${ex.dir}-sign-in.png`), fullPage: true });

    await page.getByLabel('Password').fill(user.password);
    await Promise.all([page.waitForURL(/\/consent\?request=/), page.getByRole('button', { name: 'Sign in' }).click()]);
    assert.equal(await page.title(), `Allow ${ex.app} to access ${ex.brand}`);
    await page.getByRole('heading', { name: `${ex.app} wants to access your ${ex.brand} account` }).waitFor();
    assert.equal((await page.locator('.avatar.platform .logo.mark').textContent()).trim(), ex.mark);
    const allow = await colours(page.getByRole('button', { name: 'Allow' }));
    assert.equal(allow.background, hexToRgb(ex.accent));
    assert.ok(contrast(allow.background, allow.color) >= 4.5);
    const signOut = page.getByRole('button', { name: 'Sign out' });
    assert.ok(await signOut.isVisible(), 'the consent page offers sign-out');
    const link = await colours(signOut);
    assert.ok(contrast(link.color, 'rgb(243, 244, 248)') >= 4.5, `sign-out link contrast ${contrast(link.color, 'rgb(243, 244, 248)')}`);
    await page.screenshot({ path: path.join(shotDir, `brand-${ex.dir}-consent.png`), fullPage: true });

    await Promise.all([page.waitForURL(/\/sign-out$/), signOut.click()]);
    await page.getByRole('status').filter({ hasText: 'You are signed out' }).waitFor();
    assert.equal(await page.title(), `Signed out of ${ex.brand}`);
    if (ex.dir === 'yionstack') {
      await page.screenshot({ path: path.join(shotDir, `brand-${ex.dir}-signed-out.png`), fullPage: true });
    }
  });
}
