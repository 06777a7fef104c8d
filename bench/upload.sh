#!/usr/bin/env bash
# Upload throughput and server memory: starts the real `updraft serve` on
# embedded defaults in a temp dir, uploads a SIZE_MB file of random bytes with
# the CLI, and prints MB/s and the server's peak RSS (VmHWM) during the upload.
# It also checks the package's SHA-256 against sha256sum and the downloaded copy.
#   bash bench/upload.sh            # 500 MB
#   SIZE_MB=50 bash bench/upload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${SIZE_MB:-500}"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/updraft" ./cmd/updraft
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom > "$work/fw.bin"
want="$(sha256sum "$work/fw.bin" | cut -d' ' -f1)"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$work/updraft" serve --data "$work/data" --http "127.0.0.1:$port" --mqtt off --log-level warn > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

cli() { "$work/updraft" --data "$work/data" "$@"; }
cli product create bench --name Bench >/dev/null
rss_before="$(awk '/VmHWM/{print $2}' /proc/$pid/status)"
start="$(date +%s.%N)"
out="$(cli package upload "$work/fw.bin" --product bench --version 1.0.0 --output json)"
end="$(date +%s.%N)"
rss_peak="$(awk '/VmHWM/{print $2}' /proc/$pid/status)"
got="$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')"
id="$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
cli package download "$id" -o "$work/back.bin" >/dev/null
cmp -s "$work/fw.bin" "$work/back.bin" && roundtrip=identical || roundtrip=DIFFERENT

secs="$(echo "$end - $start" | bc -l)"
printf 'upload %d MB in %.2f s = %.1f MB/s\n' "$SIZE_MB" "$secs" "$(echo "$SIZE_MB * 1.048576 / $secs" | bc -l)"
printf 'server peak RSS: %d MiB (before upload %d MiB)\n' "$((rss_peak / 1024))" "$((rss_before / 1024))"
printf 'sha256 sha256sum=%s server=%s %s; download %s\n' "$want" "$got" "$([ "$want" = "$got" ] && echo MATCH || echo MISMATCH)" "$roundtrip"
[ "$want" = "$got" ] && [ "$roundtrip" = identical ]
