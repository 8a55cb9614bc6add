// The developer portal (/oauth/developer) in a real browser, on the root
// demo Caddyfile: the demo user signs in from the portal, registers an app
// (a refused redirect URI first: the message sits next to the field and no
// app is made), reads its client_id and client_secret off the one-time
// reveal, and a second submit of the same form makes nothing. The app then
// runs a real authorization-code + PKCE flow with openid-client; the user
// sees it on the connected-apps page and disconnects it: the refresh token
// is refused (invalid_grant), the access token gets 401 at the gateway and
// a new authorization request shows the consent screen again. Another
// developer can neither see nor change the app.
//
// Screenshots go to the system temp dir, or with UPDATE_SCREENSHOTS=1 to
// docs/img/ for the README and docs/browser-flow.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { repoRoot, startCaddy, adminRequest, launchBrowser, newPage, stopAll } from './harness.mjs';

const demoUser = { email: 'demo@example.com', password: 'demo-password' };
const rival = { email: 'rival@example.com', password: 'rival-developer-password', name: 'Rita Rival' };

let node, issuer;

before(async () => {
  node = await startCaddy();
  issuer = node.issuer;
  await launchBrowser();
  const r = await adminRequest(node, 'POST', '/oauthgate/users',
    { email: rival.email, password: rival.password, name: rival.name, businesses: [{ id: 'biz_rival', name: 'Rival Apps' }] });
  assert.equal(r.status, 201, r.text);
});

after(stopAll);

const shotDir = () => {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(repoRoot, 'docs', 'img') : tmpdir();
  mkdirSync(dir, { recursive: true });
  return dir;
};

async function screenshot(page, name) {
  const file = path.join(shotDir(), name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

async function signIn(page, user, returnTo) {
  await page.getByLabel('E-mail address').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await Promise.all([page.waitForURL(returnTo), page.getByRole('button', { name: 'Sign in' }).click()]);
}

test('developer portal: register an app, use it with openid-client, disconnect it, and keep it from others', async (t) => {
  const page = await newPage(t, { viewport: { width: 1040, height: 900 } });
  if (!page) return;
  const callback = `${issuer}/demo/callback`;

  // Signed out: the portal sends the browser to sign in, then back.
  await page.goto(`${issuer}/oauth/developer`);
  assert.match(page.url(), /\/oauth\/sign-in\?return_to=%2Foauth%2Fdeveloper$/);
  await signIn(page, demoUser, `${issuer}/oauth/developer`);
  const resp = await page.reload();
  const h = resp.headers();
  assert.equal(h['x-frame-options'], 'DENY');
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(h['cache-control'], 'no-store');
  await page.getByRole('heading', { name: 'Your apps', level: 1 }).waitFor();
  await page.getByRole('heading', { name: 'No apps yet' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Developer portal' }).getAttribute('aria-current'), 'page');

  // Register, with a mistake first.
  await Promise.all([page.waitForURL(`${issuer}/oauth/developer/new`), page.getByRole('link', { name: 'Register app' }).click()]);
  await page.getByLabel('App name').fill('Northwind Books');
  await page.getByLabel('Redirect URIs').fill(`${callback}\nhttp://books.example/callback`);
  await page.getByLabel('Confidential').check();
  await page.getByLabel('Confirm who you are').check();
  await page.getByLabel('Stay connected').check();
  await page.getByLabel('View invoices, line items').check();
  await page.getByLabel('Create, update, and send invoices').check();
  await page.getByLabel('Owning business').selectOption({ label: 'Acme Ltd' });
  await page.getByRole('button', { name: 'Register app' }).click();
  await page.getByText('Your app was not registered').waitFor();
  const uris = page.getByLabel('Redirect URIs');
  assert.equal(await uris.getAttribute('aria-invalid'), 'true');
  const msgID = await uris.getAttribute('aria-describedby');
  assert.match(await page.locator(`#${msgID}`).innerText(), /http:\/\/books\.example\/callback: http is allowed only for loopback hosts/);
  assert.equal(await page.getByLabel('App name').inputValue(), 'Northwind Books', 'what was typed is kept');
  assert.ok(await page.getByLabel('View invoices, line items').isChecked());
  await screenshot(page, 'developer-register.png');
  const none = await adminRequest(node, 'GET', '/oauthgate/clients');
  assert.equal(none.json.filter((c) => c.name === 'Northwind Books').length, 0, 'a refused form made an app');

  await uris.fill(callback);
  const form = {};
  for (const name of ['csrf_token', 'form_id']) form[name] = await page.locator(`input[name=${name}]`).first().inputValue();
  await page.getByRole('button', { name: 'Register app' }).click();
  await page.getByRole('heading', { name: 'Northwind Books is registered' }).waitFor();
  const clientId = await page.getByLabel('Client ID').inputValue();
  const clientSecret = await page.getByLabel('Client secret').inputValue();
  assert.match(clientId, /^[0-9a-f]{32}$/);
  assert.ok(clientSecret.length >= 43, clientSecret);
  await page.getByText('Copy the client secret now').waitFor();
  await screenshot(page, 'developer-secret.png');

  // The same form again (a double click, a resubmitted page): nothing new.
  const again = await page.request.post(`${issuer}/oauth/developer/new`, {
    form: { ...form, name: 'Northwind Books', redirect_uris: callback, client_type: 'confidential', business_id: 'biz_acme', scope: 'read:invoices' },
    maxRedirects: 0,
  });
  assert.equal(again.status(), 409);
  const againText = await again.text();
  assert.match(againText, /already registered/);
  assert.ok(!againText.includes(clientSecret), 'the second submit shows the secret');
  const all = await adminRequest(node, 'GET', '/oauthgate/clients');
  assert.deepEqual(all.json.filter((c) => c.name === 'Northwind Books').map((c) => c.client_id), [clientId]);

  // The list shows the app, and the secret never again.
  await Promise.all([page.waitForURL(/\/oauth\/developer\/apps\//), page.getByRole('link', { name: 'I have saved it' }).click()]);
  assert.ok(!(await page.content()).includes(clientSecret));
  await page.getByRole('heading', { name: 'Credentials' }).waitFor();
  await screenshot(page, 'developer-app.png');
  await page.goto(`${issuer}/oauth/developer`);
  const row = page.getByRole('listitem').filter({ hasText: 'Northwind Books' });
  await row.getByText(clientId).waitFor();
  await row.getByText(callback).waitFor();
  await row.getByText('Acme Ltd').waitFor();
  await row.getByText('write:invoices').waitFor();
  assert.ok(!(await page.content()).includes(clientSecret));
  await screenshot(page, 'developer-portal.png');

  // The app: authorization code + PKCE with openid-client.
  const config = await oidc.discovery(new URL(issuer), clientId, clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const authorize = async (state) => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: callback, scope: 'openid offline_access read:invoices', state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    return verifier;
  };
  const verifier = await authorize('portal-1');
  await page.waitForURL(/\/oauth\/consent\?request=/);
  await page.getByText('Northwind Books wants to access your oauthgate account').waitFor();
  await page.getByLabel('Business').selectOption('biz_acme');
  await Promise.all([page.waitForURL(/\/demo\/callback\?/), page.getByRole('button', { name: 'Allow' }).click()]);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: 'portal-1' });
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token);
  assert.equal(tokens.claims().authorized_business_id, 'biz_acme');
  const api = (tok) => fetch(`${issuer}/api/v1/accounting/invoices`, { headers: { Authorization: `Bearer ${tok}`, 'x-business-id': 'biz_acme' } });
  assert.equal((await api(tokens.access_token)).status, 200);
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal((await api(refreshed.access_token)).status, 200);

  // The user sees the app on the connected-apps page and disconnects it.
  await page.goto(`${issuer}/oauth/account`);
  const acme = page.getByRole('region', { name: /Acme Ltd/ });
  await acme.getByRole('heading', { name: 'Northwind Books' }).waitFor();
  await Promise.all([page.waitForURL(/\/oauth\/account\?disconnected=/),
    page.getByRole('button', { name: 'Disconnect Northwind Books' }).click()]);
  await page.getByRole('status').filter({ hasText: 'Northwind Books was disconnected' }).waitFor();

  await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token),
    (err) => err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant');
  assert.equal((await api(refreshed.access_token)).status, 401);
  assert.equal((await api(tokens.access_token)).status, 401);
  await authorize('portal-2');
  await page.waitForURL(/\/oauth\/consent\?request=/);
  await page.getByText('Northwind Books wants to access your oauthgate account').waitFor();

  // Another developer: not in their list, and not theirs to open or change.
  const other = await newPage(t);
  await other.goto(`${issuer}/oauth/developer`);
  await signIn(other, rival, `${issuer}/oauth/developer`);
  await other.getByRole('heading', { name: 'No apps yet' }).waitFor();
  assert.ok(!(await other.content()).includes(clientId));
  const open = await other.goto(`${issuer}/oauth/developer/apps/${clientId}`);
  assert.equal(open.status(), 404);
  await other.getByRole('heading', { name: 'No such app' }).waitFor();
  await other.goto(`${issuer}/oauth/developer/new`);
  const csrf = await other.locator('input[name=csrf_token]').first().inputValue();
  for (const [action, extra] of [['', { name: 'Stolen', redirect_uris: 'https://evil.example/cb' }], ['/secret', {}], ['/delete', {}]]) {
    const r = await other.request.post(`${issuer}/oauth/developer/apps/${clientId}${action}`, { form: { csrf_token: csrf, ...extra }, maxRedirects: 0 });
    assert.equal(r.status(), 404, `POST ${action || 'edit'} by another developer`);
  }
  const mine = await adminRequest(node, 'GET', `/oauthgate/clients/${clientId}`);
  assert.equal(mine.status, 200);
  assert.equal(mine.json.name, 'Northwind Books');
  assert.equal(mine.json.owner_business_id, 'biz_acme');
  assert.ok(mine.json.owner_id, 'the admin API shows who registered the app');
  assert.deepEqual(mine.json.redirect_uris, [callback]);
  // The secret still authenticates the app (a rotation would make this
  // invalid_client, 401): the token endpoint gets as far as the unknown
  // refresh token.
  const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const tokenCall = (secret) => fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: { Authorization: basic(clientId, secret), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=refresh_token&refresh_token=not-a-refresh-token',
  });
  const probe = await tokenCall(clientSecret);
  assert.equal(probe.status, 400);
  assert.equal((await probe.json()).error, 'invalid_grant', 'the secret was rotated by another developer');
  assert.equal((await tokenCall(`${clientSecret}x`)).status, 401, 'the token endpoint takes any secret');
});
