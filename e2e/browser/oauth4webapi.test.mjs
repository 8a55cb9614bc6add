// oauth4webapi, unmodified, against the root demo Caddyfile (registration
// open): it discovers the protected resource (RFC 9728,
// resourceDiscoveryRequest) and from it the authorization server (RFC
// 8414), registers a confidential client dynamically (RFC 7591), runs the
// authorization-code flow with PKCE and `resource` (RFC 8707) with the user
// in Chromium, calls the protected API with the token, then reads, updates
// and deletes its registration with the registration access token (RFC
// 7592), after which its tokens and its registration token are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import * as oauth from 'oauth4webapi';
import { startCaddy, freePort, launchBrowser, newPage, stopAll } from './harness.mjs';

const demoUser = { email: 'demo@example.com', password: 'demo-password' };
const insecure = { [oauth.allowInsecureRequests]: true }; // the test gateway is plain http on loopback

let node, issuer;

before(async () => {
  node = await startCaddy();
  issuer = node.issuer;
  await launchBrowser();
});

after(stopAll);

// refusal awaits a request oauth4webapi refuses for its WWW-Authenticate
// challenge, and returns the status and the Bearer challenge's parameters
// as the library parsed them.
async function refusal(request) {
  const err = await request.then(() => null, (e) => e);
  assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, `want a challenge, got ${err}`);
  const bearer = err.cause.find((c) => c.scheme === 'bearer');
  assert.ok(bearer, JSON.stringify(err.cause));
  return { status: err.status, ...bearer.parameters };
}

test('oauth4webapi: resource discovery, dynamic registration, code flow with resource, protected call, RFC 7592', async (t) => {
  const page = await newPage(t);
  if (!page) return;

  // RFC 9728: from the resource identifier to its authorization server.
  const resource = new URL(`${issuer}/api/v1`);
  const rs = await oauth.processResourceDiscoveryResponse(resource,
    await oauth.resourceDiscoveryRequest(resource, insecure));
  assert.equal(rs.resource, resource.href);
  assert.deepEqual(rs.authorization_servers, [issuer]);
  assert.ok(rs.scopes_supported.includes('read:invoices'), JSON.stringify(rs));
  const issuerURL = new URL(rs.authorization_servers[0]);
  const as = await oauth.processDiscoveryResponse(issuerURL,
    await oauth.discoveryRequest(issuerURL, { algorithm: 'oauth2', ...insecure }));
  assert.equal(as.registration_endpoint, `${issuer}/oauth/register`);

  // RFC 7591: a confidential client with a loopback redirect URI.
  const callbackPort = await freePort();
  const redirectURI = `http://127.0.0.1:${callbackPort}/cb`;
  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(as, {
      client_name: 'Invoice Robot', redirect_uris: [redirectURI], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', scope: 'read:invoices offline_access',
      software_id: 'invoice-robot', software_version: '1.0.0', contacts: ['robots@example.com'],
    }, insecure));
  assert.ok(registered.client_id && registered.client_secret && registered.registration_access_token, JSON.stringify(registered));
  assert.equal(registered.client_secret_expires_at, 0);
  assert.equal(registered.registration_client_uri, `${issuer}/oauth/register/${registered.client_id}`);
  const client = { client_id: registered.client_id };
  const clientAuth = oauth.ClientSecretBasic(registered.client_secret);

  // The code flow with PKCE and resource; the browser lands on the
  // client's loopback listener.
  let callbackURL;
  const listener = createServer((req, res) => {
    const u = new URL(req.url, redirectURI);
    if (u.pathname === '/cb') callbackURL = u;
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('done');
  });
  await new Promise((r) => listener.listen(callbackPort, '127.0.0.1', r));
  t.after(() => new Promise((r) => listener.close(r)));
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authURL = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: client.client_id, redirect_uri: redirectURI, scope: 'read:invoices',
    state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    resource: resource.href,
  })) authURL.searchParams.set(k, v);
  await page.goto(authURL.href);
  await page.getByLabel('E-mail address').fill(demoUser.email);
  await page.getByLabel('Password').fill(demoUser.password);
  await Promise.all([page.waitForURL(/\/oauth\/consent\?request=/), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.getByRole('note').filter({ hasText: 'Unverified app.' }).waitFor();
  await page.getByLabel('Business').selectOption('biz_acme');
  await Promise.all([page.waitForURL(`${redirectURI}**`), page.getByRole('button', { name: 'Allow' }).click()]);
  assert.ok(callbackURL, 'the browser did not come back');

  const params = oauth.validateAuthResponse(as, client, callbackURL, state);
  const tokens = await oauth.processAuthorizationCodeResponse(as, client,
    await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectURI, verifier,
      { additionalParameters: { resource: resource.href }, ...insecure }));
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
  assert.deepEqual([claims.aud].flat(), [resource.href]);
  assert.equal(claims.client_id, client.client_id);
  assert.equal(claims.authorized_business_id, 'biz_acme');

  // The protected call, through the gateway to the demo accounting upstream.
  const invoices = new URL(`${issuer}/api/v1/accounting/invoices`);
  const ok = await oauth.protectedResourceRequest(tokens.access_token, 'GET', invoices,
    new Headers({ 'x-business-id': 'biz_acme' }), null, insecure);
  assert.equal(ok.status, 200, await ok.clone().text());
  // Not a scope it was granted: write:invoices.
  const denied = await refusal(oauth.protectedResourceRequest(tokens.access_token, 'POST', invoices,
    new Headers({ 'x-business-id': 'biz_acme', 'content-type': 'application/json' }), '{}', insecure));
  assert.equal(denied.status, 403);
  assert.equal(denied.error, 'insufficient_scope');
  assert.equal(denied.resource_metadata, `${issuer}/.well-known/oauth-protected-resource/api/v1`);

  // RFC 7592 with the registration access token: read, update, delete.
  const manage = (method, body) => oauth.protectedResourceRequest(registered.registration_access_token, method,
    new URL(registered.registration_client_uri),
    new Headers(body ? { 'content-type': 'application/json', accept: 'application/json' } : { accept: 'application/json' }),
    body ? JSON.stringify(body) : null, insecure);
  const read = await manage('GET');
  assert.equal(read.status, 200);
  const current = await read.json();
  assert.equal(current.client_name, 'Invoice Robot');
  assert.equal(current.software_id, 'invoice-robot');
  assert.equal(current.client_secret, undefined, 'a read reveals the secret');

  const update = await manage('PUT', {
    client_id: client.client_id, client_secret: registered.client_secret, client_name: 'Invoice Robot 2',
    redirect_uris: [redirectURI], grant_types: ['authorization_code'], response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic', scope: 'read:invoices',
  });
  assert.equal(update.status, 200, await update.clone().text());
  const updated = await update.json();
  assert.equal(updated.client_name, 'Invoice Robot 2');
  assert.deepEqual(updated.grant_types, ['authorization_code']);
  assert.equal(updated.scope, 'read:invoices');

  // An update outside the policy is refused, and changes nothing.
  const refused = await manage('PUT', {
    client_id: client.client_id, redirect_uris: ['https://*.example.com/cb'], token_endpoint_auth_method: 'client_secret_basic',
  });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error, 'invalid_redirect_uri');
  assert.equal((await (await manage('GET')).json()).client_name, 'Invoice Robot 2');

  const del = await manage('DELETE');
  assert.equal(del.status, 204);
  // Gone: its registration token, its access token, its refresh token.
  const again = await refusal(manage('GET'));
  assert.equal(again.status, 401);
  assert.equal(again.error, 'invalid_token');
  const gone = await refusal(oauth.protectedResourceRequest(tokens.access_token, 'GET', invoices,
    new Headers({ 'x-business-id': 'biz_acme' }), null, insecure));
  assert.equal(gone.status, 401);
  assert.equal(gone.error, 'invalid_token');
  const refresh = await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, insecure);
  assert.equal(refresh.status, 401);
});
