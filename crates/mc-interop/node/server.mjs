// node-oidc-provider for the mc-runtime interoperability test.
//
//   node server.mjs [--port N] [--profile es256-jwt|rs256-opaque]
//
// N = 0, the default, picks a free port. The profile (config.mjs) chooses the server key and
// the device token format; es256-jwt is the default.
//
// Listens on 127.0.0.1 only. Prints one JSON line {"issuer": "..."} on stdout once it
// listens, so the caller learns the port without racing for it. Exits when stdin closes,
// so a test process that dies without killing us does not leave a provider behind.
//
// Besides the provider, three test-only routes:
// - GET /_test/clients/<client_id>: 200 with the client's metadata when it is registered,
//   404 when not (the test's "deleted at the IDP" check; the runtime holds the registration
//   access token, the test does not). Devices use private_key_jwt: no secret is shown.
// - GET /_test/grants: {"<grant_type>": <count of tokens issued>} (the test's "a cache hit
//   does not reach the IDP" check).
// - POST /_test/revoke-on-issue/<client_id>: from now on, every opaque token issued to that
//   client is revoked as soon as it is issued, so introspection answers {"active": false}
//   (the test's "a token the IDP no longer vouches for" check).
// - POST /_test/revoke-refresh-tokens: destroys every refresh token issued so far, as an
//   administrator revoking a user's sessions would (the test's "revoked refresh token").

import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';
import { createLocalJWKSet, jwtVerify } from 'jose';
// The provider's own DPoP proof check (htm, htu, iat, nonce, signature), as its built-in
// grants use it; the package has no `exports` map, so the module is importable.
import dpopValidate, { DPOP_OK_WINDOW } from 'oidc-provider/lib/helpers/validate_dpop.js';

import {
  configuration, resourceServers, DEVICE_RESOURCE, CLOCK_TOLERANCE_SECS, PROFILES,
} from './config.mjs';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

function profileFromArgs(argv) {
  const at = argv.indexOf('--profile');
  if (at === -1) return 'es256-jwt';
  const profile = argv[at + 1];
  if (!PROFILES.includes(profile)) {
    console.error(`--profile needs one of ${PROFILES.join(', ')}`);
    process.exit(2);
  }
  return profile;
}

function portFromArgs(argv) {
  const at = argv.indexOf('--port');
  if (at === -1) return 0;
  const port = Number(argv[at + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('--port needs a number from 0 to 65535');
    process.exit(2);
  }
  return port;
}

// A fresh key per run, so nothing secret is committed. es256-jwt: EC P-256 (with only EC
// keys, clients get id_token_signed_response_alg ES256 from clientDefaults: mc-oidc's
// registration names no ID token algorithm). rs256-opaque: RSA 2048 without `alg`, like the provider's development
// keys, so it signs with its default, RS256.
function signingKey(profile) {
  if (profile === 'rs256-opaque') {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig' };
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomUUID(), use: 'sig', alg: 'ES256' };
}

function publicJwk({ kty, crv, x, y, n, e, kid, use, alg }) {
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e, kid, use, alg })
    .filter(([, value]) => value !== undefined));
}

function oneOrMany(value) {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

// RFC 8693 token exchange, which oidc-provider does not ship: the requesting client trades
// its own device token (subject_token) for a JWT for one registered audience. The new token
// has the device as `sub` and the requester as `client_id`; a subject token of another
// client, a foreign or expired token, or an unknown audience is refused. The device token is
// a JWT of this provider (es256-jwt) or an opaque token it stored (rs256-opaque).
// DPoP: a DPoP-bound subject token (cnf.jkt) is exchanged only with a proof of that key, and
// the issued token is bound to the proof's key, as the built-in grants bind theirs.
function tokenExchangeGrant(provider, profile, subjectKeys) {
  const servers = resourceServers(profile);
  const { InvalidRequest, InvalidGrant, InvalidTarget } = errors;
  return async function tokenExchange(ctx, next) {
    const { client, params } = ctx.oidc;
    const dPoP = await dpopValidate(ctx);
    if (!params.subject_token) {
      throw new InvalidRequest('missing required parameter subject_token');
    }
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    if (params.actor_token) {
      throw new InvalidRequest('delegation (actor_token) is not supported');
    }

    const targets = new Set();
    for (const audience of oneOrMany(params.audience)) {
      const resource = Object.keys(servers)
        .find((id) => servers[id].exchangeable && servers[id].audience === audience);
      if (!resource) throw new InvalidTarget(`unknown audience ${audience}`);
      targets.add(resource);
    }
    for (const resource of oneOrMany(params.resource)) {
      if (!servers[resource]?.exchangeable) throw new InvalidTarget(`unknown resource ${resource}`);
      targets.add(resource);
    }
    if (targets.size !== 1) {
      throw new InvalidTarget('exactly one audience or resource is supported');
    }
    const [target] = targets;

    const subject = await deviceToken(provider, profile, servers, subjectKeys, params.subject_token);
    // The device token of a client is that client's own (JWT: client_id and sub); a user's
    // token (identified users) was issued to the public client that exchanges it.
    if (subject.clientId !== client.clientId) {
      throw new InvalidGrant('subject_token was not issued to this client');
    }
    const subjectJkt = subject.jkt;
    if (subjectJkt !== undefined && dPoP?.thumbprint !== subjectJkt) {
      throw new InvalidGrant('subject_token is DPoP-bound: prove possession of its key');
    }

    // A ClientCredentials token is what oidc-provider issues to a client for itself: its
    // JWT has sub = client_id = the device, as the subject token does.
    const token = new provider.ClientCredentials({ client });
    token.resourceServer = new provider.ResourceServer(target, servers[target]);
    if (dPoP) {
      // Single-use proofs, as client_credentials checks them (features.dPoP.allowReplay off).
      const unique = await provider.ReplayDetection.unique(
        client.clientId,
        dPoP.jti,
        Math.floor(Date.now() / 1000) + DPOP_OK_WINDOW,
      );
      if (!unique) throw new InvalidGrant('DPoP proof JWT Replay detected');
      token.setThumbprint('jkt', dPoP.thumbprint);
    } else if (client.dpopBoundAccessTokens) {
      throw new InvalidGrant('DPoP proof JWT not provided');
    }
    ctx.oidc.entity('ClientCredentials', token);
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: token.expiration,
    };
    await next();
  };
}

// The subject token as {clientId, jkt}: a JWT device token verified with the provider's key
// (es256-jwt), or an unexpired opaque client_credentials token without a resource (the
// device token of rs256-opaque) found in the provider's store. Anything else: invalid_grant.
async function deviceToken(provider, profile, servers, subjectKeys, value) {
  const invalid = new errors.InvalidGrant('subject_token is invalid or expired');
  if (profile === 'rs256-opaque') {
    const token = await provider.ClientCredentials.find(value).catch(() => undefined);
    if (token && !token.isExpired && token.aud === undefined) {
      return { clientId: token.clientId, jkt: token.jkt };
    }
    // An identified user's opaque access token (authorization code or refresh grant).
    const user = await provider.AccessToken.find(value).catch(() => undefined);
    if (!user || user.isExpired) throw invalid;
    return { clientId: user.clientId, jkt: user.jkt };
  }
  try {
    const { payload } = await jwtVerify(value, subjectKeys, {
      issuer: provider.issuer,
      audience: servers[DEVICE_RESOURCE].audience,
      algorithms: ['ES256'],
      typ: 'at+jwt',
      clockTolerance: CLOCK_TOLERANCE_SECS,
    });
    // A device token names the device as sub and client_id; a user's token names the user.
    const client = await provider.Client.find(payload.client_id).catch(() => undefined);
    const userClient = client?.clientAuthMethod === 'none';
    if (payload.sub !== payload.client_id && !userClient) throw invalid;
    return { clientId: payload.client_id, jkt: payload.cnf?.jkt };
  } catch {
    throw invalid;
  }
}

const port = portFromArgs(process.argv);
const profile = profileFromArgs(process.argv);
const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const key = signingKey(profile);
  const provider = new Provider(issuer, configuration({ keys: [key], profile }));
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    tokenExchangeGrant(provider, profile, createLocalJWKSet({ keys: [publicJwk(key)] })),
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'actor_token', 'actor_token_type', 'scope'],
    ['audience', 'resource'],
  );
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  const grants = {};
  provider.on('grant.success', (ctx) => {
    const grantType = ctx.oidc.params.grant_type;
    grants[grantType] = (grants[grantType] ?? 0) + 1;
  });

  const revokeOnIssue = new Set();
  provider.on('client_credentials.saved', (token) => {
    if (revokeOnIssue.has(token.clientId)) {
      token.destroy().catch((err) => console.error('revoking', err));
    }
  });

  const refreshTokens = [];
  provider.on('refresh_token.saved', (token) => refreshTokens.push(token.jti));

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const testRoute = /^\/_test\/clients\/([^/?]+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && testRoute) {
      const client = await provider.Client.find(decodeURIComponent(testRoute[1])).catch(() => undefined);
      res.writeHead(client ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(client ? client.metadata() : { error: 'not registered' }));
      return;
    }
    const revokeRoute = /^\/_test\/revoke-on-issue\/([^/?]+)$/.exec(req.url ?? '');
    if (req.method === 'POST' && revokeRoute) {
      revokeOnIssue.add(decodeURIComponent(revokeRoute[1]));
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'POST' && req.url === '/_test/revoke-refresh-tokens') {
      for (const jti of refreshTokens.splice(0)) {
        // eslint-disable-next-line no-await-in-loop
        const token = await provider.RefreshToken.find(jti).catch(() => undefined);
        // eslint-disable-next-line no-await-in-loop
        await token?.destroy();
      }
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'GET' && req.url === '/_test/grants') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(grants));
      return;
    }
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer, profile })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
