"""`jwt-sign`: builds a JWT from `key=value` claims and has the vault sign it with the key this
component knows as `signer`; the private key never leaves the vault.

The Python twin of guest/components/jwt-sign (same arguments, output and exit codes):

    jwt-sign [--alg ALG] [--key NAME] CLAIM=VALUE...

A value that is an integer, `true` or `false` becomes a JSON number or boolean; anything else a
string. The compact token is printed on a line of its own. A failure prints
`jwt-sign: <error-kind>: <message>` on stderr and exits 1; a usage error exits 2.
"""

import base64
import hashlib
import json
import sys

from wit_world import exports
from wit_world.imports import exit as wasi_exit

import wasm_secrets_keys as keys

USAGE = (
    "usage: jwt-sign [--alg ES256|ES384|ES512|ES256K|RS256|RS384|RS512|PS256|PS384|PS512]"
    " [--key NAME] CLAIM=VALUE..."
)

HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claim_value(value: str):
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        return value


def parse(args):
    alg, key, claims = "ES256", "signer", {}
    args = iter(args)
    for arg in args:
        if arg == "--alg":
            alg = next(args, None)
            if alg is None:
                raise ValueError("--alg needs an algorithm")
            if alg.upper() not in keys.SIGNATURE_ALGORITHMS:
                raise ValueError(f'"{alg}" is not a signature algorithm')
            alg = alg.upper()
        elif arg == "--key":
            key = next(args, None)
            if key is None:
                raise ValueError("--key needs a key name")
        else:
            name, sep, value = arg.partition("=")
            if not sep or not name:
                raise ValueError(f'"{arg}" is not CLAIM=VALUE')
            claims[name] = claim_value(value)
    if not claims:
        raise ValueError("give at least one CLAIM=VALUE")
    return alg, key, claims


def compact(obj) -> str:
    # Sorted keys and no spaces: the same bytes as the Rust twin's serde_json.
    return b64url(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


class Run(exports.Run):
    def run(self) -> None:
        try:
            alg, key, claims = parse(sys.argv[1:])
        except ValueError as e:
            print(f"jwt-sign: {e}\n{USAGE}", file=sys.stderr)
            sys.stderr.flush()
            wasi_exit.exit_with_code(2)
            return
        signing_input = f'{compact({"alg": alg, "typ": "JWT"})}.{compact(claims)}'
        digest = HASHES[alg[2:5]](signing_input.encode()).digest()
        try:
            signature = keys.sign(key, alg, digest)
        except keys.KeyOperationError as e:
            print(f"jwt-sign: {e}", file=sys.stderr)
            sys.stderr.flush()
            wasi_exit.exit_with_code(1)
            return
        print(f"{signing_input}.{b64url(signature)}")
        sys.stdout.flush()
