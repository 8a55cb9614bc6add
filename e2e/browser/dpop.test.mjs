// DPoP (RFC 9449) with a real client, unmodified: oauth4webapi's DPoP
// support runs the authorization-code flow (Chromium signs in and
// consents), a refresh and a protected call through oauth_protect, for a
// public client registered with dpop_bound_access_tokens. Then proofs a
// client library would never send, made here with WebCrypto and the same
// key, are refused: a replay, another URL, another method, another key, a
// stale iat, and the stolen DPoP-bound token sent as Bearer or with no
// proof, each with WWW-Authenticate: DPoP and RFC 9449's error code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { startCaddy, createClient, newPage, launchBrowser, stopAll } from './harness.mjs';

const demoUser = { email: 'demo@example.com', password: 'demo-password' };
const insecure = { [oauth.allowInsecureRequests]: true };

let node, issuer;

before(async () => {
  node = await startCaddy({ readyPath: '/.well-known/oauth-authorization-server' });
  issuer = node.issuer;
  await launchBrowser();
});

after(stopAll);

const b64u = (buf) => Buffer.from(buf).toString('base64url');

// proof signs a DPoP proof with a WebCrypto ES256 key pair, as RFC 9449
// §4.2 describes it (the key pair must be extractable for its jwk).
async function proof(keyPair, { htm = 'GET', htu, ath, iat = Math.floor(Date.now() / 1000), jti = randomUUID() }) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } };
  const claims = { jti, htm, htu, iat };
  if (ath) claims.ath = ath;
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keyPair.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64u(sig)}`;
}

async function athOf(token) {
  return b64u(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)));
}

test('oauth4webapi: code flow, refresh and a protected call with DPoP; forged proofs refused', async (t) => {
  const page = await newPage(t);
  if (!page) return;

  const redirectUri = `${issuer}/demo/callback`;
  const registered = await createClient(node, {
    name: 'DPoP SPA', public: true, grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['read:invoices', 'offline_access'], redirect_uris: [redirectUri], dpop_bound_access_tokens: true,
  });
  assert.equal(registered.dpop_bound_access_tokens, true);

  const as = await oauth.processDiscoveryResponse(new URL(issuer),
    await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oauth2', ...insecure }));
  assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'), 'RFC 9449 §5.1 metadata');
  const client = { client_id: registered.client_id };
  const clientAuth = oauth.None();
  const keyPair = await oauth.generateKeyPair('ES256', { extractable: true });
  const DPoP = oauth.DPoP(client, keyPair);

  // Authorization request with PKCE; Chromium signs in and allows.
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authURL = new URL(as.authorization_endpoint);
  authURL.search = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri, scope: 'read:invoices offline_access',
    state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  await page.goto(authURL.href);
  await page.getByLabel('E-mail address').fill(demoUser.email);
  await page.getByLabel('Password').fill(demoUser.password);
  await Promise.all([page.waitForURL(/\/oauth\/consent\?request=/), page.getByRole('button', { name: 'Sign in' }).click()]);
  await Promise.all([page.waitForURL(/\/demo\/callback\?/), page.getByRole('button', { name: 'Allow' }).click()]);
  const params = oauth.validateAuthResponse(as, client, new URL(page.url()), state);

  let tokens = await oauth.processAuthorizationCodeResponse(as, client,
    await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, verifier, { DPoP, ...insecure }));
  assert.equal(tokens.token_type, 'dpop');
  // RFC 7638: the thumbprint of the key, which cnf.jkt must be.
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  const jkt = b64u(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify({ crv, kty, x, y }))));
  const atClaims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
  assert.equal(atClaims.cnf?.jkt, jkt, 'the access token is bound to the key (cnf.jkt)');

  const invoices = new URL(`${issuer}/api/v1/accounting/invoices`);
  const call = async (at) => oauth.protectedResourceRequest(at, 'GET', invoices,
    new Headers({ 'x-business-id': 'biz_acme' }), null, { DPoP, ...insecure });
  let res = await call(tokens.access_token);
  assert.equal(res.status, 200, await res.clone().text());
  const seen = (await res.json())[0].seen_by_upstream;
  assert.equal(seen.authorization, '', 'the upstream never sees the token');

  // A refresh with oauth4webapi: the refresh token is bound to the key.
  tokens = await oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, { DPoP, ...insecure }));
  assert.equal(tokens.token_type, 'dpop');
  res = await call(tokens.access_token);
  assert.equal(res.status, 200);

  // The bound refresh token without a proof: refused, and not spent.
  const stolenRefresh = await fetch(as.token_endpoint, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id }),
  });
  assert.equal(stolenRefresh.status, 400);
  assert.equal((await stolenRefresh.json()).error, 'invalid_dpop_proof');

  // Forged and misused proofs, with the same key unless said otherwise.
  const at = tokens.access_token;
  const ath = await athOf(at);
  const send = (scheme, proofs, { method = 'GET', url = invoices } = {}) => {
    const headers = new Headers({ authorization: `${scheme} ${at}`, 'x-business-id': 'biz_acme' });
    for (const p of proofs) headers.append('dpop', p);
    return fetch(url, { method, headers });
  };
  const replayed = await proof(keyPair, { htu: invoices.href, ath });
  assert.equal((await send('DPoP', [replayed])).status, 200, 'a proof made here is accepted once');
  const otherKey = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const cases = [
    ['a replayed proof', 'DPoP', [replayed], {}, 'invalid_dpop_proof'],
    ['a proof for another URL', 'DPoP', [await proof(keyPair, { htu: `${issuer}/api/v1/crm/contacts`, ath })], {}, 'invalid_dpop_proof'],
    ['a proof for another method', 'DPoP', [await proof(keyPair, { htm: 'POST', htu: invoices.href, ath })], {}, 'invalid_dpop_proof'],
    ['a proof signed by another key', 'DPoP', [await proof(otherKey, { htu: invoices.href, ath })], {}, 'invalid_token'],
    ['a stale proof', 'DPoP', [await proof(keyPair, { htu: invoices.href, ath, iat: Math.floor(Date.now() / 1000) - 600 })], {}, 'invalid_dpop_proof'],
    ['two DPoP headers', 'DPoP', [await proof(keyPair, { htu: invoices.href, ath }), await proof(keyPair, { htu: invoices.href, ath })], {}, 'invalid_dpop_proof'],
    ['the stolen token as Bearer', 'Bearer', [], {}, 'invalid_token'],
    ['the stolen token as Bearer with a proof', 'Bearer', [await proof(keyPair, { htu: invoices.href, ath })], {}, 'invalid_token'],
    ['the stolen token with no proof', 'DPoP', [], {}, 'invalid_dpop_proof'],
  ];
  for (const [name, scheme, proofs, opts, code] of cases) {
    const r = await send(scheme, proofs, opts);
    assert.equal(r.status, 401, `${name}: status ${r.status}`);
    const challenge = r.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^DPoP /, `${name}: challenge ${challenge}`);
    assert.match(challenge, new RegExp(`error="${code}"`), `${name}: ${challenge}`);
    assert.match(challenge, /algs="[^"]*ES256/, `${name}: algs in ${challenge}`);
    assert.equal((await r.json()).error, code, name);
  }
  assert.doesNotMatch(node.log(), new RegExp(at.split('.')[2]), 'no token in the log');

  // The RFC 9728 metadata named in the challenge advertises them too.
  const challenge = (await send('Bearer', [])).headers.get('www-authenticate');
  const prm = challenge.match(/resource_metadata="([^"]+)"/)?.[1];
  assert.ok(prm, `resource_metadata in ${challenge}`);
  const prmDoc = await (await fetch(prm)).json();
  assert.ok(prmDoc.dpop_signing_alg_values_supported?.includes('ES256'), JSON.stringify(prmDoc));

  // Discovery advertises the algorithms in both documents.
  const oidc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  assert.ok(oidc.dpop_signing_alg_values_supported.includes('ES256'));
});

// With server nonces on (e2e/testdata/dpop.Caddyfile, one secret), the
// library's first token request is answered use_dpop_nonce with the
// nonce; it retries with it, as RFC 9449 §8 expects, and the protected
// call with the same nonce passes.
test('oauth4webapi with server nonces: use_dpop_nonce, retry, protected call', async () => {
  const nn = await startCaddy({ caddyfile: 'e2e/testdata/dpop.Caddyfile', env: { DPOP_NONCE_SECRET: 'node-test-nonce-secret' },
    readyPath: '/.well-known/oauth-authorization-server' });
  const registered = await createClient(nn, { name: 'Nonce service', grant_types: ['client_credentials'], scopes: ['read:invoices'] });
  const as = await oauth.processDiscoveryResponse(new URL(nn.issuer),
    await oauth.discoveryRequest(new URL(nn.issuer), { algorithm: 'oauth2', ...insecure }));
  const client = { client_id: registered.client_id };
  const auth = oauth.ClientSecretBasic(registered.client_secret);
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('EdDSA'));
  const grant = async () => oauth.processClientCredentialsResponse(as, client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: 'read:invoices' }), { DPoP, ...insecure }));
  let tokens;
  let nonceErrors = 0;
  try {
    tokens = await grant();
  } catch (err) {
    assert.ok(oauth.isDPoPNonceError(err), `the first attempt fails only for the nonce: ${err} ${err.error} ${err.error_description} ${JSON.stringify(err.cause)}`);
    nonceErrors++;
    tokens = await grant();
  }
  assert.equal(nonceErrors, 1, 'the server asked for its nonce once');
  assert.equal(tokens.token_type, 'dpop');
  const res = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(`${nn.issuer}/api/v1/invoices`),
    new Headers(), null, { DPoP, ...insecure });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'authorization=[] dpop=[]');
});
