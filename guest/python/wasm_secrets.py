"""Read the secrets a WebAssembly component was granted, from inside the component.

This is the Python guest side of `wasm-secrets`, for components built with
componentize-py against the worlds in ``wit/guests.wit`` (``command`` or
``http-handler``). The component imports the WIT interface
``wasm-secrets:secrets/store@0.1.0``; the host that runs it (``wasm-secrets run``,
``wasm-secrets serve`` or an embedder) answers each call from its grants, its
cache and the vault. The component never sees a token and can read only the
names it was granted.

    import wasm_secrets

    try:
        password = wasm_secrets.get("db-password")
        # ... connect with `password`; never print or log it.
    except wasm_secrets.NotGranted as e:
        print(f"ask the operator for a grant: {e}")

Every function raises a subclass of :class:`SecretError` on failure, one per
case of the WIT ``error`` variant. Its message names the secret and the reason
and never holds a secret value or a credential, so it is safe to log; the
value returned by :func:`get` or :func:`get_version` is the secret itself and
must not be.

The functions call the host and so work only inside a component. The raw
generated bindings are ``wit_world.imports.store`` and
``wit_world.imports.wasm_secrets_secrets_types``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Optional, Tuple

from componentize_py_types import Err
from wit_world.imports import store as _store
from wit_world.imports import wasm_secrets_secrets_types as _types

# `list` is left out of `__all__` so that `from wasm_secrets import *` does not hide the builtin;
# call it as `wasm_secrets.list()`.
__all__ = [
    "SecretError",
    "InvalidName",
    "NotGranted",
    "NotFound",
    "Forbidden",
    "Unavailable",
    "SecretInfo",
    "get",
    "get_version",
    "info",
    "use_secret",
]

# This module defines a function named `list`; the builtin stays reachable as `_list`.
_list = builtins.list


class SecretError(Exception):
    """Why a request for a secret failed. The base class of the five error kinds.

    Attributes:
        kind: the WIT case name: ``invalid-name``, ``not-granted``,
            ``not-found``, ``forbidden`` or ``unavailable``.
        message: the host's message. It names the secret and the reason and
            never holds a secret value, a token or a credential.

    ``str(err)`` is ``"<kind>: <message>"``, for example
    ``not-found: secret 'x' not found`` (as the Rust SDK's ``Display``).
    """

    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message: str = message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidName(SecretError):
    """The name is not 1 to 127 characters of ``0-9``, ``A-Z``, ``a-z`` and ``-``."""

    kind = "invalid-name"


class NotGranted(SecretError):
    """This component holds no grant for the name."""

    kind = "not-granted"


class NotFound(SecretError):
    """The vault has no such secret or version, or the secret is disabled."""

    kind = "not-found"


class Forbidden(SecretError):
    """The vault refused the host's identity for this secret."""

    kind = "forbidden"


class Unavailable(SecretError):
    """The vault is unreachable, throttled or too slow, and the host holds no usable cached value."""

    kind = "unavailable"


_ERRORS = {
    _types.Error_InvalidName: InvalidName,
    _types.Error_NotGranted: NotGranted,
    _types.Error_NotFound: NotFound,
    _types.Error_Forbidden: Forbidden,
    _types.Error_Unavailable: Unavailable,
}


def _error(err: Err) -> BaseException:
    """The :class:`SecretError` for the WIT error carried by ``err`` (``err`` itself if unknown)."""
    cls = _ERRORS.get(type(err.value))
    return cls(err.value.value) if cls is not None else err


@dataclass(frozen=True)
class SecretInfo:
    """What the vault knows about a secret, without its value.

    Times are seconds since the Unix epoch, UTC; ``None`` when the vault does
    not say.

    Attributes:
        name: the name this component used to ask for the secret.
        version: the version :func:`get` of this name returns.
        content_type: the content type the secret was stored with, if any
            (for example ``text/plain``).
        enabled: whether the secret may be read.
        not_before: the secret may not be used before this time.
        expires: the secret may not be used after this time.
        created: when this version was created.
        updated: when this version was last updated.
        tags: the tags set on the secret, as ``(key, value)`` pairs.
    """

    name: str
    version: str
    content_type: Optional[str]
    enabled: bool
    not_before: Optional[int]
    expires: Optional[int]
    created: Optional[int]
    updated: Optional[int]
    tags: Tuple[Tuple[str, str], ...]


def get(name: str) -> str:
    """The current value of the secret granted under ``name``.

    A grant pinned to a version returns that version. Raises a
    :class:`SecretError` subclass on failure.
    """
    try:
        return _store.get(name)
    except Err as e:
        raise _error(e) from None


def use_secret(name: str) -> str:
    """The marker that has the host apply the use-only secret granted under
    ``name`` to an outgoing HTTP request: put it in a header value where the
    secret belongs (``"Bearer " + use_secret("crm")``). The host fills it as
    the request leaves, for the hosts the component's ``use:`` grant names;
    the value never enters the component. Raises :class:`InvalidName` for a
    name that is not 1 to 127 characters of ``0-9``, ``A-Z``, ``a-z`` and
    ``-``.
    """
    if not 1 <= len(name) <= 127 or not all(
        c.isascii() and (c.isalnum() or c == "-") for c in name
    ):
        raise InvalidName(f"'{name}' is not 1 to 127 characters of 0-9, A-Z, a-z and -")
    return "{{secret:" + name + "}}"


def get_version(name: str, version: str) -> str:
    """The value of one version of the secret granted under ``name``.

    ``version`` is the vault's version identifier (32 hexadecimal characters in
    Azure Key Vault). A grant pinned to a version allows only that version.
    Raises a :class:`SecretError` subclass on failure.
    """
    try:
        return _store.get_version(name, version)
    except Err as e:
        raise _error(e) from None


def info(name: str) -> SecretInfo:
    """The metadata of the secret granted under ``name``; never the value.

    Raises a :class:`SecretError` subclass on failure.
    """
    try:
        r = _store.info(name)
    except Err as e:
        raise _error(e) from None
    return SecretInfo(
        name=r.name,
        version=r.version,
        content_type=r.content_type,
        enabled=r.enabled,
        not_before=r.not_before,
        expires=r.expires,
        created=r.created,
        updated=r.updated,
        tags=tuple((k, v) for k, v in r.tags),
    )


def list() -> builtins.list[str]:  # noqa: A001 - the name the API promises
    """The names this component may read that exist in the vault, sorted.

    Names come from exact grants that exist and from the vault secrets matching
    pattern grants; names outside the grants are never listed. Raises a
    :class:`SecretError` subclass on failure.
    """
    try:
        return _list(_store.list())
    except Err as e:
        raise _error(e) from None
