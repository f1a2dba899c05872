#!/usr/bin/env bash
# Instructions per request of `wasm-secrets serve` and of stock `wasmtime serve` (48.0.2) on the
# plain WASI 0.3 handler (http-plain-p3), one connection: valgrind's callgrind counts, which are
# the same for the same binary and inputs whatever else the machine is doing, so a difference
# of 1% means something here where requests per second drift by 5%. 2,000 requests after
# 2,000 of warm-up, each server alone. Ours runs with `--max-concurrent 2`: the pooling
# allocator's reservation for more instances does not fit in valgrind's address space.
#
# Usage: cli/benches/instructions.sh [OUR_BINARY]   (default: target/release/wasm-secrets)
# Needs valgrind and curl, the release guests (`cargo bench -p wasm-secrets-cli --no-run`
# builds them) and the stock binary (fetched by cli/benches/stock-wasmtime.sh; `STOCK_WASMTIME`
# names another, as for the bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
ours=${1:-target/release/wasm-secrets}
guest=target/wasm-guests/wasm32-wasip2/release/http-plain-p3.wasm
for tool in valgrind callgrind_control curl; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install valgrind curl)" >&2; exit 2; }
done
[ -x "$ours" ] || { echo "error: $ours is missing: cargo build --release -p wasm-secrets-cli" >&2; exit 2; }
[ -f "$guest" ] || { echo "error: $guest is missing: cargo bench -p wasm-secrets-cli --no-run" >&2; exit 2; }
stock=${STOCK_WASMTIME:-$(bash cli/benches/stock-wasmtime.sh 2>/dev/null)}
stock_version=$("$stock" --version | awk '{print $2}')

tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
: >"$tmp/empty.toml"
n=2000

# count NAME PORT COMMAND...: instructions per request of the server COMMAND --addr ... GUEST
count() {
    local name=$1 port=$2
    shift 2
    WASM_SECRETS_LOOPBACK_ONLY=1 valgrind --tool=callgrind --smc-check=all-non-file \
        --callgrind-out-file="$tmp/$name" "$@" --addr "127.0.0.1:$port" "$guest" \
        >"$tmp/$name.log" 2>&1 &
    local pid=$!
    for _ in $(seq 120); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        kill -0 $pid 2>/dev/null || { echo "error: $name did not start: $(grep -m1 error "$tmp/$name.log")" >&2; exit 1; }
        sleep 1
    done
    for _ in $(seq $n); do printf 'url = "http://127.0.0.1:%s/"\noutput = "/dev/null"\n' "$port"; done >"$tmp/urls"
    curl -s -K "$tmp/urls"
    callgrind_control -z $pid >/dev/null 2>&1
    curl -s -K "$tmp/urls"
    callgrind_control -d $pid >/dev/null 2>&1
    sleep 1
    kill $pid
    wait $pid 2>/dev/null || true
    local dump
    dump=$(ls -t "$tmp/$name".* | grep -v '\.log$' | head -1)
    echo $(($(awk '/^(summary|totals):/ {print $2; exit}' "$dump") / n))
}

a=$(count ours 18461 "$ours" serve --max-concurrent 2 --secrets-file "$tmp/empty.toml")
b=$(count stock 18462 "$stock" serve -Sp3 -Scli -Wtimeout=30s)
echo "instructions per request, http-plain-p3, 1 connection: wasm-secrets serve $a, stock wasmtime serve $stock_version $b: $(awk "BEGIN {printf \"%.3fx\", $a / $b}")"
