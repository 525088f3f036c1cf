#!/usr/bin/env bash
# bench/print/run.sh: print benchmark of the Pressline agent on this machine.
# Starts a private mosquitto, a private cupsd with simulated printers that complete at once
# (tests/fixtures/cups/cups.sh) and the agent (config/demo.yaml with a temporary state_dir),
# then sends N DTG jobs (one 4500x5400 RGBA artwork, 15x18 in at 300 dpi, placed 280 mm wide
# on a 16x20 platen) and times them to the last job.printed. Run 1 has one printer (dtg-1: the
# per-job latency), run 2 two printers (dtg-1, dtg-2: the station rate). Per job, from the
# agent's events: accepted->queued (prepare = fetch + render, also prepare_ms), queued->printing
# (waiting for a printer) and printing->printed (CUPS + printer as the agent sees it).
# Ceilings on the same cupsd, queue bench-lp: (a) `lp` one job at a time, each waited for until
# the printer has it (per-job latency of lp + CUPS + printer, compared with the agent's
# printing->printed); (b) N back-to-back `lp` submissions of the agent's print-ready file
# (submission rate, and time until the printer has all N). Then bench_render (the rendering
# steps of the same artwork size). Prints a summary table.
#
#   bench/print/run.sh [--quick] [--n N] [--printers 1|2|both] [--platen 16x20|4x4]
#                      [--serial K] [--render-runs R] [--log-level LEVEL] [--timeout S]
#                      [--dir DIR] [--keep] [--no-build] [--build-dir DIR]
#   --quick         smoke run: N=20, 5 serial lp jobs, 1 bench_render run
#   defaults        N=200, --printers both, --platen 16x20, 20 serial lp jobs, 5 bench_render runs
#   --platen 4x4    jobs on a 4x4 in platen, artwork placed 80 mm wide: a small print file, so
#                   the run shows the pipeline's own overhead rather than rendering
#   --timeout S     give up on a run after S seconds (default 120 + 3 s per job)
#   --dir DIR       where state dirs, orders, events and logs go (default: a new directory
#                   under /var/tmp, removed afterwards unless --keep or on failure). The cupsd
#                   lives in its own directory under /tmp (user lp must reach it), linked as
#                   DIR/cups and removed with DIR.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$repo/tools/lib/broker.sh"
source "$repo/tools/lib/agent.sh"

n=200 printers=both platen=16x20 serial=20 render_runs=5 log_level="" timeout="" dir="" keep=0
build=1 build_dir="$repo/build"
while (($#)); do
  case $1 in
    --quick) n=20 serial=5 render_runs=1 ;;
    --n) n=${2:?}; shift ;;
    --printers) printers=${2:?}; shift ;;
    --platen) platen=${2:?}; shift ;;
    --serial) serial=${2:?}; shift ;;
    --render-runs) render_runs=${2:?}; shift ;;
    --log-level) log_level=${2:?}; shift ;;
    --timeout) timeout=${2:?}; shift ;;
    --dir) dir=${2:?}; shift ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --build-dir) build_dir=$(realpath -m "${2:?}"); shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 && !/shellcheck/ {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "bench: $*" >&2; }

case $printers in 1) runs=(1) ;; 2) runs=(2) ;; both) runs=(1 2) ;;
  *) say "--printers must be 1, 2 or both"; exit 2 ;; esac
case $platen in 16x20) width_mm=280 ;; 4x4) width_mm=80 ;;
  *) say "--platen must be 16x20 or 4x4"; exit 2 ;; esac
[[ $n =~ ^[1-9][0-9]*$ ]] || { say "--n must be a positive integer"; exit 2; }
timeout=${timeout:-$((120 + 3 * n))}

if ((build)); then
  if [ "$build_dir" = "$repo/build" ]; then "$repo/tools/setup"; else "$repo/tools/setup" --build-dir "$build_dir"; fi
fi
agent_bin="$build_dir/agent/pressline"
dispatch="$build_dir/tools/pressline-dispatch"
render_bin="$build_dir/bench/render/bench_render"
for b in "$agent_bin" "$dispatch" "$render_bin"; do [ -x "$b" ] || { say "$b is missing: build first (tools/setup)"; exit 1; }; done
for t in lp lpstat mosquitto mosquitto_sub cupsd ippeveprinter python3; do
  command -v "$t" >/dev/null || { say "$t is not installed"; exit 1; }
done

if [ -z "$dir" ]; then
  dir=$(mktemp -d /var/tmp/pressline-bench-print.XXXXXX)
else
  dir=$(realpath -m "$dir"); mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || { say "$dir is not empty"; exit 1; }
fi
cups_sh="$repo/tests/fixtures/cups/cups.sh"
cups_dir=""

config_src="$repo/config/demo.yaml"
shop=$(yaml_get "$config_src" station shop)
station=$(yaml_get "$config_src" station id)
prefix=$(yaml_get "$config_src" mqtt topic_prefix)
prefix=${prefix:-pressline/v1}

ok=0
cleanup() {
  proc_stop "${WATCH_PID:-}" 5 watcher
  proc_stop "${AGENT_PID:-}" 30 agent
  [ -z "$cups_dir" ] || "$cups_sh" stop "$cups_dir" >/dev/null 2>&1 || true
  broker_stop "$dir/broker"
  if ((ok && !keep)); then
    rm -rf "$dir"
    [ -z "$cups_dir" ] || rm -rf "$cups_dir"
  else
    say "files kept in $dir${cups_dir:+ (cupsd: $cups_dir)}"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }

# ---- artwork and orders --------------------------------------------------------------------
# One 4500x5400 RGBA PNG at 300 dpi (standard library only: a horizontal gradient whose colour
# changes every 60 rows, a disc with a soft alpha edge; compresses like flat artwork does).
mkdir -p "$dir/art"
python3 - "$dir/art/bench-art.png" <<'EOF'
import struct, sys, zlib
w, h = 4500, 5400
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
grad = [bytes(p for x in range(w) for p in (x * 255 // w, (x * 7) % 256, 200, 255))]
rows = []
cx, cy, r = w // 2, h // 2, w // 3
band_cache = {}
for y in range(h):
    band = y // 60
    key = band
    if key not in band_cache:
        g = band * 255 // (h // 60)
        band_cache[key] = bytes(p for x in range(w) for p in (x * 255 // w, g, 255 - g, 255))
    base = band_cache[key]
    dy = y - cy
    if abs(dy) < r:
        half = int((r * r - dy * dy) ** 0.5)
        x0, x1 = cx - half, cx + half
        disc = bytes((30, 160, 240, 230)) * (x1 - x0)
        row = base[:4 * x0] + disc + base[4 * x1:]
    else:
        row = base if y % 120 < 100 else bytes(4 * w)   # transparent stripes
    rows.append(b"\x00" + row)
ppm = round(300 / 0.0254)
data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
        + chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(data)
EOF
art_sha=$(sha256sum "$dir/art/bench-art.png" | cut -d' ' -f1)
say "artwork: $dir/art/bench-art.png, 4500x5400 RGBA, $(du -k "$dir/art/bench-art.png" | cut -f1) KiB"

# make_orders DIR RUN: N orders from the demo's express tee, unique ids, standard priority.
make_orders() {
  mkdir -p "$1"
  python3 - "$repo/tools/demo-orders/orders/01-express-tee-black.json" "$1" "$2" "$n" \
    "file://$dir/art/bench-art.png" "$art_sha" "$platen" "$width_mm" <<'EOF'
import json, sys
src, out, run, n, uri, sha, platen, width = sys.argv[1:]
base = json.load(open(src))
for i in range(1, int(n) + 1):
    o = json.loads(json.dumps(base))
    o["job_id"] = f"J-BENCH-{run}-{i:04d}"
    o["order_id"] = f"ORD-BENCH-{run}-{i:04d}"
    o["priority"] = "standard"
    o["print"]["artwork"].update(uri=uri, sha256=sha, dpi=300)
    o["print"]["placement"]["width_mm"] = float(width)
    o["print"]["placement"]["offset_y_mm"] = 75 if platen == "16x20" else 0
    o["print"]["platen"] = platen
    json.dump(o, open(f"{out}/{i:04d}.json", "w"), indent=1)
EOF
}

# ---- services --------------------------------------------------------------------------------
BROKER_PERSISTENCE=false BROKER_EXTRA_CONF='max_queued_messages 0' broker_start "$dir/broker"
cups_dir=$(mktemp -d /tmp/pressline-bench-cups.XXXXXX)
chmod 755 "$cups_dir"
ln -sfn "$cups_dir" "$dir/cups"
out=$("$cups_sh" start "$cups_dir" dtg-1 dtg-2 bench-lp) || { echo "$out" >&2; exit 1; }
CUPS_SERVER=$(sed -n 's/^CUPS_SERVER=//p' <<<"$out")
say "machine: $(nproc) CPUs, state dirs in $dir on $(df -PT "$dir" | awk 'NR==2 {print $2 " " $1}')"
say "broker $BROKER_URI, cupsd $CUPS_SERVER (queues dtg-1, dtg-2, bench-lp; printers complete at once)"

docs_count() { find "$cups_dir/printers/$1/docs" -type f 2>/dev/null | wc -l; }

# cpu_s PID: user+system CPU seconds of a live process.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo "?"; }

# ---- one agent run ---------------------------------------------------------------------------
# run_agent K: K printers; results in $dir/runK/result.json.
run_agent() {
  local k=$1 r="$dir/run$1" i deadline printed=0 bad t0 before_docs=()
  mkdir -p "$r/state"
  make_orders "$r/orders" "$k"
  local sets=("broker.uri=$BROKER_URI" "storage.state_dir=$r/state" "assets.file_root=$dir/art"
              "printing.poll_min_ms=20" "printing.poll_max_ms=200")
  [ -z "$log_level" ] || sets+=("log.level=$log_level")
  yaml_set "$config_src" "$r/agent.yaml" "${sets[@]}"
  sed -i "s|server: 127.0.0.1:8631|server: $CUPS_SERVER|" "$r/agent.yaml"
  # DTG printing alone: no label printer (the demo's sits on a port that is not there here).
  sed -i '/^label_printers:/,$d' "$r/agent.yaml"
  if ((k == 1)); then
    # keep only the first printer: drop the list item "- name: dtg-2" and its keys
    awk '/^dtg_printers:/ {in_list = 1; print; next}
         in_list && /^  - name: / {skip = ($3 != "dtg-1")}
         in_list && /^[^ #]/ {in_list = 0; skip = 0}
         !skip {print}' "$r/agent.yaml" >"$r/agent.yaml.tmp" && mv "$r/agent.yaml.tmp" "$r/agent.yaml"
  fi
  if [ "$platen" = 4x4 ]; then
    sed -i 's|platens: \[16x20, |platens: [4x4, 16x20, |' "$r/agent.yaml"
  fi
  for i in dtg-1 dtg-2; do before_docs+=("$(docs_count "$i")"); done

  agent_start "$agent_bin" "$r/agent.yaml" "$r/agent.log"
  agent_wait_online "$BROKER_URI" "$prefix" "$shop" "$station" 20 || { tail -n 30 "$r/agent.log" >&2; return 1; }
  "$dispatch" watch --json --broker "$BROKER_URI" --shop "$shop" --station "$station" --prefix "$prefix" \
    --ready-file "$r/watch.ready" >"$r/events.jsonl" 2>"$r/watch.err" </dev/null &
  WATCH_PID=$!
  deadline=$((SECONDS + 10))
  until [ -f "$r/watch.ready" ]; do
    proc_alive "$WATCH_PID" && ((SECONDS < deadline)) || { say "watcher did not start"; cat "$r/watch.err" >&2; return 1; }
    sleep 0.01
  done
  say "run $k: $k printer(s), $n jobs on platen $platen; agent pid $AGENT_PID, log $r/agent.log"
  local cpu0; cpu0=$(cpu_s "$AGENT_PID")
  t0=$(now)
  "$dispatch" send --broker "$BROKER_URI" --shop "$shop" --station "$station" --prefix "$prefix" \
    "$r"/orders/*.json >"$r/send.log" 2>&1 || { say "send failed"; cat "$r/send.log" >&2; return 1; }
  local t_sent; t_sent=$(now)
  deadline=$((SECONDS + timeout))
  while :; do
    printed=$(grep -c '"com.pressline.job.printed"' "$r/events.jsonl" || true)
    ((printed >= n)) && break
    bad=$(grep -cE '"com.pressline.job.(failed|held|rejected|print_failed)"' "$r/events.jsonl" || true)
    if ((bad > 0)); then say "run $k: $bad job(s) failed, held or rejected:"; grep -E '"com.pressline.job.(failed|held|rejected|print_failed)"' "$r/events.jsonl" | head -n 3 >&2; return 1; fi
    proc_alive "$AGENT_PID" || { say "the agent died during run $k"; tail -n 30 "$r/agent.log" >&2; return 1; }
    if ((SECONDS >= deadline)); then say "run $k: only $printed of $n printed after $timeout s"; tail -n 20 "$r/agent.log" >&2; return 1; fi
    sleep 0.05
  done
  local t_end; t_end=$(now)
  local cpu1; cpu1=$(cpu_s "$AGENT_PID")
  local rss; rss=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT_PID/status")
  proc_stop "$WATCH_PID" 5 watcher; WATCH_PID=""
  proc_stop "$AGENT_PID" 30 agent; AGENT_PID=""
  local docs=0
  for i in 1 2; do docs=$((docs + $(docs_count "dtg-$i") - before_docs[i - 1])); done
  local warns; warns=$(grep -ciE '\b(warn|warning|error)\b' "$r/agent.log" || true)
  python3 - "$r/events.jsonl" "$n" "$t0" "$t_sent" "$t_end" "$k" "$docs" "$cpu0" "$cpu1" "$rss" "$warns" \
    >"$r/result.json" <<'EOF'
import json, sys
from datetime import datetime
ev_file, n, t0, t_sent, t_end, k, docs, cpu0, cpu1, rss, warns = sys.argv[1:]
n = int(n); t0, t_sent, t_end = float(t0), float(t_sent), float(t_end)
def ts(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
jobs, devices = {}, {}
for line in open(ev_file):
    line = line.strip()
    if not line.startswith("{"): continue
    try: e = json.loads(line)
    except ValueError: continue
    t = e.get("type", "")
    if not t.startswith("com.pressline.job."): continue
    kind = t[len("com.pressline.job."):]
    j = jobs.setdefault(e.get("subject"), {})
    j.setdefault(kind, ts(e["time"]))
    d = e.get("data") or {}
    if kind == "queued" and "prepare_ms" in d: j["prepare_ms"] = float(d["prepare_ms"])
    if kind == "printing" and "device" in d: devices[d["device"]] = devices.get(d["device"], 0) + 1
done = [j for j in jobs.values() if "printed" in j]
def stats(xs):
    xs = sorted(xs)
    if not xs: return None
    q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
    return {"median": q(0.5) * 1000, "p95": q(0.95) * 1000, "max": xs[-1] * 1000, "min": xs[0] * 1000}
def span(a, b): return [j[b] - j[a] for j in done if a in j and b in j]
last = max(j["printed"] for j in done)
first_print = min(j["printing"] for j in done if "printing" in j)
last_queued = max(j["queued"] for j in done if "queued" in j)
prints = sorted(j["printed"] for j in done)
res = {
    "printers": int(k), "n": n, "printed": len(done), "docs": int(docs),
    "wall_s": last - t0, "send_s": t_sent - t0, "jobs_per_s": len(done) / (last - t0),
    "first_printing_s": first_print - t0, "last_queued_s": last_queued - t0,
    # steady printing rate: printed events from the first printing to the last printed
    "print_phase_jobs_per_s": len(done) / (last - first_print) if last > first_print else None,
    "accepted_queued": stats(span("accepted", "queued")),
    "queued_printing": stats(span("queued", "printing")),
    "printing_printed": stats(span("printing", "printed")),
    "accepted_printed": stats(span("accepted", "printed")),
    "printed_gap": stats([b - a for a, b in zip(prints, prints[1:])]),
    "prepare_ms": stats([j["prepare_ms"] / 1000 for j in done if "prepare_ms" in j]),
    "devices": devices, "agent_cpu_s": float(cpu1) - float(cpu0) if cpu0 != "?" and cpu1 != "?" else None,
    "agent_maxrss_mb": int(rss) / 1024 if rss else None, "log_warnings": int(warns),
}
json.dump(res, sys.stdout, indent=1)
EOF
  say "run $k: $printed jobs printed in $(python3 -c 'import json,sys; print("%.1f s" % json.load(open(sys.argv[1]))["wall_s"])' "$r/result.json")"
}

for k in "${runs[@]}"; do
  run_agent "$k" || { say "FAILED in run $k"; exit 1; }
done

# ---- lp ceilings -----------------------------------------------------------------------------
first_run=${runs[0]}
print_file=$(find "$dir/run$first_run/state/work" -name 'print-*dpi.*' ! -name '*.json' -type f 2>/dev/null | head -n 1 || true)
[ -n "$print_file" ] || print_file=$(find "$cups_dir/printers/dtg-1/docs" -type f | head -n 1)
[ -n "$print_file" ] || { say "no print-ready file found"; exit 1; }
say "lp ceilings: queue bench-lp, file $print_file ($(du -k "$print_file" | cut -f1) KiB)"

# wait_docs QUEUE COUNT TIMEOUT_S: until the printer behind QUEUE has COUNT documents.
wait_docs() {
  local deadline=$((SECONDS + $3))
  until (($(docs_count "$1") >= $2)); do
    ((SECONDS < deadline)) || { say "bench-lp: only $(docs_count "$1") of $2 documents after $3 s"; return 1; }
    sleep 0.005
  done
}

# (a) one job at a time: lp, then wait until the printer has the document.
lat_file="$dir/lp-serial.txt"; : >"$lat_file"
base=$(docs_count bench-lp)
for ((i = 1; i <= serial; i++)); do
  ts=$(now)
  lp -h "$CUPS_SERVER" -d bench-lp -t "lp-serial-$i" "$print_file" >/dev/null
  wait_docs bench-lp $((base + i)) 30 || exit 1
  te=$(now)
  echo "$ts $te" >>"$lat_file"
done
# (b) N back to back.
base=$(docs_count bench-lp)
t0=$(now)
for ((i = 1; i <= n; i++)); do
  lp -h "$CUPS_SERVER" -d bench-lp -t "lp-burst-$i" "$print_file" >/dev/null
done
t_sub=$(now)
wait_docs bench-lp $((base + n)) "$timeout" || exit 1
t_all=$(now)

# ---- rendering -------------------------------------------------------------------------------
say "bench_render ($render_runs run(s))"
"$render_bin" "$render_runs" "$dir/render" >"$dir/render.txt" 2>&1 || { cat "$dir/render.txt" >&2; say "bench_render failed"; exit 1; }

# ---- summary ---------------------------------------------------------------------------------
python3 - "$dir" "$n" "$serial" "$t0" "$t_sub" "$t_all" "$platen" "$print_file" "${runs[@]}" <<'EOF'
import json, os, sys
d, n, serial, t0, t_sub, t_all, platen, pfile, *runs = sys.argv[1:]
n, serial = int(n), int(serial)
t0, t_sub, t_all = float(t0), float(t_sub), float(t_all)
lat = sorted(float(b) - float(a) for a, b in (l.split() for l in open(os.path.join(d, "lp-serial.txt"))))
lp_med = lat[len(lat) // 2] * 1000
lp_p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] * 1000
res = {int(k): json.load(open(os.path.join(d, f"run{k}", "result.json"))) for k in runs}
def f(x, fmt="{:.1f}"): return "-" if x is None else fmt.format(x)
def st(r, key):
    s = r[key]
    return "-" if s is None else f"{s['median']:.0f} / {s['p95']:.0f} / {s['max']:.0f}"
cols = [f"{k} printer{'s' if k > 1 else ''}" for k in res]
rows = []
def row(name, *vals): rows.append((name, *vals))
row("jobs printed / documents at printers", *[f"{r['printed']} / {r['docs']}" for r in res.values()])
row("wall time, first send -> last printed (s)", *[f(r["wall_s"], "{:.2f}") for r in res.values()])
row("jobs/s (N / wall time)", *[f(r["jobs_per_s"], "{:.2f}") for r in res.values()])
row("jobs/s, first printing -> last printed", *[f(r["print_phase_jobs_per_s"], "{:.2f}") for r in res.values()])
row("first job.printing after first send (s)", *[f(r["first_printing_s"], "{:.2f}") for r in res.values()])
row("last job.queued after first send (s)", *[f(r["last_queued_s"], "{:.2f}") for r in res.values()])
row("sending all N orders (s)", *[f(r["send_s"], "{:.2f}") for r in res.values()])
row("per job ms, median / p95 / max:", *["" for _ in res])
row("  prepare_ms (fetch + render, event data)", *[st(r, "prepare_ms") for r in res.values()])
row("  accepted -> queued", *[st(r, "accepted_queued") for r in res.values()])
row("  queued -> printing (waits for a printer)", *[st(r, "queued_printing") for r in res.values()])
row("  printing -> printed (CUPS + printer)", *[st(r, "printing_printed") for r in res.values()])
row("  accepted -> printed", *[st(r, "accepted_printed") for r in res.values()])
row("  gap between successive job.printed", *[st(r, "printed_gap") for r in res.values()])
row("agent added latency/job vs lp, median (ms)", *[f(r["printing_printed"]["median"] - lp_med, "{:+.0f}") for r in res.values()])
row("jobs per device", *[", ".join(f"{k}={v}" for k, v in sorted(r["devices"].items())) for r in res.values()])
row("agent CPU during the run (s)", *[f(r["agent_cpu_s"], "{:.1f}") for r in res.values()])
row("agent peak RSS (MiB)", *[f(r["agent_maxrss_mb"], "{:.0f}") for r in res.values()])
row("agent log lines with warn/error", *[str(r["log_warnings"]) for r in res.values()])
w0 = max(len(r[0]) for r in rows)
ws = [max(len(c), *(len(r[i + 1]) for r in rows)) for i, c in enumerate(cols)]
print()
print(f"Pressline print benchmark: {n} jobs, platen {platen}, simulated printers that complete at once, "
      f"{os.cpu_count()} CPUs")
print(f"{'':{w0}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cols, ws)))
for r in rows:
    print(f"{r[0]:{w0}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(r[1:], ws)))
print()
print(f"lp ceilings (queue bench-lp, the agent's print file {os.path.basename(pfile)}, {os.path.getsize(pfile) / 1e6:.1f} MB):")
print(f"  one at a time, lp -> document at printer, median / p95 (ms)   {lp_med:.0f} / {lp_p95:.0f}  ({serial} jobs)")
print(f"  {n} lp back to back: submission rate (jobs/s)                 {n / (t_sub - t0):.1f}  ({t_sub - t0:.2f} s)")
print(f"  {n} lp back to back: until the printer has all (s)            {t_all - t0:.2f}  ({n / (t_all - t0):.1f} jobs/s)")
print()
print("bench_render (4500x5400 artwork to print-ready; the agent's jobs are the 280 mm = downscale case):")
for l in open(os.path.join(d, "render.txt")):
    print("  " + l.rstrip())
EOF
ok=1
