"""`http-send`: sends one request with Python's wasi:http client and prints what came back.

The Python twin of guest/components/http-send and guest/js/http-send:

    http-send [-X METHOD] [-H 'NAME: VALUE']... [--bearer NAME] [-d BODY] URL

prints `status: N`, one `header: NAME: VALUE` line per response header and `body: ...`, or
`error: <why>` (exit 1). A header may hold a `{{secret:NAME}}` marker, which the host fills
with a use-only secret when the request leaves; this guest never sees the value:

    headers = Fields.from_list([("authorization", b"Bearer {{secret:stripe}}")])

``--bearer NAME`` sends ``Authorization: Bearer`` with the marker the SDK makes
(``wasm_secrets.use_secret``).
"""

import sys

import wasm_secrets

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import exit as wasi_exit
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import StreamError_Closed, StreamError_LastOperationFailed
from wit_world.imports.wasi_http_types import (
    Fields,
    Method_Get,
    Method_Other,
    Method_Post,
    Method_Put,
    OutgoingBody,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
    Scheme_Other,
)

USAGE = "usage: http-send [-X METHOD] [-H 'NAME: VALUE']... [--bearer NAME] [-d BODY] URL"


class Failed(Exception):
    """The request failed; the message says how."""


def parse(args):
    method, headers, body, url = "GET", [], b"", None
    it = iter(args)
    for arg in it:
        if arg == "-X":
            method = next(it)
        elif arg == "-H":
            name, sep, value = next(it).partition(":")
            if not sep:
                raise ValueError("-H needs NAME: VALUE")
            headers.append((name.strip(), value.strip().encode()))
        elif arg == "--bearer":
            headers.append(("authorization", f"Bearer {wasm_secrets.use_secret(next(it))}".encode()))
        elif arg == "-d":
            body = next(it).encode()
        elif url is None:
            url = arg
        else:
            raise ValueError(f"unexpected argument {arg}")
    if url is None:
        raise ValueError(USAGE)
    return method, headers, body, url


def send(method, headers, body, url):
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise Failed(f"not an absolute URL: {url}")
    authority, slash, path = rest.partition("/")
    wit_scheme = {"http": Scheme_Http(), "https": Scheme_Https()}.get(scheme) or Scheme_Other(scheme)
    wit_method = {"GET": Method_Get(), "POST": Method_Post(), "PUT": Method_Put()}.get(method) or Method_Other(method)
    try:
        fields = Fields.from_list(headers)
    except Err as e:
        raise Failed(f"headers: {e.value}") from None
    request = OutgoingRequest(fields)
    request.set_method(wit_method)
    request.set_scheme(wit_scheme)
    request.set_authority(authority)
    request.set_path_with_query(slash + path)
    outgoing = request.body()
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        outgoing.__exit__(None, None, None)
        raise Failed(str(e.value)) from None
    with outgoing.write() as stream:
        for i in range(0, len(body), 4096):
            stream.blocking_write_and_flush(body[i : i + 4096])
    OutgoingBody.finish(outgoing, None)
    with future:
        with future.subscribe() as pollable:
            pollable.block()
        got = future.get()
        if got is None or isinstance(got, Err):
            raise Failed("no response")
        if isinstance(got.value, Err):
            raise Failed(str(got.value.value))
        with got.value.value as response:
            print(f"status: {response.status()}")
            with response.headers() as response_headers:
                for name, value in response_headers.entries():
                    print(f"header: {name}: {value.decode(errors='replace')}")
            with response.consume() as incoming, incoming.stream() as stream:
                data = bytearray()
                while True:
                    try:
                        data += stream.blocking_read(65536)
                    except Err as e:
                        if isinstance(e.value, StreamError_Closed):
                            break
                        if isinstance(e.value, StreamError_LastOperationFailed):
                            with e.value.value as error:
                                raise Failed(error.to_debug_string()) from None
                        raise
            print(f"body: {data.decode(errors='replace')}")


class Run(exports.Run):
    """The wasi:cli/run export."""

    def run(self) -> None:
        try:
            request = parse(sys.argv[1:])
        except (ValueError, StopIteration) as e:
            print(str(e) or USAGE, file=sys.stderr)
            wasi_exit.exit(Err(None))
            return
        try:
            send(*request)
        except Failed as e:
            print(f"error: {e}")
            sys.stdout.flush()
            wasi_exit.exit(Err(None))
