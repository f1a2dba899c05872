"""`http-hello-p3`: a WASI 0.3 `wasi:http/handler@0.3.0` that reads a secret on every request
through the async `wasm-secrets:secrets/store@0.2.0` (world `http-handler-p3`, guest/python/wit-p3).

The Python twin of guest/components/http-hello-p3 (same paths, statuses and bodies); its
`handle` is a coroutine, so an instance serves several requests at once while each waits for
the vault.

`GET /<name>` reads the secret `<name>` (`GET /` reads `db-password`) and answers with its
length, never its value: `hello: read secret '<name>' (<n> characters)`. A secrets error answers
`<kind>: <message>` with status 400 (`invalid-name`), 403 (`not-granted`), 404 (`not-found`) or
500 (`forbidden`, `unavailable`).
"""

import componentize_py_async_support
import wit_world
from componentize_py_async_support.streams import ByteStreamWriter
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import store
from wit_world.imports.wasi_http_types import Fields, Request, Response
from wit_world.imports.wasm_secrets_secrets_types import (
    Error_Forbidden,
    Error_InvalidName,
    Error_NotFound,
    Error_NotGranted,
    Error_Unavailable,
)

DEFAULT_SECRET = "db-password"

# WIT case -> (kind, status)
_KIND = {
    Error_InvalidName: ("invalid-name", 400),
    Error_NotGranted: ("not-granted", 403),
    Error_NotFound: ("not-found", 404),
    Error_Forbidden: ("forbidden", 500),
    Error_Unavailable: ("unavailable", 500),
}


class Handler(exports.Handler):
    """The wasi:http/handler@0.3.0 export."""

    async def handle(self, request: Request) -> Response:
        path = (request.get_path_with_query() or "").partition("?")[0]
        name = path.lstrip("/").split("/")[0] or DEFAULT_SECRET
        status, body = await read_secret(name)
        return respond(status, body.encode("utf-8"))


async def read_secret(name):
    """Reads the secret `name` and describes it without its value: (status, body)."""
    try:
        value = await store.get(name)
    except Err as e:  # e.value is one of the Error_* dataclasses; .value is the message
        kind, status = _KIND.get(type(e.value), ("error", 500))
        return status, f"{kind}: {e.value.value}\n"
    return 200, f"hello: read secret '{name}' ({len(value)} characters)\n"


def respond(status, body):
    """A `text/plain` response with `status` and `body` (written by a spawned task, since the
    stream's reader is the host, which reads only once `handle` has returned)."""
    tx, rx = wit_world.byte_stream()
    componentize_py_async_support.spawn(write_body(tx, body))
    trailers = wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
        lambda: Ok(None)
    )[1]
    response = Response.new(
        Fields.from_list([("content-type", b"text/plain; charset=utf-8")]), rx, trailers
    )[0]
    response.set_status_code(status)
    return response


async def write_body(tx: ByteStreamWriter, body: bytes) -> None:
    with tx:
        await tx.write_all(body)
