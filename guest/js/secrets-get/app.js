/**
 * `secrets-get`: a command that prints the secrets it is asked for, for tests, demos and
 * debugging. The JavaScript twin of guest/components/secrets-get (same arguments, output and
 * exit codes).
 *
 * ```text
 * secrets-get                      the names this component may read, one per line
 * secrets-get NAME...              NAME=VALUE for each name
 * secrets-get NAME@VERSION         NAME@VERSION=VALUE, one version of a secret
 * secrets-get --info NAME          the metadata of NAME as key=value lines, never the value
 * ```
 *
 * A failure prints `NAME: <error-kind>: <message>` (or `list: ...`), on stdout like the values so
 * that the output keeps the order of the arguments. The exit code is 1 if anything failed, 2 for
 * a usage error, 0 otherwise. `--` ends the options, for names that start with `-`.
 *
 * Built with componentize-js against the WIT world `command`.
 */

import { getArguments } from 'wasi:cli/environment@0.2.12';
import * as secrets from '../wasm-secrets.js';
import { out, err, exit } from '../stdio.js';

const USAGE = 'usage: secrets-get [NAME | NAME@VERSION | --info NAME]... [-- NAME...]';

/**
 * One thing asked for on the command line.
 * @typedef {{ kind: 'get', name: string }
 *   | { kind: 'get-version', name: string, version: string }
 *   | { kind: 'info', name: string }} Request
 */

/**
 * How the request is named in the output: the argument as given.
 * @param {Request} request
 * @returns {string}
 */
function label(request) {
  return request.kind === 'get-version' ? `${request.name}@${request.version}` : request.name;
}

/**
 * Asks the host and returns the lines to print.
 * @param {Request} request
 * @returns {string[]}
 * @throws {secrets.SecretError}
 */
function ask(request) {
  switch (request.kind) {
    case 'get':
      return [`${label(request)}=${secrets.get(request.name)}`];
    case 'get-version':
      return [`${label(request)}=${secrets.getVersion(request.name, request.version)}`];
    case 'info':
      return infoLines(secrets.info(request.name));
  }
}

/**
 * The metadata as `key=value` lines; an absent optional field prints as `key=`, each tag as
 * `tag.KEY=VALUE`.
 * @param {secrets.SecretInfo} info
 * @returns {string[]}
 */
function infoLines(info) {
  const opt = (v) => (v === undefined || v === null ? '' : String(v));
  return [
    `name=${info.name}`,
    `version=${info.version}`,
    `enabled=${info.enabled}`,
    `content-type=${opt(info.contentType)}`,
    `not-before=${opt(info.notBefore)}`,
    `expires=${opt(info.expires)}`,
    `created=${opt(info.created)}`,
    `updated=${opt(info.updated)}`,
    ...info.tags.map(([k, v]) => `tag.${k}=${v}`),
  ];
}

/**
 * Turns the arguments into requests, or throws a usage message.
 * @param {string[]} args
 * @returns {Request[]}
 */
function parse(args) {
  const requests = [];
  let options = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (options && arg === '--') {
      options = false;
    } else if (options && arg === '--info') {
      i++;
      if (i >= args.length) throw new Usage('--info needs a NAME');
      requests.push({ kind: 'info', name: args[i] });
    } else {
      const at = arg.indexOf('@');
      if (at >= 0) {
        requests.push({ kind: 'get-version', name: arg.slice(0, at), version: arg.slice(at + 1) });
      } else {
        requests.push({ kind: 'get', name: arg });
      }
    }
  }
  return requests;
}

/** A usage error: the message for stderr. */
class Usage extends Error {}

/**
 * Prints the answers to `requests`, or the list of names if there are none.
 * @param {Request[]} requests
 * @returns {boolean} whether everything succeeded
 */
function answer(requests) {
  if (requests.length === 0) {
    let names;
    try {
      names = secrets.list();
    } catch (e) {
      out(`list: ${describe(e)}\n`);
      return false;
    }
    out(names.map((name) => `${name}\n`).join(''));
    return true;
  }
  let allOk = true;
  for (const request of requests) {
    let lines;
    try {
      lines = ask(request);
    } catch (e) {
      allOk = false;
      out(`${label(request)}: ${describe(e)}\n`);
      continue;
    }
    out(lines.map((line) => `${line}\n`).join(''));
  }
  return allOk;
}

/**
 * `<kind>: <message>` for a SecretError; anything else is a bug and is thrown on.
 * @param {unknown} e
 * @returns {string}
 */
function describe(e) {
  if (e instanceof secrets.SecretError) return e.toString();
  throw e;
}

/** The `wasi:cli/run` export. */
export const run = {
  run() {
    const args = getArguments().slice(1);
    if (args[0] === '-h' || args[0] === '--help') {
      out(`${USAGE}\n`);
      return;
    }
    let requests;
    try {
      requests = parse(args);
    } catch (e) {
      if (!(e instanceof Usage)) throw e;
      err(`secrets-get: ${e.message}\n${USAGE}\n`);
      exit(2);
    }
    let ok;
    try {
      ok = answer(requests);
    } catch (e) {
      const why = streamError(e);
      if (why === undefined) throw e;
      err(`secrets-get: cannot write to stdout: ${why}\n`);
      exit(1);
    }
    if (!ok) exit(1);
  },
};

/**
 * What went wrong, if `e` is the `wasi:io/streams` error a failed write throws (a
 * `ComponentError` whose `payload` is a `stream-error`); `undefined` for anything else.
 * @param {unknown} e
 * @returns {string | undefined}
 */
function streamError(e) {
  if (e === null || typeof e !== 'object' || !Object.prototype.hasOwnProperty.call(e, 'payload')) {
    return undefined;
  }
  const p = e.payload;
  if (p?.tag === 'closed') return 'stream closed';
  if (p?.tag === 'last-operation-failed') {
    try {
      return p.val.toDebugString();
    } catch {
      return 'write failed';
    }
  }
  return undefined;
}
