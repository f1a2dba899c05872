/**
 * `http-get URL...`: a command that fetches each URL with `fetch()` (componentize-js's default
 * features link wasi:http for it) and prints one line per URL, in order:
 *
 * ```text
 * URL: STATUS: <the first 200 characters of the body>
 * URL: error: <why the request failed>
 * ```
 *
 * A request the host refuses (no egress rule allows the host) is an error inside the guest, so
 * the command goes on to the next URL. Exit code 1 if any request failed, 2 with no URLs.
 *
 * Built with componentize-js against the WIT world `command`.
 */

import { getArguments } from 'wasi:cli/environment@0.2.12';
import { out, err, exit } from '../stdio.js';

const EXCERPT = 200;

async function main() {
  const urls = getArguments().slice(1);
  if (urls.length === 0) {
    err('usage: http-get URL...\n');
    return 2;
  }
  let failed = false;
  for (const url of urls) {
    try {
      const response = await fetch(url, {
        headers: { authorization: 'Bearer guest-supplied-token' },
      });
      const text = (await response.text()).slice(0, EXCERPT).trimEnd();
      out(`${url}: ${response.status}: ${text}\n`);
    } catch (e) {
      failed = true;
      out(`${url}: error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
  return failed ? 1 : 0;
}

export const run = {
  async run() {
    const code = await main();
    if (code !== 0) exit(code);
  },
};
