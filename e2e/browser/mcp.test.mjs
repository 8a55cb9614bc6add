// The official MCP TypeScript SDK, unmodified, through oauthgate: an MCP
// server that knows nothing of OAuth (the SDK's own server, Streamable HTTP
// transport, started here) sits behind examples/mcp/Caddyfile, and the
// SDK's client with its own OAuth support connects to the gateway's /mcp.
// From the first 401 it finds the resource's metadata (RFC 9728) and the
// authorization server's (RFC 8414), registers itself (RFC 7591), and sends
// the user through sign-in and consent in Chromium with PKCE and
// `resource` (RFC 8707); then it lists and calls a tool. The upstream never
// sees a token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { z } from 'zod';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCaddy, adminRequest, freePort, launchBrowser, newPage, stopAll } from './harness.mjs';

const demoUser = { email: 'demo@example.com', password: 'demo-password' };

let node, issuer, upstream;
// What the upstream MCP server saw: one entry per HTTP request.
const seen = [];

// startUpstream runs the SDK's MCP server in stateless Streamable HTTP mode
// (a server and transport per request), with one tool.
async function startUpstream() {
  const port = await freePort();
  const srv = createServer(async (req, res) => {
    seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    const mcp = new McpServer({ name: 'calculator', version: '1.0.0' });
    mcp.registerTool('add', { description: 'Add two numbers', inputSchema: { a: z.number(), b: z.number() } },
      async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { transport.close(); mcp.close(); });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return { port, close: () => new Promise((r) => srv.close(r)) };
}

before(async () => {
  upstream = await startUpstream();
  node = await startCaddy({ caddyfile: 'examples/mcp/Caddyfile', env: { MCP_UPSTREAM: `127.0.0.1:${upstream.port}` } });
  issuer = node.issuer;
  await launchBrowser();
});

after(async () => {
  await stopAll();
  await upstream?.close();
});

// provider is the SDK's OAuthClientProvider, in memory: what an MCP host
// application writes for its users.
function memoryProvider(callback) {
  const saved = {};
  return {
    saved,
    get redirectUrl() { return callback; },
    get clientMetadata() {
      return {
        client_name: 'Calculator agent', redirect_uris: [callback], grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'], token_endpoint_auth_method: 'none',
      };
    },
    clientInformation: () => saved.client,
    saveClientInformation: (c) => { saved.client = c; },
    tokens: () => saved.tokens,
    saveTokens: (t) => { saved.tokens = t; },
    redirectToAuthorization: (u) => { saved.authorizationUrl = u; },
    saveCodeVerifier: (v) => { saved.verifier = v; },
    codeVerifier: () => saved.verifier,
  };
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

test('MCP SDK client: 401, discovery, dynamic registration, sign-in and consent with PKCE and resource, tools', async (t) => {
  const page = await newPage(t);
  if (!page) return;
  const mcpURL = `${issuer}/mcp`;

  // What the SDK starts from: a bare 401 naming the resource's metadata.
  const bare = await fetch(mcpURL, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  assert.equal(bare.status, 401);
  assert.match(bare.headers.get('www-authenticate'),
    new RegExp(`^Bearer realm="oauthgate", resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp"(,|$)`));
  assert.equal(seen.length, 0, 'the upstream saw a request without a token');

  const callbackPort = await freePort();
  const callback = `http://127.0.0.1:${callbackPort}/callback`;
  const provider = memoryProvider(callback);
  const client = new Client({ name: 'calculator-agent', version: '1.0.0' });
  await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider })),
    UnauthorizedError);

  // It registered itself, as a public client with what the resource
  // metadata lists.
  const reg = provider.saved.client;
  assert.ok(reg?.client_id, 'no registration');
  assert.equal(reg.token_endpoint_auth_method, 'none');
  assert.equal(reg.scope, 'mcp:tools');
  const stored = await adminRequest(node, 'GET', `/oauthgate/clients/${reg.client_id}`);
  assert.equal(stored.status, 200, stored.text);
  assert.equal(stored.json.public, true);
  assert.equal(stored.json.first_party, false);
  assert.equal(stored.json.dynamically_registered, true);

  // And it asked for authorization with PKCE and resource.
  const authURL = provider.saved.authorizationUrl;
  assert.equal(`${authURL.origin}${authURL.pathname}`, `${issuer}/oauth/authorize`);
  assert.equal(authURL.searchParams.get('client_id'), reg.client_id);
  assert.equal(authURL.searchParams.get('code_challenge_method'), 'S256');
  assert.ok(authURL.searchParams.get('code_challenge'));
  assert.equal(authURL.searchParams.get('resource'), mcpURL);
  assert.equal(authURL.searchParams.get('scope'), 'mcp:tools');

  // The user signs in and consents in Chromium; the browser comes back to
  // the host application's loopback listener (RFC 8252 §7.3).
  let callbackURL;
  const listener = createServer((req, res) => {
    const u = new URL(req.url, callback);
    if (u.pathname === '/callback') callbackURL = u; // not /favicon.ico
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('You can close this window.');
  });
  await new Promise((r) => listener.listen(callbackPort, '127.0.0.1', r));
  t.after(() => new Promise((r) => listener.close(r)));
  await page.goto(authURL.href);
  await page.getByLabel('E-mail address').fill(demoUser.email);
  await page.getByLabel('Password').fill(demoUser.password);
  await Promise.all([page.waitForURL(/\/oauth\/consent\?request=/), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.getByRole('heading', { name: 'Calculator agent wants to access your oauthgate account' }).waitFor();
  await page.getByRole('note').filter({ hasText: 'Unverified app.' }).waitFor();
  await page.getByText('Use the tools of the MCP server').waitFor();
  const shot = path.join(tmpdir(), 'oauthgate-mcp-consent.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  await Promise.all([page.waitForURL(`${callback}**`), page.getByRole('button', { name: 'Allow' }).click()]);
  assert.equal(callbackURL?.searchParams.get('iss'), issuer);
  const code = callbackURL.searchParams.get('code');
  assert.ok(code, 'no code at the callback');

  // The SDK trades the code (with its verifier and resource) and connects.
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider });
  await transport.finishAuth(code);
  const access = provider.saved.tokens?.access_token;
  assert.ok(access, 'no access token');
  const c = claims(access);
  assert.deepEqual([c.aud].flat(), [mcpURL], 'the token names the MCP resource');
  assert.equal(c.client_id, reg.client_id);
  assert.equal(c.scope, 'mcp:tools');
  assert.ok(provider.saved.tokens.refresh_token, 'no refresh token');

  const connected = new Client({ name: 'calculator-agent', version: '1.0.0' });
  await connected.connect(transport);
  t.after(() => connected.close());
  const { tools } = await connected.listTools();
  assert.deepEqual(tools.map((x) => x.name), ['add']);
  const result = await connected.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
  assert.deepEqual(result.content, [{ type: 'text', text: '42' }]);

  // The user's connected-apps page lists it, marked unverified.
  await page.goto(`${issuer}/oauth/account`);
  const app = page.getByRole('heading', { name: /Calculator agent/, level: 3 });
  await app.waitFor();
  assert.equal(await app.getByText('Unverified', { exact: true }).count(), 1);
  const accountShot = path.join(tmpdir(), 'oauthgate-mcp-account.png');
  await page.screenshot({ path: accountShot, fullPage: true });
  console.log(`screenshot: ${accountShot}`);

  // Every request reached the upstream without the token.
  assert.ok(seen.length >= 3, `upstream saw ${seen.length} requests`);
  for (const s of seen) assert.equal(s.authorization, undefined, `${s.method} ${s.url} carried Authorization`);

});
