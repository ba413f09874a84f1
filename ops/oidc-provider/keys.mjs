// Makes a private signing key for server.mjs, as a JWKS on stdout:
//
//   node keys.mjs RS256|ES256|EdDSA [KID]
//
// RS256 is RSA 2048, ES256 P-256, EdDSA Ed25519 (node:crypto, nothing else).
// The key states its `alg`, `use` "sig" and a `kid` (random unless given).
import { generateKeyPairSync, randomUUID } from 'node:crypto';

const [alg, kid = `${alg}-${randomUUID()}`] = process.argv.slice(2);
const kinds = {
  RS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
};
if (!kinds[alg]) {
  console.error('usage: node keys.mjs RS256|ES256|EdDSA [KID]');
  process.exit(2);
}
const { privateKey } = generateKeyPairSync(...kinds[alg]);
const jwk = { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
console.log(JSON.stringify({ keys: [jwk] }));
