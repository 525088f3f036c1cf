#!/usr/bin/env bash
# bench/qa/run.sh: QA inspector benchmark on a synthetic dataset with known truth.
# Generates the dataset with pressline-qa-dataset (captures at --size, default 4000x3000), then
# runs bench_qa: (a) inspect() in-process with cv::setNumThreads(2), images decoded beforehand
# (the daemon's case), median and p95; (b) `pressline qa inspect < case.json` as a process per
# case, median and p95 wall time; (c) recall and reason accuracy per defect type, false rejects
# on good and just-inside cases, overall precision / recall / F1. Prints a table and writes
# DIR/results.json.
#
#   bench/qa/run.sh [--per-type N] [--good N] [--seed S] [--size WxH] [--out DIR]
#                   [--threads T] [--no-cli] [--regenerate] [--no-build] [--build-dir DIR]
#   defaults        10 per defect type (7 clear, 3 just inside where the type has such cases),
#                   40 good, seed 1, 4000x3000, DIR /var/tmp/pressline-bench-qa, 2 threads
#   --regenerate    generate even if DIR already holds a dataset of the same parameters
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
per_type=10 good=40 seed=1 size=4000x3000 out=/var/tmp/pressline-bench-qa threads=2 cli=1 regen=0
build=1 build_dir="$repo/build"
while (($#)); do
  case $1 in
    --per-type) per_type=${2:?}; shift ;;
    --good) good=${2:?}; shift ;;
    --seed) seed=${2:?}; shift ;;
    --size) size=${2:?}; shift ;;
    --out) out=$(realpath -m "${2:?}"); shift ;;
    --threads) threads=${2:?}; shift ;;
    --no-cli) cli=0 ;;
    --regenerate) regen=1 ;;
    --no-build) build=0 ;;
    --build-dir) build_dir=$(realpath -m "${2:?}"); shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "bench: $*" >&2; }

if ((build)); then
  [[ -f $build_dir/CMakeCache.txt ]] || cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" --target pressline-qa-dataset bench_qa pressline -j"$(nproc)" >/dev/null
fi
gen=$build_dir/tools/qa-dataset/pressline-qa-dataset
bench=$build_dir/bench/qa/bench_qa
pressline=$build_dir/agent/pressline
for b in "$gen" "$bench"; do [[ -x $b ]] || { say "missing $b (build it, or --build-dir)"; exit 1; }; done

stamp="per_type=$per_type good=$good seed=$seed size=$size"
if ((regen)) || [[ ! -f $out/index.json || "$(cat "$out/.params" 2>/dev/null)" != "$stamp" ]]; then
  say "generating $stamp into $out"
  rm -rf "$out"
  mkdir -p "$out"
  "$gen" generate --out "$out" --per-type "$per_type" --good "$good" --seed "$seed" --size "$size" --quiet
  echo "$stamp" > "$out/.params"
else
  say "reusing the dataset in $out ($stamp)"
fi

args=(--data "$out" --threads "$threads" --out "$out/results.json")
if ((cli)) && [[ -x $pressline ]]; then args+=(--pressline "$pressline"); else say "no CLI timing"; fi
say "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$bench" "${args[@]}"
say "results: $out/results.json"
