// The connected-apps page (/oauth/account) in a real browser: a signed-out
// visit goes to sign-in and comes back; the demo user authorizes two apps
// for two businesses, sees both with their scopes, disconnects one, and
// that app's refresh token is refused (invalid_grant), its access token
// gets 401 at the gateway and its next authorization request asks for
// consent again, while the other app keeps working. A screenshot goes to
// the system temp dir, or with UPDATE_SCREENSHOTS=1 to
// docs/img/connected-apps.png for the README.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot, startCaddy, createClient, launchBrowser, newPage, stopAll } from './harness.mjs';

const demoUser = { email: 'demo@example.com', password: 'demo-password' };

let node, issuer;

before(async () => {
  node = await startCaddy();
  issuer = node.issuer;
  await launchBrowser();
});

after(stopAll);

const basic = (c) => 'Basic ' + Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64');

async function token(c, params) {
  const r = await fetch(`${issuer}/oauth/token`, {
    method: 'POST', headers: { Authorization: basic(c) }, body: new URLSearchParams(params),
  });
  return { status: r.status, json: await r.json() };
}

// authorizeURL is a PKCE authorization request of client c.
function authorizeURL(c, scope, state, extra = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const u = new URL(`${issuer}/oauth/authorize`);
  u.search = new URLSearchParams({
    response_type: 'code', client_id: c.client_id, redirect_uri: `${issuer}/demo/callback`, scope, state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', ...extra,
  }).toString();
  return { url: u.toString(), verifier };
}

// connect runs the browser through consent for business and returns the
// tokens.
async function connect(page, c, scope, business) {
  const { url, verifier } = authorizeURL(c, scope, `connect-${c.client_id}`);
  await page.goto(url);
  if (/\/oauth\/sign-in/.test(page.url())) {
    await page.getByLabel('E-mail address').fill(demoUser.email);
    await page.getByLabel('Password').fill(demoUser.password);
    await Promise.all([page.waitForURL(/\/oauth\/consent\?request=/), page.getByRole('button', { name: 'Sign in' }).click()]);
  }
  await page.getByLabel('Business').selectOption(business);
  await Promise.all([page.waitForURL(/\/demo\/callback\?/), page.getByRole('button', { name: 'Allow' }).click()]);
  const code = new URL(page.url()).searchParams.get('code');
  assert.ok(code, `no code for ${c.name}: ${page.url()}`);
  const r = await token(c, { grant_type: 'authorization_code', code, redirect_uri: `${issuer}/demo/callback`, code_verifier: verifier });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json;
}

test('connected apps: see what holds access, disconnect one, and it must ask again', async (t) => {
  const page = await newPage(t, { viewport: { width: 1000, height: 900 } });
  if (!page) return;
  const spec = (name, scopes) => ({
    name, grant_types: ['authorization_code', 'refresh_token'], scopes, redirect_uris: [`${issuer}/demo/callback`],
  });
  const books = await createClient(node, spec('Northwind Books', ['offline_access', 'read:invoices', 'write:invoices']));
  const crm = await createClient(node, spec('Pipeline CRM', ['openid', 'offline_access', 'read:contacts', 'write:contacts']));

  // Signed out: the page sends the browser to sign in, then back.
  const first = await page.goto(`${issuer}/oauth/account`);
  assert.match(page.url(), /\/oauth\/sign-in\?return_to=%2Foauth%2Faccount$/);
  assert.ok(first.ok());
  await page.getByLabel('E-mail address').fill(demoUser.email);
  await page.getByLabel('Password').fill(demoUser.password);
  await Promise.all([page.waitForURL(`${issuer}/oauth/account`), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.getByRole('heading', { name: 'No connected apps' }).waitFor();

  const booksTok = await connect(page, books, 'offline_access read:invoices write:invoices', 'biz_acme');
  const crmTok = await connect(page, crm, 'openid offline_access read:contacts', 'biz_globex');
  // A refresh, so the page has something to say about it.
  const refreshed = await token(crm, { grant_type: 'refresh_token', refresh_token: crmTok.refresh_token });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.json));

  // The consent page links to the connected-apps page, beside sign-out.
  await page.goto(authorizeURL(books, 'read:invoices', 'link', { prompt: 'consent' }).url);
  await page.waitForURL(/\/oauth\/consent\?request=/);
  await Promise.all([page.waitForURL(`${issuer}/oauth/account`), page.getByRole('link', { name: 'Connected apps' }).click()]);

  const resp = await page.reload();
  const h = resp.headers();
  assert.equal(h['x-frame-options'], 'DENY');
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(h['cache-control'], 'no-store');
  assert.equal(await page.title(), 'Connected apps · oauthgate');
  await page.getByRole('heading', { name: 'Connected apps', level: 1 }).waitFor();
  const acme = page.getByRole('region', { name: /Acme Ltd/ });
  const globex = page.getByRole('region', { name: /Globex/ });
  await acme.getByRole('heading', { name: 'Northwind Books' }).waitFor();
  await globex.getByRole('heading', { name: 'Pipeline CRM' }).waitFor();
  await acme.getByText('Create, update, and send invoices').waitFor();
  await globex.getByText('View CRM contacts and companies').waitFor();
  assert.equal(await acme.getByText('Not refreshed yet').count(), 1);
  assert.equal(await globex.getByText(/Last refreshed just now/).count(), 1);
  assert.equal(await page.getByRole('link', { name: 'Connected apps' }).getAttribute('aria-current'), 'page');

  const shotDir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(repoRoot, 'docs', 'img') : tmpdir();
  mkdirSync(shotDir, { recursive: true });
  const shot = path.join(shotDir, 'connected-apps.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`connected-apps page screenshot: ${shot}`);

  // Disconnect by keyboard, as a person without a mouse would.
  const button = page.getByRole('button', { name: 'Disconnect Northwind Books' });
  await button.focus();
  await Promise.all([page.waitForURL(/\/oauth\/account\?disconnected=/), page.keyboard.press('Enter')]);
  await page.getByRole('status').filter({ hasText: 'Northwind Books was disconnected' }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Northwind Books' }).count(), 0);
  await page.getByRole('heading', { name: 'Pipeline CRM' }).waitFor();

  // Its tokens are dead; the other app's are not.
  const again = await token(books, { grant_type: 'refresh_token', refresh_token: booksTok.refresh_token });
  assert.equal(again.status, 400);
  assert.equal(again.json.error, 'invalid_grant');
  const api = (tok, path, business) => fetch(`${issuer}${path}`, { headers: { Authorization: `Bearer ${tok}`, 'x-business-id': business } });
  assert.equal((await api(booksTok.access_token, '/api/v1/accounting/invoices', 'biz_acme')).status, 401);
  assert.equal((await api(refreshed.json.access_token, '/api/v1/crm/contacts', 'biz_globex')).status, 200);

  // Its consent is forgotten: prompt=none is refused, and an interactive
  // request shows the consent screen again.
  await page.goto(authorizeURL(books, 'read:invoices', 'silent', { prompt: 'none' }).url);
  const silent = new URL(page.url());
  assert.equal(silent.searchParams.get('error'), 'consent_required');
  assert.equal(silent.searchParams.get('state'), 'silent');
  await page.goto(authorizeURL(books, 'read:invoices', 'again').url);
  await page.waitForURL(/\/oauth\/consent\?request=/);
  await page.getByText('Northwind Books wants to access your oauthgate account').waitFor();
});
