/**
 * Read the secrets a WebAssembly component was granted, from JavaScript inside the component.
 *
 * This is the JavaScript guest side of `wasm-secrets`, for components built with
 * componentize-js against the WIT worlds `command` or `http-handler` of
 * `wasm-secrets:secrets@0.1.0` (see `wit/guests.wit`). It wraps the import
 * `wasm-secrets:secrets/store@0.1.0`: the host that runs the component (`wasm-secrets run`,
 * `wasm-secrets serve` or an embedder) answers each call from its grants, its cache and the
 * vault. The component never sees a token and can read only the names it was granted.
 *
 * ```js
 * import { get, NotGranted } from '../wasm-secrets.js';
 *
 * try {
 *   const password = get('db-password');
 *   // ... connect with `password`; never print or log it.
 * } catch (err) {
 *   if (err instanceof NotGranted) { ... }  // or switch on err.kind
 *   console.error(`cannot read db-password: ${err}`);  // "<kind>: <message>"
 * }
 * ```
 *
 * Every function throws a {@link SecretError} on failure. Its message names the secret and the
 * reason and never holds a secret value or a credential, so it is safe to log. Values are
 * never logged by this module.
 *
 * @module wasm-secrets
 */

import * as store from 'wasm-secrets:secrets/store@0.1.0';

/**
 * Why a request for a secret failed.
 *
 * `kind` is the case of the WIT variant `error` (`invalid-name`, `not-granted`, `not-found`,
 * `forbidden` or `unavailable`); `message` is the host's message for people. `String(err)` and
 * template literals give `<kind>: <message>`, like the Rust SDK's `Display`.
 *
 * Catch a subclass ({@link InvalidName}, {@link NotGranted}, {@link NotFound},
 * {@link Forbidden}, {@link Unavailable}) with `instanceof`, or compare `kind`.
 */
export class SecretError extends Error {
  /**
   * @param {string} kind the WIT case name, e.g. `not-granted`
   * @param {string} message the host's message: names the secret and the reason, safe to log
   */
  constructor(kind, message) {
    super(message);
    /** The WIT case name, e.g. `not-granted`. @type {string} */
    this.kind = kind;
    this.name = new.target.name;
  }

  /**
   * `<kind>: <message>`, for example `not-found: secret 'x' not found`.
   * @returns {string}
   */
  toString() {
    return `${this.kind}: ${this.message}`;
  }

  /**
   * The error for a WIT `error` value as the bindings give it: `{ tag, val }`.
   *
   * @param {{ tag: string, val: string }} payload
   * @returns {SecretError} an instance of the subclass for `payload.tag`
   */
  static fromPayload(payload) {
    const Kind = KINDS.get(payload.tag);
    return Kind ? new Kind(payload.val) : new SecretError(String(payload.tag), String(payload.val));
  }
}

/** The name is not 1 to 127 characters of `0-9`, `A-Z`, `a-z` and `-`. */
export class InvalidName extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('invalid-name', message);
  }
}

/** This component holds no grant for the name. */
export class NotGranted extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('not-granted', message);
  }
}

/** The vault has no such secret or version, or the secret is disabled. */
export class NotFound extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('not-found', message);
  }
}

/** The vault refused the host's identity for this secret. */
export class Forbidden extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('forbidden', message);
  }
}

/** The vault is unreachable, throttled or too slow, and the host holds no usable cached value. */
export class Unavailable extends SecretError {
  /** @param {string} message */
  constructor(message) {
    super('unavailable', message);
  }
}

/** @type {Map<string, new (message: string) => SecretError>} */
const KINDS = new Map([
  ['invalid-name', InvalidName],
  ['not-granted', NotGranted],
  ['not-found', NotFound],
  ['forbidden', Forbidden],
  ['unavailable', Unavailable],
]);

/**
 * Calls `f`, turning the error the bindings throw for `result::err` into a {@link SecretError}.
 *
 * componentize-js throws a `ComponentError` whose `payload` is the WIT value `{ tag, val }`. It
 * comes from the bindings' own realm, so `instanceof Error` is false here: test the payload.
 *
 * @template T
 * @param {() => T} f
 * @returns {T}
 */
function call(f) {
  try {
    return f();
  } catch (e) {
    if (e !== null && typeof e === 'object' && Object.prototype.hasOwnProperty.call(e, 'payload')) {
      const p = e.payload;
      if (p !== null && typeof p === 'object' && typeof p.tag === 'string') {
        throw SecretError.fromPayload(p);
      }
    }
    throw e;
  }
}

/**
 * What the vault knows about a secret, without its value.
 *
 * Times are seconds since the Unix epoch, UTC, as `bigint` (WIT `u64`); an absent optional
 * field is `undefined`.
 *
 * @typedef {object} SecretInfo
 * @property {string} name the name this component used to ask for the secret
 * @property {string} version the version {@link get} of this name returns
 * @property {string | undefined} contentType the content type the secret was stored with, if any
 * @property {boolean} enabled whether the secret may be read
 * @property {bigint | undefined} notBefore the secret may not be used before this time
 * @property {bigint | undefined} expires the secret may not be used after this time
 * @property {bigint | undefined} created when this version was created
 * @property {bigint | undefined} updated when this version was last updated
 * @property {Array<[string, string]>} tags the tags set on the secret, as [key, value] pairs
 */

/**
 * The current value of the secret granted under `name`. A grant pinned to a version returns
 * that version.
 *
 * ```js
 * const token = get('github-token');
 * ```
 *
 * @param {string} name
 * @returns {string} the value: never print or log it
 * @throws {SecretError}
 */
export function get(name) {
  return call(() => store.get(name));
}

/**
 * The marker that has the host apply the use-only secret granted under `name` to an outgoing
 * HTTP request: put it in a header value where the secret belongs. The host fills it as the
 * request leaves, for the hosts the component's `use:` grant names; the value never enters the
 * component.
 *
 * ```js
 * await fetch(url, { headers: { authorization: `Bearer ${useSecret('crm')}` } });
 * ```
 *
 * @param {string} name
 * @returns {string} the marker, `{{secret:NAME}}`
 * @throws {InvalidName} unless `name` is 1 to 127 characters of `0-9`, `A-Z`, `a-z` and `-`
 */
export function useSecret(name) {
  if (!/^[0-9A-Za-z-]{1,127}$/.test(name)) {
    throw new InvalidName(`'${name}' is not 1 to 127 characters of 0-9, A-Z, a-z and -`);
  }
  return `{{secret:${name}}}`;
}

/**
 * The value of one version of the secret granted under `name`.
 *
 * `version` is the vault's version identifier (32 hexadecimal characters in Azure Key Vault).
 * A grant pinned to a version allows only that version.
 *
 * ```js
 * const old = getVersion('db-password', '4387e9f3d6e14c459867679a90fd0f79');
 * ```
 *
 * @param {string} name
 * @param {string} version
 * @returns {string} the value: never print or log it
 * @throws {SecretError}
 */
export function getVersion(name, version) {
  return call(() => store.getVersion(name, version));
}

/**
 * The metadata of the secret granted under `name`. Never the value.
 *
 * ```js
 * const { name, version, expires } = info('tls-key');
 * if (expires !== undefined) console.log(`${name} version ${version} expires at ${expires}`);
 * ```
 *
 * @param {string} name
 * @returns {SecretInfo}
 * @throws {SecretError}
 */
export function info(name) {
  const i = call(() => store.info(name));
  return {
    name: i.name,
    version: i.version,
    contentType: i.contentType ?? undefined,
    enabled: i.enabled,
    notBefore: i.notBefore ?? undefined,
    expires: i.expires ?? undefined,
    created: i.created ?? undefined,
    updated: i.updated ?? undefined,
    tags: Array.from(i.tags, ([key, value]) => [key, value]),
  };
}

/**
 * The names this component may read that exist in the vault, sorted.
 *
 * Names come from exact grants that exist and from the vault secrets matching pattern grants;
 * names outside the grants are never listed.
 *
 * @returns {string[]}
 * @throws {SecretError}
 */
export function list() {
  return Array.from(call(() => store.list()));
}
