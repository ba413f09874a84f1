// One OpenID Connect issuer on loopback, for Portal's tests: the real, OpenID
// Certified `oidc-provider`, issuing JWT access tokens for the audience
// "portal" through the client_credentials grant (RFC 6749, 4.4).
//
//   node server.mjs --port 0 --keys keys.json --clients clients.json
//
// --port     the port on 127.0.0.1 (0: any free one); env OIDC_PROVIDER_PORT
// --keys     a JWKS of private signing keys (see keys.mjs); env OIDC_PROVIDER_KEYS.
//            Tokens are signed with the first key, under its `alg`; the
//            others are only published, as during a key rotation.
// --clients  a JSON list of { "client_id", "client_secret", "roles": [...] };
//            env OIDC_PROVIDER_CLIENTS. `roles` goes into each of the client's
//            tokens as `realm_access.roles` (Keycloak's place for realm roles).
//
// Once listening it prints one line of JSON on stdout:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// and serves until killed. The token's `sub` is the client's id (that is what
// oidc-provider puts there when no person is involved), so client ids must be
// UUIDs for Portal to take them as person ids.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PROVIDER_PORT ?? '0' },
    keys: { type: 'string', default: process.env.OIDC_PROVIDER_KEYS },
    clients: { type: 'string', default: process.env.OIDC_PROVIDER_CLIENTS },
  },
});
if (!args.keys || !args.clients) {
  console.error('usage: node server.mjs [--port N] --keys JWKS.json --clients CLIENTS.json');
  process.exit(2);
}
const jwks = JSON.parse(readFileSync(args.keys, 'utf8'));
const clients = JSON.parse(readFileSync(args.clients, 'utf8'));
const alg = jwks.keys[0]?.alg;
if (!alg) {
  console.error(`${args.keys}: the first key must state its alg`);
  process.exit(2);
}

// The issuer's URL holds its port: bind first, then make the provider.
const http = createServer();
await new Promise((resolve, reject) => {
  http.once('error', reject);
  http.listen(Number(args.port), '127.0.0.1', resolve);
});
const { port } = http.address();
const issuer = `http://127.0.0.1:${port}`;

// The one resource server (RFC 8707): Portal. A token request that names no
// resource gets it, so every access token is a JWT with aud "portal".
const RESOURCE = 'urn:portal';

const provider = new Provider(issuer, {
  jwks,
  clients: clients.map(({ client_id, client_secret, roles }) => ({
    client_id,
    client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    portal_roles: roles,
  })),
  // Client metadata of our own: the roles its tokens carry.
  extraClientMetadata: {
    properties: ['portal_roles'],
    validator(_ctx, key, value) {
      if (key === 'portal_roles' && !(Array.isArray(value) && value.every((r) => typeof r === 'string'))) {
        throw new errors.InvalidClientMetadata('portal_roles must be a list of texts');
      }
    },
  },
  clientDefaults: { id_token_signed_response_alg: alg },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      getResourceServerInfo(_ctx, resource) {
        if (resource !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: '',
          audience: 'portal',
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
  extraTokenClaims(_ctx, token) {
    const roles = token.client?.portal_roles;
    return roles ? { realm_access: { roles } } : undefined;
  },
});
// Tell the tests why a request failed (on stderr, which they pass through).
provider.on('server_error', (_ctx, error) => console.error('oidc-provider:', error));
provider.on('grant.error', (_ctx, error) => console.error('oidc-provider:', error.message, error.error_description ?? ''));

http.on('request', provider.callback());
console.log(JSON.stringify({ issuer, port }));
