"""Use keys that never leave the vault, from inside a Python component.

The host has the vault sign, verify, wrap, unwrap, encrypt and decrypt with the key this
component was granted (a grant ``key:NAME:OPS``); the component sees neither the private key
nor a token. Components using this module are built against the ``command`` world of
``wit/guests.wit``, which imports ``wasm-secrets:secrets/keys@0.1.0``.

    import hashlib
    import wasm_secrets_keys as keys

    signature = keys.sign("signer", "ES256", hashlib.sha256(b"header.payload").digest())

Every function raises :class:`KeyOperationError` on failure; its ``kind`` is the WIT case
(``invalid-name``, ``not-granted``, ``not-found``, ``forbidden``, ``unavailable``,
``invalid-argument``) and its message never holds key material, an input, an output or a token.
"""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import keys as _keys

__all__ = [
    "KeyOperationError",
    "SIGNATURE_ALGORITHMS",
    "sign",
    "verify",
    "wrap_key",
    "unwrap_key",
    "encrypt",
    "decrypt",
    "public_key",
]

#: The signature algorithms, by their JWA names.
SIGNATURE_ALGORITHMS = {
    "RS256": _keys.SignatureAlgorithm.RS256,
    "RS384": _keys.SignatureAlgorithm.RS384,
    "RS512": _keys.SignatureAlgorithm.RS512,
    "PS256": _keys.SignatureAlgorithm.PS256,
    "PS384": _keys.SignatureAlgorithm.PS384,
    "PS512": _keys.SignatureAlgorithm.PS512,
    "ES256": _keys.SignatureAlgorithm.ES256,
    "ES384": _keys.SignatureAlgorithm.ES384,
    "ES512": _keys.SignatureAlgorithm.ES512,
    "ES256K": _keys.SignatureAlgorithm.ES256K,
}

_ENCRYPTION_ALGORITHMS = {
    "RSA-OAEP": _keys.EncryptionAlgorithm.RSA_OAEP,
    "RSA-OAEP-256": _keys.EncryptionAlgorithm.RSA_OAEP256,
    "RSA1_5": _keys.EncryptionAlgorithm.RSA1_5,
}

_KINDS = {
    _keys.KeyError_InvalidName: "invalid-name",
    _keys.KeyError_NotGranted: "not-granted",
    _keys.KeyError_NotFound: "not-found",
    _keys.KeyError_Forbidden: "forbidden",
    _keys.KeyError_Unavailable: "unavailable",
    _keys.KeyError_InvalidArgument: "invalid-argument",
}


class KeyOperationError(Exception):
    """Why a key operation failed: ``kind`` (the WIT case) and ``message`` (safe to log).

    ``str(err)`` is ``"<kind>: <message>"``, as in the Rust SDK.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def _call(f, *args):
    try:
        return f(*args)
    except Err as e:
        kind = _KINDS.get(type(e.value))
        if kind is None:
            raise
        raise KeyOperationError(kind, e.value.value) from None


def _signature_algorithm(alg: str):
    try:
        return SIGNATURE_ALGORITHMS[alg.upper()]
    except KeyError:
        raise KeyOperationError("invalid-argument", f'"{alg}" is not a signature algorithm') from None


def _encryption_algorithm(alg: str):
    try:
        return _ENCRYPTION_ALGORITHMS[alg.upper()]
    except KeyError:
        raise KeyOperationError("invalid-argument", f'"{alg}" is not an encryption algorithm') from None


def sign(name: str, algorithm: str, digest: bytes) -> bytes:
    """Signs ``digest`` (the message's hash) with the key granted as ``name``."""
    return _call(_keys.sign, name, _signature_algorithm(algorithm), digest)


def verify(name: str, algorithm: str, digest: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the key's signature of ``digest``."""
    return _call(_keys.verify, name, _signature_algorithm(algorithm), digest, signature)


def wrap_key(name: str, algorithm: str, key: bytes) -> bytes:
    """Wraps the symmetric ``key`` with the key granted as ``name``."""
    return _call(_keys.wrap_key, name, _encryption_algorithm(algorithm), key)


def unwrap_key(name: str, algorithm: str, wrapped: bytes) -> bytes:
    """Unwraps a key wrapped by :func:`wrap_key`."""
    return _call(_keys.unwrap_key, name, _encryption_algorithm(algorithm), wrapped)


def encrypt(name: str, algorithm: str, plaintext: bytes) -> bytes:
    """Encrypts a short ``plaintext`` with the key granted as ``name``."""
    return _call(_keys.encrypt, name, _encryption_algorithm(algorithm), plaintext)


def decrypt(name: str, algorithm: str, ciphertext: bytes) -> bytes:
    """Decrypts a ciphertext made by :func:`encrypt`."""
    return _call(_keys.decrypt, name, _encryption_algorithm(algorithm), ciphertext)


def public_key(name: str) -> str:
    """The public JSON Web Key of the key granted as ``name`` (never private parts)."""
    return _call(_keys.public_key, name)
