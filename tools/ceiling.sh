#!/usr/bin/env bash
# Measures the engine against the bare axum ceiling with oha, one workload at a time,
# alternating the two servers so drift hits both. A run counts only if every answer was 2xx
# and oha saw no transport error; otherwise it prints FAILED. Each server is run RUNS times
# (default 3) and the median is reported. The answers themselves are
# checked against the route table by `cargo test -p spikard-rust-workloads`.
#
#   tools/ceiling.sh                        # the five reference workloads, 10 s, c=50
#   DURATION=5s CONCURRENCY=50 tools/ceiling.sh json-small path-int
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-50}
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=(json-small json-large path-int query-medium urlencoded-complex)
BIN=target/release/spikard-rust-workloads
command -v oha >/dev/null || { echo "oha is missing: cargo install oha --locked" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release -p spikard-rust-workloads

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$BIN" --export-table "$work"
"$BIN" --port 18100 2>"$work/engine.log" & pids+=($!)
"$BIN" --port 18101 --bare 2>"$work/bare.log" & pids+=($!)
for port in 18100 18101; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done

run() { # name port -> prints requests/s or FAILED:reason
  python3 - "$work/table.json" "$1" "$2" "$DURATION" "$CONCURRENCY" <<'PY'
import json, subprocess, sys
table, name, port, duration, conc = sys.argv[1:]
w = next(w for w in json.load(open(table)) if w["name"] == name)
s = w["sample"]
cmd = ["oha", "--no-tui", "--output-format", "json", "--disable-compression",
       "-z", duration, "-c", conc, "-m", w["method"]]
if s.get("content_type"): cmd += ["-T", s["content_type"]]
if s.get("body_file"): cmd += ["-D", s["body_file"]]
cmd.append(f"http://127.0.0.1:{port}{s['target']}")
out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
codes = {int(k): v for k, v in (out.get("statusCodeDistribution") or {}).items()}
bad = {k: v for k, v in codes.items() if not 200 <= k < 300}
errors = {k: v for k, v in (out.get("errorDistribution") or {}).items()
          if "aborted due to deadline" not in k}
if bad or errors or not codes:
    print(f"FAILED(status={bad or codes} errors={errors})")
else:
    print(f"{out['summary']['requestsPerSec']:.0f}")
PY
}

printf '%-20s %10s %10s %12s   %s\n' workload engine bare engine/bare "runs (engine | bare)"
for name in "${WORKLOADS[@]}"; do
  results=()
  for _ in $(seq "$RUNS"); do
    results+=("$(run "$name" 18100)" "$(run "$name" 18101)")
  done
  python3 - "$name" "${results[@]}" <<'PY'
import statistics, sys
name, *vals = sys.argv[1:]
if any(not v.isdigit() for v in vals):
    print(f"{name:<20} FAILED " + " ".join(v for v in vals if not v.isdigit())); sys.exit()
engine, bare = list(map(int, vals[0::2])), list(map(int, vals[1::2]))
e, b = statistics.median(engine), statistics.median(bare)
print(f"{name:<20} {e:>10.0f} {b:>10.0f} {e / b:>12.2f}   {engine} | {bare}")
PY
done
