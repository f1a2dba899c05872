/**
 * `bench-get N NAME`: calls `get(NAME)` N times (after a warm-up of min(N, 1000) calls) and
 * prints the mean nanoseconds per call as one integer line. The JavaScript twin of
 * guest/components/bench-get, used to compare the cost of a secret read from JS and from Rust.
 * It prints timings, never the value.
 *
 * Exit code 1 (and `bench-get: <kind>: <message>` on stderr) if a warm-up read fails, 2 for a
 * usage error.
 *
 * Built with componentize-js against the WIT world `command`.
 */

import { getArguments } from 'wasi:cli/environment@0.2.12';
import { now } from 'wasi:clocks/monotonic-clock@0.2.12';
import { get } from '../wasm-secrets.js';
import { out, err, exit } from '../stdio.js';

/**
 * N as Rust's `u32::from_str` reads it: decimal digits with an optional `+`, at most 2^32 - 1.
 * @param {string | undefined} s
 * @returns {number | undefined}
 */
function parseU32(s) {
  if (s === undefined || !/^\+?[0-9]+$/.test(s)) return undefined;
  const n = Number(s.replace(/^\+/, ''));
  return n <= 0xffffffff ? n : undefined;
}

/** Keeps the results alive so that the calls are not optimised away. */
let sink = 0;

/** The `wasi:cli/run` export. */
export const run = {
  run() {
    const args = getArguments();
    const n = parseU32(args[1]);
    const name = args[2];
    if (n === undefined || name === undefined) {
      err('usage: bench-get N NAME\n');
      exit(2);
    }
    const warmUp = Math.min(n, 1000);
    for (let i = 0; i < warmUp; i++) {
      try {
        sink += get(name).length;
      } catch (e) {
        err(`bench-get: ${e}\n`);
        exit(1);
      }
    }
    const start = now();
    for (let i = 0; i < n; i++) {
      try {
        sink += get(name).length;
      } catch {
        sink += 1;
      }
    }
    const ns = (now() - start) / BigInt(Math.max(n, 1));
    out(`${ns}\n`);
  },
};
