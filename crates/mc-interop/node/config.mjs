// Configuration of node-oidc-provider 8.x for mc-runtime's anonymous device enrollment.
// Each setting names the step of docs/protocol.md (section node-oidc-provider) it serves.

import { randomBytes } from 'node:crypto';

import { errors } from 'oidc-provider';

/** Seconds of clock skew accepted on client assertions and subject tokens. */
export const CLOCK_TOLERANCE_SECS = 15;

/** The public native client of identified users (RFC 8252): PKCE, loopback redirect. */
export const NATIVE_CLIENT_ID = 'mc-native';
/** Its registered redirect: any port on the loopback (RFC 8252 §7.3, the provider's native rule). */
export const NATIVE_REDIRECT_URI = 'http://127.0.0.1/callback';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** Resource indicator of the device token (client_credentials without a `resource`). */
export const DEVICE_RESOURCE = 'urn:mc-runtime:device';

// Two profiles, chosen with `server.mjs --profile`:
// - `es256-jwt`: an EC P-256 server key; every access token is a JWT signed ES256 (the
//   device token by `defaultResource`, so a client_credentials request without `resource`
//   gets one).
// - `rs256-opaque`: node-oidc-provider as it ships: one RSA server key (its default JWT
//   algorithm is RS256) and an opaque device token (no resource indicator asks for a JWT),
//   which the runtime checks at the introspection endpoint (RFC 7662).
export const PROFILES = ['es256-jwt', 'rs256-opaque'];

// Resource servers, by resource indicator. Only `exchangeable` ones are targets of the
// token-exchange grant, by their `audience` (what ExchangeIamTokenEvent names) or their
// resource indicator. The exchanged token is a JWT in both profiles (the resource verifies
// it against the JWKS); `jwt.sign` absent = the provider's default, RS256.
export function resourceServers(profile) {
  const es256 = profile === 'es256-jwt';
  const jwtSign = es256 ? { jwt: { sign: { alg: 'ES256' } } } : {};
  const servers = {
    'urn:mc-runtime:demo-api': {
      audience: 'demo-api',
      scope: '',
      accessTokenFormat: 'jwt',
      accessTokenTTL: 300,
      ...jwtSign,
      exchangeable: true,
    },
  };
  if (es256) {
    servers[DEVICE_RESOURCE] = {
      audience: DEVICE_RESOURCE,
      scope: '',
      accessTokenFormat: 'jwt',
      accessTokenTTL: 600,
      ...jwtSign,
      exchangeable: false,
    };
  }
  return servers;
}

export function configuration({ keys, profile }) {
  const es256 = profile === 'es256-jwt';
  const servers = resourceServers(profile);
  return {
    // es256-jwt: one EC key; rs256-opaque: one RSA key, as the provider's development keys.
    jwks: { keys },
    clockTolerance: CLOCK_TOLERANCE_SECS,
    // The interaction cookies of the identified users' login pages.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // Identified users (issue 10): one public native client, as RFC 8252 wants it: no
    // secret (`none`), PKCE (the provider requires it for such clients, S256 only), a
    // loopback redirect, refresh tokens for `offline_access`, and the token-exchange grant
    // for its users' access tokens. Everything else keeps the provider's defaults.
    clients: [{
      client_id: NATIVE_CLIENT_ID,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE],
      response_types: ['code'],
      redirect_uris: [NATIVE_REDIRECT_URI],
      ...(es256 ? { id_token_signed_response_alg: 'ES256' } : {}),
    }],
    // Registered devices use no browser flow: no response types, hence no redirect_uris;
    // es256-jwt: ES256 ID tokens because the provider has no RSA key.
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      ...(es256 ? { id_token_signed_response_alg: 'ES256' } : {}),
      token_endpoint_auth_method: 'private_key_jwt',
    },
    // Keep software_id (the enrollment client of EnrollAnonymousUserEvent), which
    // oidc-provider would otherwise drop as unrecognised metadata.
    extraClientMetadata: { properties: ['software_id'] },
    // Devices authenticate with their key only; no shared secrets are handed out.
    // Token lifetimes come from the resource server (device 600 s, demo-api 300 s).
    ttl: {
      // Without a resource server (the opaque device token): 600 s, the provider's default.
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
    },
    // `none`: the public native client (devices still use private_key_jwt only).
    clientAuthMethods: ['private_key_jwt', 'none'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['ES256'],
    },
    features: {
      // The provider's own development login and consent pages (any login name is an
      // account, the password is not checked): what the identified users' tests post.
      devInteractions: { enabled: true },
      // RFC 7591, open: anyone on the network may register (as Keycloak's anonymous policy
      // with Trusted Hosts does). A deployment would set an initial access token here.
      registration: { enabled: true, initialAccessToken: false },
      // RFC 7592: the device deletes itself with its registration access token.
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
      clientCredentials: { enabled: true },
      // RFC 7662: how the runtime checks an opaque device token. A client may introspect
      // only its own tokens (the default lets every confidential client read any token).
      introspection: {
        enabled: true,
        allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
      },
      revocation: { enabled: true },
      // DPoP (RFC 9449): advertised (dpop_signing_alg_values_supported: ES256, EdDSA), so
      // the runtime sends proofs and registers dpop_bound_access_tokens: true; tokens then
      // carry cnf.jkt = the device key's thumbprint (token_type DPoP). No nonces required
      // (the provider accepts a proof's iat within 300 s without one).
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // es256-jwt: a client_credentials request without `resource` (the runtime's login)
        // gets the JWT device token; rs256-opaque: no resource, so an opaque token.
        defaultResource: (ctx, client, oneOf) => (es256 ? DEVICE_RESOURCE : oneOf),
        getResourceServerInfo(ctx, resourceIndicator) {
          const info = servers[resourceIndicator];
          if (!info) throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          return info;
        },
        useGrantedResource: () => true,
      },
    },
  };
}
