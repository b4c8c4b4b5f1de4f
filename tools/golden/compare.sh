#!/usr/bin/env bash
# Golden comparison of two `assay` binaries on one ledger, for changes that must not change
# behaviour (issue "one of each"): OLD builds the small demo lab; then OLD and NEW each, in
# turn, answer the same reads on that same ledger — CLI reads (verify, audit, replay digests,
# queue, gpus, checkpoints, log) and the served HTTP API (/v1 bodies and statuses, byte for
# byte) and dashboard (each page's tags, attributes and text, whitespace between tags aside,
# since how HTML is built may change but not what it says). Exit 0 when every answer is the
# same, 1 with the differing names otherwise.
#
# Usage: tools/golden/compare.sh OLD_ASSAY NEW_ASSAY [WORK_DIR]
set -euo pipefail
old=$(realpath "$1")
new=$(realpath "$2")
work=${3:-$(mktemp -d)}
here=$(dirname "$(realpath "$0")")
mkdir -p "$work"
lab="$work/lab"
[ -e "$lab" ] || "$old" demo --size small --dir "$lab" >/dev/null
db="$lab/assay.db"

capture() { # BIN OUT
  local bin=$1 out=$2
  rm -rf "$out" && mkdir -p "$out/cli" "$out/http"
  "$bin" verify --db "$db" --json >"$out/cli/verify" 2>&1 || true
  "$bin" audit --db "$db" --json >"$out/cli/audit" 2>&1 || true
  "$bin" replay --db "$db" --digest-only >"$out/cli/replay" 2>&1 || true
  "$bin" replay --db "$db" --at 700 --projection queue --json >"$out/cli/replay-queue-700" 2>&1 || true
  "$bin" queue --db "$db" --json >"$out/cli/queue" 2>&1 || true
  "$bin" gpus --db "$db" --json >"$out/cli/gpus" 2>&1 || true
  "$bin" checkpoint --db "$db" --list >"$out/cli/checkpoints" 2>&1 || true
  "$bin" log --db "$db" --json >"$out/cli/log" 2>&1 || true
  "$bin" proof inclusion 42 --db "$db" --json >"$out/cli/inclusion" 2>&1 || true
  local url_file="$out/serve.out"
  "$bin" serve --db "$db" --listen 127.0.0.1:0 >"$url_file" 2>"$out/serve.err" &
  local pid=$!
  local url=""
  for _ in $(seq 1 100); do
    url=$(grep -o 'http://[0-9.:]*' "$url_file" | head -n1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { kill "$pid"; echo "no URL from $bin serve" >&2; exit 2; }
  python3 "$here/fetch.py" "$url" "$out/http"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

capture "$old" "$work/old"
capture "$new" "$work/new"
if diff -r -q "$work/old/cli" "$work/new/cli" && diff -r -q "$work/old/http" "$work/new/http"; then
  echo "golden: the same answers ($(ls "$work/old/cli" | wc -l) CLI reads, $(ls "$work/old/http" | wc -l) HTTP reads) in $work"
else
  echo "golden: answers differ (above); both sides are in $work/old and $work/new" >&2
  exit 1
fi
