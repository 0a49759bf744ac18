#!/usr/bin/env bash
# Measures servers against each other with oha, one workload at a time, alternating the
# servers so drift hits all of them. A run counts only if every answer was 2xx and oha saw no
# transport error; otherwise it prints FAILED. Each server runs RUNS times (default 3) and the
# median is reported, with each server's ratio to the first. The answers themselves are
# checked against the route table by the test suites (`make test`).
#
# Servers: rust (Rust handlers), bare (the axum ceiling), python (Python handlers).
#
#   tools/compare.sh                                   # rust vs bare, five workloads, 10 s, c=50
#   SERVERS="rust python" tools/compare.sh json-small path-deep
#   DURATION=5s CONCURRENCY=50 RUNS=1 tools/compare.sh json-large
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
SERVERS=(${SERVERS:-rust bare})
PY_WORKERS=${PY_WORKERS:-$(nproc)}
CONCURRENCY=${CONCURRENCY:-50}
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=(json-small json-large path-int query-medium urlencoded-complex)
BIN=target/release/spikard-rust-workloads
PYBIN=target/release/spikard-python-workloads
command -v oha >/dev/null || { echo "oha is missing: cargo install oha --locked" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release -p spikard-rust-workloads

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$BIN" --export-table "$work"
declare -A PORTS
port=18100
for server in "${SERVERS[@]}"; do
  case "$server" in
    rust) "$BIN" --port $port 2>"$work/$server.log" & ;;
    bare) "$BIN" --port $port --bare 2>"$work/$server.log" & ;;
    python)
      [ -x "$PYBIN" ] || { echo "build the Python server first: make build" >&2; exit 1; }
      setsid "$PYBIN" --port $port --workers "$PY_WORKERS" 2>"$work/$server.log" & ;;
    *) echo "unknown server $server (rust, bare, python)" >&2; exit 1 ;;
  esac
  pids+=($!); PORTS[$server]=$port; port=$((port + 1))
done
for server in "${SERVERS[@]}"; do
  ready=
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:${PORTS[$server]}/health" >/dev/null && { ready=1; break; }
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "$server did not start:"; cat "$work/$server.log"; exit 1; } >&2
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

header=$(printf '%-20s' workload)
for server in "${SERVERS[@]}"; do header+=$(printf ' %10s' "$server"); done
for server in "${SERVERS[@]:1}"; do header+=$(printf ' %14s' "$server/${SERVERS[0]}"); done
echo "$header   runs"
for name in "${WORKLOADS[@]}"; do
  results=()
  for _ in $(seq "$RUNS"); do
    for server in "${SERVERS[@]}"; do results+=("$server=$(run "$name" "${PORTS[$server]}")"); done
  done
  python3 - "$name" "${SERVERS[*]}" "${results[@]}" <<'PY'
import statistics, sys
name, servers, *results = sys.argv[1:]
servers = servers.split()
runs = {s: [] for s in servers}
failed = []
for r in results:
    server, value = r.split("=", 1)
    (runs[server].append(int(value)) if value.isdigit() else failed.append(f"{server}: {value}"))
if failed:
    print(f"{name:<20} FAILED " + "; ".join(failed)); sys.exit()
med = {s: statistics.median(v) for s, v in runs.items()}
line = f"{name:<20}" + "".join(f" {med[s]:>10.0f}" for s in servers)
line += "".join(f" {med[s] / med[servers[0]]:>14.2f}" for s in servers[1:])
print(line + "   " + " | ".join(f"{s} {runs[s]}" for s in servers))
PY
done
