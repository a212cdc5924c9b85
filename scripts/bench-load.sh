#!/usr/bin/env bash
# Benchmarks of `seaworthy load` on this machine (not a test: it prints figures, it asserts nothing).
#
#  1. Closed-model max throughput against one local nginx serving a static file, same connection
#     count, interleaved rounds (median): `seaworthy load --rate max` vs wrk vs oha, with the CPU
#     each tool burns per request (less sensitive to other processes on the machine than req/s).
#  2. Constant-rate accuracy at 1k, 5k and rising rates until one is not held: achieved/planned
#     and the p99 of how late requests left behind their plan.
#  3. Bytes per request record and peak RSS of a 1,000,000-request run (/usr/bin/time -v).
#
# Env: SEAWORTHY (binary; default: cargo build --release), CONNS (50), SECS (8 per throughput
# round), ROUNDS (3), NGINX_WORKERS (1), OHA (oha binary; default: PATH, else `cargo install oha`
# into a temp root unless NO_OHA_INSTALL=1), SW_ARGS (extra flags for seaworthy's throughput
# rounds, e.g. "--max-requests-per-connection 32" to measure a bounded connection life; default
# none: `seaworthy load`'s own defaults, unlimited keep-alive like wrk and oha), THROUGHPUT_ONLY=1
# (stop after part 1).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-50}
SECS=${SECS:-8}
ROUNDS=${ROUNDS:-3}
NGINX_WORKERS=${NGINX_WORKERS:-1}
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/seaworthy-bench.XXXXXX)
NGINX_PID=
cleanup() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${SEAWORTHY:-}" ]; then
    cargo build --release --bin seaworthy >&2
    SEAWORTHY=target/release/seaworthy
fi
if ! "$SEAWORTHY" load --help >/dev/null 2>&1; then
    echo "error: $SEAWORTHY has no \`load\` subcommand" >&2
    exit 1
fi

find_oha() {
    if [ -n "${OHA:-}" ]; then return; fi
    if command -v oha >/dev/null; then OHA=$(command -v oha); return; fi
    local root=${OHA_ROOT:-/tmp/seaworthy-oha}
    if [ -x "$root/bin/oha" ]; then OHA=$root/bin/oha; return; fi
    if [ "${NO_OHA_INSTALL:-}" = 1 ]; then OHA=; return; fi
    echo "installing oha into $root (cargo install; takes a few minutes)..." >&2
    if CARGO_TARGET_DIR="$root/target" cargo install oha --locked --root "$root" >"$WORK/oha-install.log" 2>&1; then
        OHA=$root/bin/oha
    else
        echo "note: cargo install oha failed, oha is skipped (log: tail of $WORK/oha-install.log):" >&2
        tail -5 "$WORK/oha-install.log" >&2
        OHA=
    fi
}
find_oha

# --- nginx on a free loopback port -------------------------------------------------------------
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/www" "$WORK/tmp"
$PY -c 'print("<h1>seaworthy</h1>" * 30)' >"$WORK/www/index.html"
USER_LINE=; [ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat >"$WORK/nginx.conf" <<CONF
$USER_LINE
daemon off; worker_processes $NGINX_WORKERS; pid $WORK/nginx.pid; error_log $WORK/error.log;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  server { listen 127.0.0.1:$PORT; root $WORK/www; }
}
CONF
/usr/sbin/nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" &
NGINX_PID=$!
URL=http://127.0.0.1:$PORT/index.html
for _ in $(seq 100); do curl -fs -o /dev/null "$URL" && break; sleep 0.05; done
curl -fs -o /dev/null "$URL"

json() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cpu_us() { awk -v n="$2" '{printf "%.1f", ($1+$2)*1e6/n}' "$1"; }

echo "machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); nginx $NGINX_WORKERS worker(s) at $URL"
echo
echo "== closed-model max throughput: $CONNS connections, ${SECS}s x $ROUNDS rounds (median); seaworthy flags: ${SW_ARGS:-none (its defaults)} =="
: >"$WORK/sw" ; : >"$WORK/wrk" ; : >"$WORK/oha"
: >"$WORK/sw.cpu" ; : >"$WORK/wrk.cpu" ; : >"$WORK/oha.cpu"
for round in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$WORK/t" "$SEAWORTHY" load "$URL" --rate max -c "$CONNS" --duration "${SECS}s" -q --json "$WORK/sw.json" ${SW_ARGS:-} || true
    rps=$(json "$WORK/sw.json" "d['achieved_rps']"); n=$(json "$WORK/sw.json" "d['completed']")
    echo "$rps" >>"$WORK/sw"; cpu_us "$WORK/t" "$n" >>"$WORK/sw.cpu"; echo >>"$WORK/sw.cpu"

    /usr/bin/time -f "%U %S" -o "$WORK/t" wrk -t"$(nproc)" -c"$CONNS" -d"${SECS}s" "$URL" >"$WORK/wrk.out"
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out"); n=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    echo "$rps" >>"$WORK/wrk"; cpu_us "$WORK/t" "$n" >>"$WORK/wrk.cpu"; echo >>"$WORK/wrk.cpu"

    if [ -n "$OHA" ]; then
        /usr/bin/time -f "%U %S" -o "$WORK/t" "$OHA" -z "${SECS}s" -c "$CONNS" --no-tui --output-format json "$URL" >"$WORK/oha.json"
        rps=$(json "$WORK/oha.json" "d['summary']['requestsPerSec']")
        n=$(json "$WORK/oha.json" "sum(d['statusCodeDistribution'].values())")
        echo "$rps" >>"$WORK/oha"; cpu_us "$WORK/t" "$n" >>"$WORK/oha.cpu"; echo >>"$WORK/oha.cpu"
    fi
    echo "  round $round: seaworthy $(tail -1 "$WORK/sw")  wrk $(tail -1 "$WORK/wrk")  oha $(tail -1 "$WORK/oha" 2>/dev/null || echo -)" >&2
done
SW=$(median <"$WORK/sw"); WRK=$(median <"$WORK/wrk")
printf "  %-10s %10.0f req/s   %6.1f us CPU/request\n" seaworthy "$SW" "$(grep . "$WORK/sw.cpu" | median)"
printf "  %-10s %10.0f req/s   %6.1f us CPU/request\n" wrk "$WRK" "$(grep . "$WORK/wrk.cpu" | median)"
if [ -n "$OHA" ]; then
    OHA_RPS=$(median <"$WORK/oha")
    printf "  %-10s %10.0f req/s   %6.1f us CPU/request\n" oha "$OHA_RPS" "$(grep . "$WORK/oha.cpu" | median)"
    printf "  seaworthy/oha = %.2f (goal >= 1.0)\n" "$(echo "$SW $OHA_RPS" | awk '{print $1/$2}')"
else
    echo "  oha: skipped (not installed, install failed, or NO_OHA_INSTALL=1)"
fi
printf "  seaworthy/wrk = %.2f (goal >= 0.8)\n" "$(echo "$SW $WRK" | awk '{print $1/$2}')"
[ "${THROUGHPUT_ONLY:-}" = 1 ] && exit 0

echo
echo "== constant-rate accuracy (open model, 5s each) =="
printf "  %8s %10s %10s %9s %12s %12s %6s\n" planned achieved ratio failed "late p99 ms" "late max ms" held
HIGHEST=
accuracy() {
    local rate=$1
    "$SEAWORTHY" load "$URL" --rate "$rate" --duration 5s -c 32 --max-in-flight 2048 -q --json "$WORK/acc.json" >/dev/null 2>&1 || true
    local line
    line=$(json "$WORK/acc.json" "'%8.0f %10.1f %10.4f %9d %12.3f %12.3f %6s' % (d['planned_rps'], d['achieved_rps'], d['achieved_rps']/d['planned_rps'], d['failed'], d['send_lateness_ms']['p99'], d['send_lateness_ms']['max'], d['rate_held'] and d['failed'] == 0)")
    echo "  $line"
    [ "${line##* }" = True ]
}
accuracy 1000 || true
accuracy 5000 || true
for rate in 10000 15000 20000 25000 30000 35000 40000 50000 60000; do
    if accuracy "$rate"; then HIGHEST=$rate; else break; fi
done
echo "  highest rate held (within 1%, no failures): ${HIGHEST:-below 10000} req/s"

echo
echo "== memory: 1,000,000 requests (closed model, $CONNS connections) =="
/usr/bin/time -v "$SEAWORTHY" load "$URL" --rate max -c "$CONNS" --requests 1000000 --duration 10m -q --json "$WORK/m.json" 2>"$WORK/m.time" || true
/usr/bin/time -v "$SEAWORTHY" load "$URL" --rate max -c "$CONNS" --requests 1000 --duration 10m -q --json "$WORK/s.json" 2>"$WORK/s.time" || true
BIG=$(awk -F: '/Maximum resident/ {print $2+0}' "$WORK/m.time"); SMALL=$(awk -F: '/Maximum resident/ {print $2+0}' "$WORK/s.time")
echo "  record size: $(json "$WORK/m.json" "d['record_bytes']") bytes; completed $(json "$WORK/m.json" "d['completed']") requests"
echo "  peak RSS: ${BIG} KiB for 1,000,000 requests (${SMALL} KiB for 1,000); $(echo "$BIG $SMALL" | awk '{printf "%.1f", ($1-$2)*1024/999000}') bytes per extra request"
