/**
 * `key-sign`: a JavaScript command that uses a key which never leaves the vault, through the
 * `wasm-secrets:secrets/keys@0.1.0` import of the `command` world.
 *
 * ```text
 * key-sign NAME ALG DIGEST_HEX             the vault's signature of the digest, base64url
 * key-sign --verify NAME ALG DIGEST_HEX SIG  true or false (SIG in base64url)
 * key-sign --public NAME                   the key's public JWK
 * ```
 *
 * ALG is a JWA name (ES256, RS256, ...). A failure prints `key-sign: <error-kind>: <message>` on
 * stderr and exits 1; a usage error exits 2.
 *
 * Built with componentize-js against the WIT world `command`.
 */

import { getArguments } from 'wasi:cli/environment@0.2.12';
import * as keys from 'wasm-secrets:secrets/keys@0.1.0';
import { out, err, exit } from '../stdio.js';

const USAGE =
  'usage: key-sign NAME ALG DIGEST_HEX | key-sign --verify NAME ALG DIGEST_HEX SIG | key-sign --public NAME';

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'ES256K'];

/** A usage error: the message for stderr. */
class Usage extends Error {}

/**
 * The WIT enum case for a JWA name (`ES256K` -> `es256k`).
 * @param {string} alg
 * @returns {string}
 */
function algorithm(alg) {
  if (!ALGORITHMS.includes(alg)) throw new Usage(`"${alg}" is not a signature algorithm`);
  return alg.toLowerCase();
}

/**
 * The bytes of a hex string.
 * @param {string} hex
 * @returns {Uint8Array}
 */
function fromHex(hex) {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Usage(`"${hex}" is not hex`);
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Base64url without padding.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
function toBase64url(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) text += B64[(n >> (18 - 6 * j)) & 63];
  }
  return text;
}

/**
 * The bytes of base64url text (padding optional).
 * @param {string} text
 * @returns {Uint8Array}
 */
function fromBase64url(text) {
  const clean = text.replace(/=+$/, '');
  const bytes = [];
  let bits = 0;
  let value = 0;
  for (const c of clean) {
    const v = B64.indexOf(c);
    if (v < 0) throw new Usage(`"${text}" is not base64url`);
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 255);
    }
  }
  return new Uint8Array(bytes);
}

/**
 * The line to print for `args`, asking the host.
 * @param {string[]} args
 * @returns {string}
 */
function answer(args) {
  if (args[0] === '--public' && args.length === 2) {
    return keys.publicKey(args[1]);
  }
  if (args[0] === '--verify' && args.length === 5) {
    const [, name, alg, digest, signature] = args;
    return String(keys.verify(name, algorithm(alg), fromHex(digest), fromBase64url(signature)));
  }
  if (args.length === 3 && !args[0].startsWith('-')) {
    const [name, alg, digest] = args;
    return toBase64url(keys.sign(name, algorithm(alg), fromHex(digest)));
  }
  throw new Usage('wrong arguments');
}

/** The `wasi:cli/run` export. */
export const run = {
  run() {
    const args = getArguments().slice(1);
    let line;
    try {
      line = answer(args);
    } catch (e) {
      if (e instanceof Usage) {
        err(`key-sign: ${e.message}\n${USAGE}\n`);
        exit(2);
      }
      // componentize-js throws a ComponentError whose `payload` is the WIT `key-error`.
      const p = e !== null && typeof e === 'object' ? e.payload : undefined;
      if (p !== null && typeof p === 'object' && typeof p.tag === 'string') {
        err(`key-sign: ${p.tag}: ${p.val}\n`);
        exit(1);
      }
      throw e;
    }
    out(`${line}\n`);
  },
};
