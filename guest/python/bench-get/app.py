"""`bench-get N NAME`: calls `get(NAME)` N times (after a warm-up) and prints the mean
nanoseconds per call.

The Python twin of guest/components/bench-get: a warm-up of min(N, 1000) calls that must all
succeed (else `bench-get: <kind>: <message>` on stderr and exit 1), then N timed calls, then one
line with the integer mean. Exit 2 with `usage: bench-get N NAME` on stderr for bad arguments. It
prints timings, never the value.
"""

import re
import sys
import time

from wit_world import exports
from wit_world.imports import exit as wasi_exit

import wasm_secrets

# What Rust's `str::parse::<u32>` accepts.
_U32 = re.compile(r"\+?[0-9]+")


def parse_u32(text):
    """`text` as a u32, or None."""
    if _U32.fullmatch(text) is None:
        return None
    n = int(text)
    return n if n <= 0xFFFF_FFFF else None


def main(args):
    """Runs the benchmark; returns the exit code."""
    n = parse_u32(args[1]) if len(args) > 1 else None
    if n is None or len(args) < 3:
        sys.stderr.write("usage: bench-get N NAME\n")
        return 2
    name = args[2]
    get = wasm_secrets.get
    for _ in range(min(n, 1000)):
        try:
            get(name)
        except wasm_secrets.SecretError as e:
            sys.stderr.write(f"bench-get: {e}\n")
            return 1
    start = time.perf_counter_ns()
    for _ in range(n):
        try:
            get(name)
        except wasm_secrets.SecretError:
            pass
    ns = (time.perf_counter_ns() - start) // max(n, 1)
    sys.stdout.write(f"{ns}\n")
    return 0


def exit_with(code):
    """Flushes stdout and stderr and ends the component with `code` (returns for 0)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if code != 0:
        wasi_exit.exit_with_code(code)


class Run(exports.Run):
    """The wasi:cli/run export: the component's `main`."""

    def run(self) -> None:
        exit_with(main(sys.argv))
