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
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot, startCaddy, adminRequest, launchBrowser, stopAll } from './harness.mjs';

const shotDir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(repoRoot, 'docs', 'img') : tmpdir();

const user = { email: 'ada@example.com', password: 'brand-password-1', name: 'Ada Lovelace' };

let browser;

// startExample runs one example Caddyfile on free ports with a fresh store.
function startExample(name) {
  return startCaddy({ caddyfile: path.join('examples', name, 'Caddyfile') });
}

async function adminPost(node, p, body) {
  const r = await adminRequest(node, 'POST', p, body);
  assert.equal(r.status, 201, r.text);
  return r.json;
}

before(async () => {
  browser = await launchBrowser();
});

after(stopAll);

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
      t.skip("no browser could start");
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
