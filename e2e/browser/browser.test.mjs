// A real browser through the authorization-code flow: Debian's Chromium,
// driven by playwright-core, against the demo Caddyfile run by the built
// binary. It signs in as the demo user, allows and denies on the consent
// page, follows the redirects to the demo app's callback, exchanges the
// code and calls the gateway with the token. It signs out from the consent
// page, from the end_session_endpoint's question, and by RP-initiated
// logout with an id_token_hint, each time finding that the next
// authorization asks to sign in again. A screenshot of the consent
// page goes to the system temp dir, or with UPDATE_SCREENSHOTS=1 to
// docs/img/consent.png for the README.
//
//   npm ci && npm test                (builds the binary with go build)
//   CADDY_BIN=/path/to/caddy npm test (uses a binary already built)
//
// Under CI=true a browser that cannot start fails the run instead of
// skipping it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot, startCaddy, createClient, launchBrowser, newPage, stopAll } from './harness.mjs';

const demoUser = { email: 'demo@example.com', password: 'demo-password' };
const demoClient = { id: 'demo-app', secret: 'demo-app-secret' };

let node, issuer;

before(async () => {
  node = await startCaddy({ readyPath: '/.well-known/oauth-authorization-server' });
  issuer = node.issuer;
  await launchBrowser();
});

after(stopAll);

async function signIn(page) {
  assert.match(page.url(), /\/oauth\/sign-in/);
  await page.getByLabel('E-mail address').fill(demoUser.email);
  await page.getByLabel('Password').fill(demoUser.password);
  await Promise.all([page.waitForURL(/\/oauth\/consent\?request=/), page.getByRole('button', { name: 'Sign in' }).click()]);
}

async function exchange(code, verifier) {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${issuer}/demo/callback` });
  if (verifier) body.set('code_verifier', verifier);
  const r = await fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: { Authorization: 'Basic ' + Buffer.from(`${demoClient.id}:${demoClient.secret}`).toString('base64') },
    body,
  });
  return { status: r.status, json: await r.json() };
}

test('sign in, allow on the consent page, exchange the code at the callback', async (t) => {
  const page = await newPage(t);
  if (!page) return;

  await page.goto(`${issuer}/demo/`);
  const connect = page.locator('#connect');
  const state = new URL(await connect.getAttribute('href'), issuer).searchParams.get('state');
  assert.ok(state, 'the demo link carries a state');
  await Promise.all([page.waitForURL(/\/oauth\/sign-in/), connect.click()]);
  assert.equal(await page.title(), 'Sign in to oauthgate');
  await expectText(page, 'to continue to Ledgerly');

  // A wrong password first: one message, whichever of the two was wrong.
  await page.getByLabel('E-mail address').fill(demoUser.email);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page, 'The e-mail address or password is incorrect.');

  const consent = page.waitForResponse((r) => r.url().includes('/oauth/consent?request='));
  await signIn(page);
  const headers = (await consent).headers();
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(headers['cache-control'], 'no-store');
  assert.equal(headers['referrer-policy'], 'no-referrer');

  await expectText(page, 'Ledgerly wants to access your oauthgate account');
  await expectText(page, 'Demo User');
  await expectText(page, 'demo@example.com');
  await expectText(page, 'View invoices, line items, and payment status');
  await expectText(page, 'View CRM contacts and companies');
  const select = page.getByLabel('Business');
  assert.equal(await select.inputValue(), 'biz_acme', 'the current business is preselected');
  assert.deepEqual(await select.locator('option').allTextContents(), ['Acme Ltd', 'Globex']);

  const shotDir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(repoRoot, 'docs', 'img') : tmpdir();
  mkdirSync(shotDir, { recursive: true });
  const shot = path.join(shotDir, 'consent.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`consent page screenshot: ${shot}`);

  await select.selectOption('biz_globex');
  await Promise.all([page.waitForURL(/\/demo\/callback\?/), page.getByRole('button', { name: 'Allow' }).click()]);
  await expectText(page, 'Connected');
  const cb = new URL(page.url());
  assert.equal(cb.searchParams.get('state'), state);
  assert.equal(cb.searchParams.get('iss'), issuer);
  const code = await page.locator('#code').textContent();
  assert.equal(code, cb.searchParams.get('code'));

  const { status, json } = await exchange(code);
  assert.equal(status, 200, JSON.stringify(json));
  assert.equal(json.token_type, 'Bearer');
  assert.ok(json.access_token && json.refresh_token && json.id_token);
  const idClaims = JSON.parse(Buffer.from(json.id_token.split('.')[1], 'base64url'));
  assert.equal(idClaims.authorized_business_id, 'biz_globex');
  assert.equal(idClaims.user_email, demoUser.email);

  const api = (business) => fetch(`${issuer}/api/v1/accounting/invoices`, {
    headers: { Authorization: `Bearer ${json.access_token}`, 'x-business-id': business },
  });
  assert.equal((await api('biz_globex')).status, 200);
  const foreign = await api('biz_acme');
  assert.equal(foreign.status, 403);
  assert.equal((await foreign.json()).error, 'business_not_allowed');

  // The code is single-use.
  assert.equal((await exchange(code)).json.error, 'invalid_grant');
});

test('deny on the consent page sends access_denied back with state and iss', async (t) => {
  const page = await newPage(t);
  if (!page) return;

  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL(`${issuer}/oauth/authorize`);
  auth.search = new URLSearchParams({
    response_type: 'code',
    client_id: demoClient.id,
    redirect_uri: `${issuer}/demo/callback`,
    scope: 'openid read:invoices',
    state: 'deny-state',
    // The first test's consent is remembered; ask for the screen anyway.
    prompt: 'consent',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  await page.goto(auth.toString());
  await signIn(page);
  await expectText(page, 'Ledgerly wants to access your oauthgate account');
  await Promise.all([page.waitForURL(/\/demo\/callback\?/), page.getByRole('button', { name: 'Deny' }).click()]);
  const cb = new URL(page.url());
  assert.equal(cb.searchParams.get('error'), 'access_denied');
  assert.equal(cb.searchParams.get('state'), 'deny-state');
  assert.equal(cb.searchParams.get('iss'), issuer);
  assert.equal(cb.searchParams.get('code'), null);
  await expectText(page, 'Not connected');

  // Signed in now: allowing the same request yields a code that needs the
  // PKCE verifier.
  await page.goto(auth.toString());
  await page.waitForURL(/\/oauth\/consent\?request=/);
  await Promise.all([page.waitForURL(/\/demo\/callback\?/), page.getByRole('button', { name: 'Allow' }).click()]);
  const code = new URL(page.url()).searchParams.get('code');
  assert.ok(code);
  const { status, json } = await exchange(code, verifier);
  assert.equal(status, 200, JSON.stringify(json));
});

async function expectText(page, text) {
  await page.getByText(text, { exact: false }).first().waitFor({ timeout: 10_000 });
}

test('signing out, from the consent page or the end_session_endpoint, means signing in again', async (t) => {
  const page = await newPage(t);
  if (!page) return;

  const auth = new URL(`${issuer}/oauth/authorize`);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id: demoClient.id, redirect_uri: `${issuer}/demo/callback`,
    scope: 'read:invoices', state: 'sign-out', prompt: 'consent',
  }).toString();
  await page.goto(auth.toString());
  await signIn(page);
  await expectText(page, `Signed in as ${demoUser.email}`);
  await Promise.all([page.waitForURL(/\/oauth\/sign-out$/), page.getByRole('button', { name: 'Sign out' }).click()]);
  await page.getByRole('status').filter({ hasText: 'You are signed out' }).waitFor();
  assert.equal(await page.title(), 'Signed out of oauthgate');

  // The same authorization request now asks to sign in.
  await page.goto(auth.toString());
  await page.waitForURL(/\/oauth\/sign-in\?/);
  await page.getByLabel('Password').waitFor();

  // RP-initiated logout without an id_token_hint asks first.
  await signIn(page);
  const md = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  assert.equal(md.end_session_endpoint, `${issuer}/oauth/sign-out`);
  await page.goto(md.end_session_endpoint);
  await page.getByRole('heading', { name: 'Sign out of oauthgate?' }).waitFor();
  await expectText(page, demoUser.email);
  await Promise.all([page.waitForURL(/\/oauth\/sign-out$/), page.locator('.card').getByRole('button', { name: 'Sign out' }).click()]);
  await page.getByRole('status').filter({ hasText: 'You are signed out' }).waitFor();
  await page.goto(auth.toString());
  await page.waitForURL(/\/oauth\/sign-in\?/);
});


test('RP-initiated logout with id_token_hint returns to the app with its state', async (t) => {
  const page = await newPage(t);
  if (!page) return;
  const app = await createClient(node, {
    name: 'Signout Demo', grant_types: ['authorization_code'], scopes: ['openid', 'read:invoices'],
    redirect_uris: [`${issuer}/demo/callback`], post_logout_redirect_uris: [`${issuer}/demo/`],
  });
  const auth = new URL(`${issuer}/oauth/authorize`);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id: app.client_id, redirect_uri: `${issuer}/demo/callback`, scope: 'openid read:invoices', state: 'rp',
  }).toString();
  await page.goto(auth.toString());
  await signIn(page);
  await Promise.all([page.waitForURL(/\/demo\/callback\?/), page.getByRole('button', { name: 'Allow' }).click()]);
  const code = new URL(page.url()).searchParams.get('code');
  const r = await fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: { Authorization: 'Basic ' + Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64') },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${issuer}/demo/callback` }),
  });
  const { id_token: idToken } = await r.json();
  assert.ok(idToken, 'an id_token to hint with');

  // An unregistered post_logout_redirect_uri: an error page, still signed in.
  const bad = new URL(`${issuer}/oauth/sign-out`);
  bad.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: 'https://evil.example/', state: 'x' }).toString();
  const badResp = await page.goto(bad.toString());
  assert.equal(badResp.status(), 400);
  assert.equal(new URL(page.url()).host, new URL(issuer).host);
  await expectText(page, 'not registered');

  const out = new URL(`${issuer}/oauth/sign-out`);
  out.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: `${issuer}/demo/`, state: 'bye-1' }).toString();
  await page.goto(out.toString());
  await page.waitForURL(`${issuer}/demo/?state=bye-1`);

  await page.goto(auth.toString());
  await page.waitForURL(/\/oauth\/sign-in\?/);
});
