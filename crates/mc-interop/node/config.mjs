// Configuration of node-oidc-provider 8.x for mc-runtime's anonymous device enrollment.
// Each setting names the step of docs/protocol.md (section node-oidc-provider) it serves.

import { randomBytes } from 'node:crypto';

import { errors } from 'oidc-provider';

/** Seconds of clock skew accepted on client assertions and subject tokens. */
export const CLOCK_TOLERANCE_SECS = 15;

/** Resource indicator of the device token (client_credentials without a `resource`). */
export const DEVICE_RESOURCE = 'urn:mc-runtime:device';

// Resource servers, by resource indicator. Every access token is a JWT signed ES256 for one of
// them: the runtime verifies the device token against the JWKS, and the resource verifies the
// exchanged one. Only `exchangeable` ones are targets of the token-exchange grant, by their
// `audience` (what ExchangeIamTokenEvent names) or their resource indicator.
export const RESOURCE_SERVERS = {
  [DEVICE_RESOURCE]: {
    audience: DEVICE_RESOURCE,
    scope: '',
    accessTokenFormat: 'jwt',
    accessTokenTTL: 600,
    jwt: { sign: { alg: 'ES256' } },
    exchangeable: false,
  },
  'urn:mc-runtime:demo-api': {
    audience: 'demo-api',
    scope: '',
    accessTokenFormat: 'jwt',
    accessTokenTTL: 300,
    jwt: { sign: { alg: 'ES256' } },
    exchangeable: true,
  },
};

export function configuration({ keys }) {
  return {
    // EC only: ES256 is the one algorithm of the profile.
    jwks: { keys },
    clockTolerance: CLOCK_TOLERANCE_SECS,
    // Unused (no browser flow) but required to silence the tamper warning.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // Registered devices use no browser flow: no response types, hence no redirect_uris;
    // ES256 ID tokens because the provider has no RSA key.
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'private_key_jwt',
    },
    // Keep software_id (the enrollment client of EnrollAnonymousUserEvent), which
    // oidc-provider would otherwise drop as unrecognised metadata.
    extraClientMetadata: { properties: ['software_id'] },
    // Devices authenticate with their key only; no shared secrets are handed out.
    // Token lifetimes come from the resource server (device 600 s, demo-api 300 s).
    ttl: {
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
    },
    clientAuthMethods: ['private_key_jwt'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['ES256'],
    },
    features: {
      // No login pages: anonymous devices never see one.
      devInteractions: { enabled: false },
      // RFC 7591, open: anyone on the network may register (as Keycloak's anonymous policy
      // with Trusted Hosts does). A deployment would set an initial access token here.
      registration: { enabled: true, initialAccessToken: false },
      // RFC 7592: the device deletes itself with its registration access token.
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      // DPoP (RFC 9449): advertised (dpop_signing_alg_values_supported: ES256, EdDSA), so
      // the runtime sends proofs and registers dpop_bound_access_tokens: true; tokens then
      // carry cnf.jkt = the device key's thumbprint (token_type DPoP). No nonces required
      // (the provider accepts a proof's iat within 300 s without one).
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A client_credentials request without `resource` (the runtime's login) gets the
        // device token.
        defaultResource: () => DEVICE_RESOURCE,
        getResourceServerInfo(ctx, resourceIndicator) {
          const info = RESOURCE_SERVERS[resourceIndicator];
          if (!info) throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          return info;
        },
        useGrantedResource: () => true,
      },
    },
  };
}
