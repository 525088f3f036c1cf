#!/usr/bin/env bash
# bench/intake/run.sh: intake benchmark of the Pressline agent on this machine.
# Starts a private mosquitto and the agent (config/demo.yaml with a temporary state_dir and no
# printers), then
# runs bench_intake: N orders as fast as the broker takes them, timed to the last job.accepted;
# ceilings (a) the same N messages to a bare paho subscriber and (b) SQLite 1 KiB rows, one
# transaction each, WAL + synchronous=FULL, on the state dir's disk; (c) latency at a steady
# rate after a second of warm-up, also split at the agent's commit (the event's `time`, in ms)
# into the way in and the event's way back, next to the disk's own fdatasync times meanwhile (a
# probe in the same directory: outliers on both at once are the disk's); (d) the agent's idle
# RSS and CPU. Prints a summary table.
#
#   bench/intake/run.sh [--quick] [--n N] [--rate R] [--latency-seconds S] [--idle-seconds S]
#                       [--inflight K] [--log-level LEVEL] [--dir DIR] [--keep]
#                       [--no-build] [--build-dir DIR] [--results FILE]
#   --quick         smoke run: N=500, 200 jobs/s for 2 s, 5 s idle
#   defaults        N=20000, 500 jobs/s for 10 s, 60 s idle, inflight 128, log level from the config
#   --dir DIR       where state_dir, the SQLite ceiling file and logs go (default: a new
#                   directory under /var/tmp, removed afterwards unless --keep or on failure)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$repo/tools/lib/broker.sh"
source "$repo/tools/lib/agent.sh"

n=20000 rate=500 latency_s=10 idle_s=60 inflight=128 log_level="" dir="" keep=0 build=1
build_dir="$repo/build" results=""
while (($#)); do
  case $1 in
    --quick) n=500 rate=200 latency_s=2 idle_s=5 ;;
    --n) n=${2:?}; shift ;;
    --rate) rate=${2:?}; shift ;;
    --latency-seconds) latency_s=${2:?}; shift ;;
    --idle-seconds) idle_s=${2:?}; shift ;;
    --inflight) inflight=${2:?}; shift ;;
    --log-level) log_level=${2:?}; shift ;;
    --dir) dir=${2:?}; shift ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --build-dir) build_dir=$(realpath -m "${2:?}"); shift ;;
    --results) results=$(realpath -m "${2:?}"); shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 && !/shellcheck/ {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "bench: $*" >&2; }

if ((build)); then
  if [ "$build_dir" = "$repo/build" ]; then "$repo/tools/setup"; else "$repo/tools/setup" --build-dir "$build_dir"; fi
fi
agent_bin="$build_dir/agent/pressline"
bench_bin="$build_dir/bench/bench_intake"
for b in "$agent_bin" "$bench_bin"; do [ -x "$b" ] || { say "$b is missing: build first (tools/setup)"; exit 1; }; done

if [ -z "$dir" ]; then
  dir=$(mktemp -d /var/tmp/pressline-bench.XXXXXX)
else
  dir=$(realpath -m "$dir"); mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || { say "$dir is not empty"; exit 1; }
fi

config_src="$repo/config/demo.yaml"
shop=$(yaml_get "$config_src" station shop)
station=$(yaml_get "$config_src" station id)
prefix=$(yaml_get "$config_src" mqtt topic_prefix)
prefix=${prefix:-pressline/v1}

ok=0
cleanup() {
  proc_stop "${AGENT_PID:-}" 30 agent
  broker_stop "$dir/broker"
  if ((ok && !keep)); then rm -rf "$dir"; else say "files kept in $dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A load-test broker: no persistence (autosave on every change would be the bottleneck) and no
# per-client queue limit (mosquitto's default 1000 would drop orders queued for a slower agent).
BROKER_PERSISTENCE=false BROKER_EXTRA_CONF='max_queued_messages 0' broker_start "$dir/broker"

sets=("broker.uri=$BROKER_URI" "storage.state_dir=$dir/state")
[ -z "$log_level" ] || sets+=("log.level=$log_level")
yaml_set "$config_src" "$dir/agent.yaml" "${sets[@]}"
# Intake alone: without printers the agent keeps every job accepted (the demo's dtg_printers
# section is the file's last; it goes).
sed -i '/^dtg_printers:/,$d' "$dir/agent.yaml"
mkdir -p "$dir/state"
agent_start "$agent_bin" "$dir/agent.yaml" "$dir/agent.log"
agent_wait_online "$BROKER_URI" "$prefix" "$shop" "$station" 20 || { tail -n 30 "$dir/agent.log" >&2; exit 1; }

say "machine: $(nproc) CPUs, state dir $dir on $(df -PT "$dir" | awk 'NR==2 {print $2 " " $1}')"
say "agent pid $AGENT_PID, broker $BROKER_URI, log $dir/agent.log"
args=(--broker "$BROKER_URI" --shop "$shop" --station "$station" --prefix "$prefix"
      --agent-pid "$AGENT_PID" --sqlite-dir "$dir" --n "$n" --inflight "$inflight"
      --rate "$rate" --latency-seconds "$latency_s" --idle-seconds "$idle_s")
[ -z "$results" ] || args+=(--results "$results")
set +e
"$bench_bin" "${args[@]}"
rc=$?
set -e
if ((rc != 0)); then
  say "FAILED (exit $rc); last lines of the agent log:"
  tail -n 30 "$dir/agent.log" >&2
  exit "$rc"
fi
proc_alive "$AGENT_PID" || { say "the agent died during the run"; tail -n 30 "$dir/agent.log" >&2; exit 1; }
ok=1
