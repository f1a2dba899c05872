"""`http-hello`: a `wasi:http/proxy` handler that reads a secret on every request.

The Python twin of guest/components/http-hello (same paths, statuses and bodies).

`GET /<name>` reads the secret `<name>` through `wasm_secrets` (`GET /` reads `db-password`) and
answers with its length, never its value:

    $ wasm-secrets serve --grant db-password guest/python/dist/http-hello.wasm
    $ curl http://127.0.0.1:8080/db-password
    hello: read secret 'db-password' (18 characters)

A secrets error answers `<kind>: <message>` with status 400 (`invalid-name`), 403
(`not-granted`), 404 (`not-found`) or 500 (`forbidden`, `unavailable`).

`GET /egress?url=<URL>` (the URL percent-encoded or not) makes an outgoing `GET <URL>` through
`wasi:http/outgoing-handler`, with its own `Authorization: Bearer guest-supplied-token` header,
and answers with the upstream status and the first 200 bytes of the upstream body, or `502` and
the error. (So this handler cannot read a secret named `egress`.)
"""

import dataclasses

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import StreamError_Closed, StreamError_LastOperationFailed
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    Method_Get,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
    Scheme_Other,
)

import wasm_secrets

# The secret read by `GET /`.
DEFAULT_SECRET = "db-password"
# The `Authorization` header this guest puts on its outgoing requests; a host with an
# `azure-http` egress grant must replace it with its own token.
GUEST_AUTHORIZATION = b"Bearer guest-supplied-token"
# How much of the upstream body `/egress` echoes.
EXCERPT_BYTES = 200

_STATUS = {
    wasm_secrets.InvalidName: 400,
    wasm_secrets.NotGranted: 403,
    wasm_secrets.NotFound: 404,
}


class IncomingHandler(exports.IncomingHandler):
    """The wasi:http/incoming-handler export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path_with_query = request.path_with_query() or ""
        path, _, query = path_with_query.partition("?")
        first_segment = path.lstrip("/").split("/")[0]
        if first_segment == "egress":
            status, body = egress(query)
        else:
            status, body = read_secret(first_segment or DEFAULT_SECRET)
        respond(response_out, status, body.encode("utf-8"))


def read_secret(name):
    """Reads the secret `name` and describes it without its value: (status, body)."""
    try:
        value = wasm_secrets.get(name)
    except wasm_secrets.SecretError as err:
        return _STATUS.get(type(err), 500), f"{err.kind}: {err.message}\n"
    return 200, f"hello: read secret '{name}' ({len(value)} characters)\n"


def egress(query):
    """`GET` of the `url` query parameter: the upstream status and the start of its body."""
    url = next((p[4:] for p in query.split("&") if p.startswith("url=")), None)
    if url is None:
        return 400, "usage: GET /egress?url=<URL>\n"
    url = percent_decode(url)
    try:
        status, excerpt = fetch(url)
    except FetchError as e:
        return 502, f"egress to {url} failed: {e}\n"
    return status, excerpt.decode("utf-8", errors="replace")


class FetchError(Exception):
    """An outgoing request failed; the message says how."""


def fetch(url):
    """Sends `GET url` through `wasi:http/outgoing-handler`; returns the status and at most
    EXCERPT_BYTES of the body. Raises FetchError."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise FetchError(f"not an absolute URL: {url}")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=-1)
    if cut < 0:
        authority, path_with_query = rest, "/"
    elif rest[cut] == "?":
        authority, path_with_query = rest[:cut], "/" + rest[cut:]
    else:
        authority, path_with_query = rest[:cut], rest[cut:]
    scheme = scheme.lower()
    wit_scheme = {"http": Scheme_Http(), "https": Scheme_Https()}.get(scheme) or Scheme_Other(scheme)

    try:
        headers = Fields.from_list([("authorization", GUEST_AUTHORIZATION)])
    except Err as e:
        raise FetchError(f"headers: {rust_debug(e.value)}") from None
    request = OutgoingRequest(headers)
    try:
        request.set_method(Method_Get())
        request.set_scheme(wit_scheme)
        request.set_authority(authority)
        request.set_path_with_query(path_with_query)
    except Err:
        request.__exit__(None, None, None)
        raise FetchError(f"invalid URL: {url}") from None
    body = request.body()
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        body.__exit__(None, None, None)
        raise FetchError(rust_debug(e.value)) from None
    try:
        OutgoingBody.finish(body, None)
    except Err as e:
        future.__exit__(None, None, None)
        raise FetchError(rust_debug(e.value)) from None

    # `future` outlives the response, as in the Rust handler; children are dropped before
    # parents: the pollable, then the stream, the body, the response and the future.
    with future:
        with future.subscribe() as pollable:
            pollable.block()
        got = future.get()
        if got is None or isinstance(got, Err):
            raise FetchError("no response")
        if isinstance(got.value, Err):
            raise FetchError(rust_debug(got.value.value))
        with got.value.value as response:
            status = response.status()
            with response.consume() as incoming, incoming.stream() as stream:
                excerpt = bytearray()
                while len(excerpt) < EXCERPT_BYTES:
                    try:
                        excerpt += stream.blocking_read(EXCERPT_BYTES - len(excerpt))
                    except Err as e:
                        if isinstance(e.value, StreamError_Closed):
                            break
                        if isinstance(e.value, StreamError_LastOperationFailed):
                            with e.value.value as error:
                                message = error.to_debug_string()
                            raise FetchError(message) from None
                        raise
    return status, bytes(excerpt)


def percent_decode(value):
    """Decodes `%XX` escapes and `+` (as a space) in a query parameter value."""
    data = value.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x25 and i + 3 <= len(data) and _hex_pair(data[i + 1 : i + 3]) is not None:
            out.append(_hex_pair(data[i + 1 : i + 3]))
            i += 3
        elif byte == 0x2B:
            out.append(0x20)
            i += 1
        else:
            out.append(byte)
            i += 1
    return out.decode("utf-8", errors="replace")


_HEX = b"0123456789abcdefABCDEF"


def _hex_pair(pair):
    """The byte two hex digits spell (as Rust's `u8::from_str_radix(_, 16)`), or None."""
    if pair[1] not in _HEX or (pair[0] not in _HEX and pair[0] != 0x2B):
        return None
    return int(pair.decode("ascii"), 16)


def respond(response_out, status, body):
    """Sends a `text/plain` response with `status` and `body`."""
    headers = Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
    response = OutgoingResponse(headers)
    response.set_status_code(status)
    outgoing = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    # The response head is already sent: if the client went away there is no one to tell.
    # `blocking_write_and_flush` takes at most 4096 bytes at a time.
    with outgoing.write() as stream:
        for start in range(0, len(body), 4096):
            try:
                stream.blocking_write_and_flush(body[start : start + 4096])
            except Err:
                break
    try:
        OutgoingBody.finish(outgoing, None)
    except Err:
        pass


def rust_debug(value):
    """`value` (a WIT variant, record, option or scalar from the bindings) as Rust's `{:?}` of the
    wit-bindgen types prints it, so that error bodies match the Rust http-hello: for example
    `ErrorCode::ConnectionRefused` or `ErrorCode::InternalError(Some("..."))`."""
    cls = type(value).__name__
    if isinstance(value, _Option):
        return "None" if value.value is None else f"Some({rust_debug(value.value)})"
    if "_" in cls and dataclasses.is_dataclass(value):
        # A variant case: `ErrorCode_DnsError` -> `ErrorCode::DnsError(payload)`.
        enum, case = cls.split("_", 1)
        fields = dataclasses.fields(value)
        if not fields:
            return f"{enum}::{case}"
        payload = value.value
        if case in _OPTIONAL_PAYLOAD:
            payload = _Option(payload)
        return f"{enum}::{case}({rust_debug(payload)})"
    if dataclasses.is_dataclass(value):
        # A record; in the wasi:http types every field of these records is an option.
        parts = ", ".join(
            f"{f.name.replace('_', '-')}: {rust_debug(_Option(getattr(value, f.name)))}"
            for f in dataclasses.fields(value)
        )
        return f"{cls} {{ {parts} }}"
    if isinstance(value, str):
        return _rust_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# `wasi:http/types.error-code` cases whose payload is an `option<...>` (None in Python).
_OPTIONAL_PAYLOAD = frozenset(
    {
        "HttpRequestBodySize",
        "HttpRequestHeaderSectionSize",
        "HttpRequestHeaderSize",
        "HttpRequestTrailerSectionSize",
        "HttpResponseHeaderSectionSize",
        "HttpResponseBodySize",
        "HttpResponseTrailerSectionSize",
        "HttpResponseTransferCoding",
        "HttpResponseContentCoding",
        "InternalError",
    }
)


@dataclasses.dataclass
class _Option:
    value: object


def _rust_str(s):
    """A string as Rust's `{:?}` quotes it."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\0":
            out.append("\\0")
        elif c.isprintable() or c == " ":
            out.append(c)
        else:
            out.append(f"\\u{{{ord(c):x}}}")
    out.append('"')
    return "".join(out)
