/**
 * Exact-bytes stdout/stderr and exit codes for the wasi:cli command examples.
 *
 * The text goes straight to the `wasi:cli` streams rather than through `console.log`, so that
 * it is written exactly as given (no formatting of `%` sequences, no added prefixes).
 *
 * @module stdio
 */

import { getStdout } from 'wasi:cli/stdout@0.2.12';
import { getStderr } from 'wasi:cli/stderr@0.2.12';
import { exitWithCode } from 'wasi:cli/exit@0.2.12';

/** `blocking-write-and-flush` accepts at most this many bytes per call. */
const CHUNK = 4096;
const encoder = new TextEncoder();
let stdout;
let stderr;

/**
 * Writes `text` (UTF-8) to `stream`, 4096 bytes at a time.
 *
 * @param {{ blockingWriteAndFlush(bytes: Uint8Array): void }} stream
 * @param {string} text
 */
function write(stream, text) {
  const bytes = encoder.encode(text);
  for (let i = 0; i < bytes.length; i += CHUNK) {
    stream.blockingWriteAndFlush(bytes.subarray(i, i + CHUNK));
  }
}

/**
 * Writes `text` to stdout. Throws if stdout is closed.
 * @param {string} text
 */
export function out(text) {
  stdout ??= getStdout();
  write(stdout, text);
}

/**
 * Writes `text` to stderr, ignoring failures (there is nowhere left to report them).
 * @param {string} text
 */
export function err(text) {
  try {
    stderr ??= getStderr();
    write(stderr, text);
  } catch {
    // stderr is gone
  }
}

/**
 * Ends the command with `code` (0 to 255) through `wasi:cli/exit` `exit-with-code`; the host
 * passes it on as its own exit code. Does not return.
 * @param {number} code
 */
export function exit(code) {
  exitWithCode(code);
}
