# shellcheck shell=bash
# tools/lib/agent.sh: run the pressline agent from scripts (sourced, bash).
#
#   yaml_get FILE SECTION KEY                  # prints SECTION.KEY of a block-style YAML file
#   yaml_set SRC DST SECTION.KEY=VALUE...       # copy of SRC with those keys set (added if absent)
#   agent_start BIN CONFIG LOG                 # `BIN run --config CONFIG` in the background,
#                                              # stderr+stdout to LOG; sets AGENT_PID
#   agent_wait_online BROKER_URI PREFIX SHOP STATION TIMEOUT_S   # retained status says online
#   proc_stop PID [TIMEOUT_S] [NAME]           # SIGTERM, wait, SIGKILL past the timeout; reaps
#
# yaml_get/yaml_set understand the two-level block style of our configs (`section:` then
# indented `key: value` lines); deeper levels and other keys are copied untouched. That is all
# the scripts need (broker.uri, storage.state_dir, log.level, station.*), without a YAML parser
# in the tool chain.

yaml_get() {
  awk -v want_sec="$2" -v want_key="$3" '
    /^[A-Za-z_][A-Za-z0-9_-]*:/ { sec = $0; sub(/:.*/, "", sec); child = -1; next }
    /^[ \t]*(#|$)/ { next }
    {
      match($0, /^ */); ind = RLENGTH
      if (child < 0) child = ind
      if (sec != want_sec || ind != child) next
      line = substr($0, ind + 1)
      k = line; sub(/:.*/, "", k)
      if (k != want_key) next
      v = substr(line, length(k) + 2)
      sub(/^[ \t]+/, "", v)
      if (v ~ /^"/) { v = substr(v, 2); sub(/".*/, "", v) }
      else if (v ~ /^'\''/) { v = substr(v, 2); sub(/'\''.*/, "", v) }
      else { sub(/[ \t]+#.*/, "", v); sub(/[ \t]+$/, "", v) }
      print v; exit
    }' "$1"
}

yaml_set() {
  local src=$1 dst=$2
  shift 2
  local assigns="" a
  for a in "$@"; do assigns+="$a"$'\n'; done
  awk -v assigns="$assigns" '
    function q(v) {
      if (v ~ /^[A-Za-z0-9_.\/-]+$/) return v
      gsub(/\\/, "\\\\", v); gsub(/"/, "\\\"", v); return "\"" v "\""
    }
    function flush_section(   k) {
      if (sec == "") return
      for (k in val) if (k ~ ("^" sec "\\.") && !(k in done)) {
        printf "%*s%s: %s\n", (child > 0 ? child : 2), "", substr(k, length(sec) + 2), q(val[k])
        done[k] = 1
      }
    }
    BEGIN {
      n = split(assigns, list, "\n")
      for (i = 1; i <= n; i++) if (list[i] != "") {
        eq = index(list[i], "="); val[substr(list[i], 1, eq - 1)] = substr(list[i], eq + 1)
      }
    }
    /^[A-Za-z_][A-Za-z0-9_-]*:/ {
      flush_section()
      sec = $0; sub(/:.*/, "", sec); child = -1; print; next
    }
    /^[ \t]*(#|$)/ { print; next }
    {
      match($0, /^ */); ind = RLENGTH
      if (child < 0) child = ind
      if (ind == child) {
        k = substr($0, ind + 1); sub(/:.*/, "", k)
        full = sec "." k
        if (full in val) { printf "%*s%s: %s\n", ind, "", k, q(val[full]); done[full] = 1; next }
      }
      print
    }
    END {
      flush_section()
      for (k in val) if (!(k in done)) {
        s = k; sub(/\..*/, "", s)
        printf "%s:\n  %s: %s\n", s, substr(k, length(s) + 2), q(val[k])
        done[k] = 1
        for (k2 in val) if (!(k2 in done) && index(k2, s ".") == 1) {
          printf "  %s: %s\n", substr(k2, length(s) + 2), q(val[k2]); done[k2] = 1
        }
      }
    }' "$src" >"$dst"
}

proc_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

proc_stop() {
  local pid=$1 timeout=${2:-15} name=${3:-process} i
  [ -n "$pid" ] || return 0
  proc_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 100; i++)); do
    proc_alive "$pid" || break
    sleep 0.01
  done
  if proc_alive "$pid"; then
    echo "$name (pid $pid) did not stop within ${timeout} s of SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

agent_start() {
  local bin=$1 config=$2 log=$3
  "$bin" run --config "$config" >>"$log" 2>&1 </dev/null &
  AGENT_PID=$!
}

# Waits until the agent's retained status on the broker says "online" (the agent publishes it
# once connected and subscribed), or the agent dies, or the timeout passes.
agent_wait_online() {
  local uri=$1 prefix=$2 shop=$3 station=$4 timeout=${5:-20}
  local port=${uri##*:} deadline=$((SECONDS + timeout)) st
  while ((SECONDS < deadline)); do
    proc_alive "$AGENT_PID" || { echo "agent: exited during start-up" >&2; return 1; }
    st=$(mosquitto_sub -h 127.0.0.1 -p "$port" -t "$prefix/$shop/$station/status" -C 1 -W 1 2>/dev/null || true)
    case $st in *'"online"'*) return 0 ;; esac
    sleep 0.1
  done
  echo "agent: no retained \"online\" status on $prefix/$shop/$station/status after ${timeout} s" >&2
  return 1
}
