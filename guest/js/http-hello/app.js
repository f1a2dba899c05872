/**
 * `http-hello`: a `wasi:http/proxy` handler that reads a secret on every request. The
 * JavaScript twin of guest/components/http-hello (same paths, statuses and bodies).
 *
 * `GET /<name>` reads the secret `<name>` (`GET /` reads `db-password`) and answers with its
 * length, never its value:
 *
 * ```text
 * $ wasm-secrets serve --grant db-password http-hello.wasm
 * $ curl http://127.0.0.1:8080/db-password
 * hello: read secret 'db-password' (18 characters)
 * $ curl -i http://127.0.0.1:8080/other
 * HTTP/1.1 403 Forbidden
 * not-granted: ...
 * ```
 *
 * A secrets error answers `<kind>: <message>` with status 400 (`invalid-name`), 403
 * (`not-granted`), 404 (`not-found`) or 500 (`forbidden`, `unavailable`).
 *
 * `GET /egress?url=<URL>` (the URL percent-encoded or not) makes an outgoing `GET <URL>` through
 * `wasi:http/outgoing-handler`, with its own `Authorization: Bearer guest-supplied-token`
 * header, and answers with the upstream status and the first 200 bytes of the upstream body, or
 * `502` and the error (`ErrorCode::HttpRequestDenied` when the host's egress rules refuse the
 * destination). Host tests use it to check the egress rules and that the host replaces the
 * guest's `Authorization` header. (So this handler cannot read a secret named `egress`.)
 *
 * Built with componentize-js against the WIT world `http-handler`, whose export is
 * `wasi:http/incoming-handler@0.2.12`. The handler exports `incomingHandler` itself instead of
 * using a `fetch` event listener: componentize-js 0.23's built-in fetch-event handler is
 * exported as `wasi:http/incoming-handler@0.2.10` and cannot satisfy the 0.2.12 world. The
 * outgoing request also uses `wasi:http` directly rather than `fetch()`, which works too but
 * reports every failure as a bare `TypeError: NetworkError when attempting to fetch resource`,
 * so the `ErrorCode` the host gave (`HttpRequestDenied`, `ConnectionRefused`, ...) would be lost.
 */

import {
  Fields,
  OutgoingBody,
  OutgoingRequest,
  OutgoingResponse,
  ResponseOutparam,
} from 'wasi:http/types@0.2.12';
import { handle as sendRequest } from 'wasi:http/outgoing-handler@0.2.12';
import { get, SecretError, InvalidName, NotGranted, NotFound } from '../wasm-secrets.js';

/** The secret read by `GET /`. */
const DEFAULT_SECRET = 'db-password';
/** The `Authorization` header this guest puts on its outgoing requests; a host with an
 * `azure-http` egress grant must replace it with its own token. */
const GUEST_AUTHORIZATION = 'Bearer guest-supplied-token';
/** How much of the upstream body `/egress` echoes. */
const EXCERPT_BYTES = 200;
/** `blocking-write-and-flush` takes at most this many bytes per call. */
const WRITE_CHUNK = 4096;

const encoder = new TextEncoder();
const dispose = Symbol.dispose ?? Symbol.for('dispose');

/** Drops a `wasi:http` resource now (children before parents). */
function drop(resource) {
  resource?.[dispose]?.();
}

/** The `wasi:http/incoming-handler` export. */
export const incomingHandler = {
  /**
   * Handles one request: `GET /<name>` reads a secret, `GET /egress?url=` makes an outgoing
   * request.
   * @param {import('wasi:http/types@0.2.12').IncomingRequest} request
   * @param {import('wasi:http/types@0.2.12').ResponseOutparam} responseOut
   */
  handle(request, responseOut) {
    const pathWithQuery = request.pathWithQuery() ?? '';
    const q = pathWithQuery.indexOf('?');
    const path = q >= 0 ? pathWithQuery.slice(0, q) : pathWithQuery;
    const query = q >= 0 ? pathWithQuery.slice(q + 1) : '';
    const firstSegment = path.replace(/^\/+/, '').split('/')[0];

    let status;
    let body;
    if (firstSegment === 'egress') {
      [status, body] = egress(query);
    } else {
      [status, body] = readSecret(firstSegment === '' ? DEFAULT_SECRET : firstSegment);
    }
    respond(responseOut, status, encoder.encode(body));
  },
};

/**
 * Reads the secret `name` and describes it without its value.
 * @param {string} name
 * @returns {[number, string]} status and body
 */
function readSecret(name) {
  try {
    const chars = [...get(name)].length;
    return [200, `hello: read secret '${name}' (${chars} characters)\n`];
  } catch (e) {
    if (!(e instanceof SecretError)) throw e;
    let status = 500;
    if (e instanceof InvalidName) status = 400;
    else if (e instanceof NotGranted) status = 403;
    else if (e instanceof NotFound) status = 404;
    return [status, `${e.kind}: ${e.message}\n`];
  }
}

/**
 * `GET` of the `url` query parameter; the upstream status and the start of its body.
 * @param {string} query
 * @returns {[number, string]} status and body
 */
function egress(query) {
  const pair = query.split('&').find((p) => p.startsWith('url='));
  if (pair === undefined) return [400, 'usage: GET /egress?url=<URL>\n'];
  const url = percentDecode(pair.slice('url='.length));
  try {
    const [status, excerpt] = fetchExcerpt(url);
    return [status, new TextDecoder().decode(excerpt)];
  } catch (e) {
    if (!(e instanceof EgressError)) throw e;
    return [502, `egress to ${url} failed: ${e.message}\n`];
  }
}

/** Why an outgoing request failed, as the Rust handler words it. */
class EgressError extends Error {}

/**
 * The payload of an error the bindings threw for a `result::err`, or `e` itself.
 * @param {unknown} e
 */
function payload(e) {
  return e !== null && typeof e === 'object' && Object.prototype.hasOwnProperty.call(e, 'payload')
    ? e.payload
    : e;
}

/**
 * Calls `f`; if the bindings throw, throws an EgressError with `describe(payload)`.
 * @template T
 * @param {() => T} f
 * @param {(payload: any) => string} describe
 * @returns {T}
 */
function orFail(f, describe) {
  try {
    return f();
  } catch (e) {
    throw new EgressError(describe(payload(e)));
  }
}

/**
 * Sends `GET url` through `wasi:http/outgoing-handler`; returns the status and at most
 * EXCERPT_BYTES of the body.
 * @param {string} url
 * @returns {[number, Uint8Array]}
 */
function fetchExcerpt(url) {
  const sep = url.indexOf('://');
  if (sep < 0) throw new EgressError(`not an absolute URL: ${url}`);
  const schemeText = url.slice(0, sep);
  const rest = url.slice(sep + 3);
  const i = rest.search(/[/?]/);
  let authority;
  let pathWithQuery;
  if (i < 0) {
    authority = rest;
    pathWithQuery = '/';
  } else {
    authority = rest.slice(0, i);
    pathWithQuery = rest[i] === '?' ? `/${rest.slice(i)}` : rest.slice(i);
  }
  const lower = schemeText.toLowerCase();
  const scheme =
    lower === 'http' ? { tag: 'HTTP' } : lower === 'https' ? { tag: 'HTTPS' } : { tag: 'other', val: lower };

  const headers = orFail(
    () => Fields.fromList([['authorization', encoder.encode(GUEST_AUTHORIZATION)]]),
    (p) => `headers: ${rustDebug(p)}`,
  );
  const request = new OutgoingRequest(headers);
  const set = [
    () => request.setMethod({ tag: 'get' }),
    () => request.setScheme(scheme),
    () => request.setAuthority(authority),
    () => request.setPathWithQuery(pathWithQuery),
  ].every((setter) => {
    try {
      setter();
      return true;
    } catch {
      return false;
    }
  });
  if (!set) {
    drop(request);
    throw new EgressError(`invalid URL: ${url}`);
  }
  const body = orFail(() => request.body(), () => 'request body taken');
  const future = orFail(() => sendRequest(request, undefined), errorCodeText);
  orFail(() => OutgoingBody.finish(body, undefined), errorCodeText);

  const pollable = future.subscribe();
  pollable.block();
  drop(pollable);
  const got = future.get();
  if (got === undefined || got.tag === 'err') {
    drop(future);
    throw new EgressError('no response');
  }
  if (got.val.tag === 'err') {
    drop(future);
    throw new EgressError(errorCodeText(got.val.val));
  }
  const response = got.val.val;
  const status = response.status();
  const incoming = orFail(() => response.consume(), () => 'response body taken');
  const stream = orFail(() => incoming.stream(), () => 'response stream taken');
  const excerpt = new Uint8Array(EXCERPT_BYTES);
  let len = 0;
  let failure;
  while (len < EXCERPT_BYTES) {
    let chunk;
    try {
      chunk = stream.blockingRead(BigInt(EXCERPT_BYTES - len));
    } catch (e) {
      const p = payload(e);
      if (p?.tag !== 'last-operation-failed') break; // closed: the whole body was read
      failure = p.val.toDebugString();
      drop(p.val);
      break;
    }
    excerpt.set(chunk.subarray(0, EXCERPT_BYTES - len), len);
    len += Math.min(chunk.length, EXCERPT_BYTES - len);
  }
  // Children before parents: the stream, then the body, then the response.
  drop(stream);
  drop(incoming);
  drop(response);
  drop(future);
  if (failure !== undefined) throw new EgressError(failure);
  return [status, excerpt.subarray(0, len)];
}

/**
 * A `wasi:http` `error-code` as the Rust bindings print it: `ErrorCode::HttpRequestDenied`,
 * `ErrorCode::InternalError(Some("..."))`, ...
 * @param {{ tag: string, val?: unknown }} code
 * @returns {string}
 */
function errorCodeText(code) {
  if (code === null || typeof code !== 'object' || typeof code.tag !== 'string') return String(code);
  const name = `ErrorCode::${upperCamel(code.tag)}`;
  if (RECORD_PAYLOADS.has(code.tag)) {
    return `${name}(${recordDebug(RECORD_PAYLOADS.get(code.tag), code.val)})`;
  }
  if (OPTION_PAYLOADS.has(code.tag)) {
    const [inner] = OPTION_PAYLOADS.get(code.tag);
    return `${name}(${optionDebug(code.val, inner)})`;
  }
  return name;
}

/** `error-code` cases whose payload is a record, and the record's Rust name. */
const RECORD_PAYLOADS = new Map([
  ['DNS-error', 'DnsErrorPayload'],
  ['TLS-alert-received', 'TlsAlertReceivedPayload'],
  ['HTTP-request-trailer-size', 'FieldSizePayload'],
  ['HTTP-response-header-size', 'FieldSizePayload'],
  ['HTTP-response-trailer-size', 'FieldSizePayload'],
]);

/** `error-code` cases whose payload is an option, and the record name inside it if any. */
const OPTION_PAYLOADS = new Map([
  ['HTTP-request-body-size', [undefined]],
  ['HTTP-request-header-section-size', [undefined]],
  ['HTTP-request-header-size', ['FieldSizePayload']],
  ['HTTP-request-trailer-section-size', [undefined]],
  ['HTTP-response-header-section-size', [undefined]],
  ['HTTP-response-body-size', [undefined]],
  ['HTTP-response-trailer-section-size', [undefined]],
  ['HTTP-response-transfer-coding', [undefined]],
  ['HTTP-response-content-coding', [undefined]],
  ['internal-error', [undefined]],
]);

/** `HTTP-request-denied` -> `HttpRequestDenied`. */
function upperCamel(tag) {
  return tag
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase())
    .join('');
}

/** Rust `{:?}` of an option whose `undefined` is `None`. */
function optionDebug(value, recordName) {
  if (value === undefined || value === null) return 'None';
  return `Some(${recordName ? recordDebug(recordName, value) : rustDebug(value)})`;
}

/** Rust `{:?}` of a wasi:http payload record, all of whose fields are options. */
function recordDebug(recordName, value) {
  const fields = Object.entries(value ?? {}).map(
    ([k, v]) => `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${optionDebug(v)}`,
  );
  return `${recordName} { ${fields.join(', ')} }`;
}

/** Rust `{:?}` of a string or number (close enough for error messages). */
function rustDebug(value) {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value !== null && typeof value === 'object' && typeof value.tag === 'string') {
    return value.val === undefined ? upperCamel(value.tag) : `${upperCamel(value.tag)}(${rustDebug(value.val)})`;
  }
  return String(value);
}

/**
 * Decodes `%XX` escapes and `+` (as a space) in a query parameter value, byte for byte as the
 * Rust handler does (its `u8::from_str_radix` also takes `%+X`); invalid UTF-8 becomes U+FFFD.
 * @param {string} value
 * @returns {string}
 */
function percentDecode(value) {
  const bytes = encoder.encode(value);
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; ) {
    const escaped = bytes[i] === 0x25 && i + 2 < bytes.length ? hexByte(bytes[i + 1], bytes[i + 2]) : -1;
    if (escaped >= 0) {
      out[n++] = escaped;
      i += 3;
    } else {
      out[n++] = bytes[i] === 0x2b ? 0x20 : bytes[i];
      i += 1;
    }
  }
  return new TextDecoder().decode(out.subarray(0, n));
}

/**
 * The byte two hex digits (or `+` and one digit) stand for, or -1.
 * @param {number} a
 * @param {number} b
 * @returns {number}
 */
function hexByte(a, b) {
  const digit = (c) =>
    c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
  const lo = digit(b);
  if (lo < 0) return -1;
  if (a === 0x2b) return lo;
  const hi = digit(a);
  return hi < 0 ? -1 : hi * 16 + lo;
}

/**
 * Sends a `text/plain` response with `status` and `body`.
 * @param {import('wasi:http/types@0.2.12').ResponseOutparam} responseOut
 * @param {number} status
 * @param {Uint8Array} body
 */
function respond(responseOut, status, body) {
  const headers = Fields.fromList([['content-type', encoder.encode('text/plain; charset=utf-8')]]);
  const response = new OutgoingResponse(headers);
  response.setStatusCode(status);
  const outgoing = response.body();
  ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
  const stream = outgoing.write();
  // The response head is already sent: if the client went away there is no one to tell.
  try {
    for (let i = 0; i < body.length; i += WRITE_CHUNK) {
      stream.blockingWriteAndFlush(body.subarray(i, i + WRITE_CHUNK));
    }
  } catch {
    // the client is gone
  }
  drop(stream);
  try {
    OutgoingBody.finish(outgoing, undefined);
  } catch {
    // the client is gone
  }
}
