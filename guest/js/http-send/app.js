/**
 * `http-send [-X METHOD] [-H 'NAME: VALUE']... [-d BODY] URL`: sends one request with
 * `fetch()` and prints everything it got back, like the Rust `http-send`:
 *
 * ```text
 * status: 200
 * header: content-type: text/plain
 * body: <the whole body>
 * ```
 *
 * or `error: <why>` (exit 1). A header may hold a `{{secret:NAME}}` marker, which the host
 * fills with a use-only secret when the request leaves: this guest never sees the value.
 *
 *     await fetch('https://api.stripe.com/v1/charges', {
 *       method: 'POST',
 *       headers: { authorization: 'Bearer {{secret:stripe}}' },
 *       body,
 *     });
 *
 * Built with componentize-js against the WIT world `command`.
 */

import { getArguments } from 'wasi:cli/environment@0.2.12';
import { out, err, exit } from '../stdio.js';
import { useSecret } from '../wasm-secrets.js';

function parse(args) {
  const request = { method: 'GET', headers: {}, body: undefined, url: undefined };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-X') request.method = args[++i];
    else if (arg === '-H') {
      const h = args[++i] ?? '';
      const at = h.indexOf(':');
      if (at < 0) throw new Error('-H needs NAME: VALUE');
      request.headers[h.slice(0, at).trim()] = h.slice(at + 1).trim();
    } else if (arg === '--bearer') request.headers.authorization = `Bearer ${useSecret(args[++i])}`;
    else if (arg === '-d') request.body = args[++i];
    else if (request.url === undefined) request.url = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (request.url === undefined) {
    throw new Error("usage: http-send [-X METHOD] [-H 'NAME: VALUE']... [-d BODY] URL");
  }
  return request;
}

async function main() {
  let request;
  try {
    request = parse(getArguments().slice(1));
  } catch (e) {
    err(`${e.message}\n`);
    return 2;
  }
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    out(`status: ${response.status}\n`);
    for (const [name, value] of response.headers) out(`header: ${name}: ${value}\n`);
    out(`body: ${await response.text()}\n`);
    return 0;
  } catch (e) {
    out(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

export const run = {
  async run() {
    const code = await main();
    if (code !== 0) exit(code);
  },
};
