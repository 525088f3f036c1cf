# shellcheck shell=bash
# tools/lib/broker.sh: a private mosquitto 2.0 broker on a free loopback port (sourced, bash).
#
#   source tools/lib/broker.sh
#   broker_start DIR        # writes DIR/mosquitto.conf, starts mosquitto, waits until it accepts;
#                           # sets BROKER_PORT, BROKER_PID, BROKER_URI (tcp://127.0.0.1:PORT)
#   broker_stop DIR         # SIGTERM, then wait until the process is gone (no zombie left)
#   broker_restart DIR      # same config, same port, same persistence
#
# Knobs (environment, read by broker_write_config):
#   BROKER_PERSISTENCE=true|false   (default true; persistence file in DIR/data/)
#   BROKER_AUTOSAVE=changes|periodic (default changes: save after every change, survives a
#                                    broker crash; periodic: every 60 s, for load tests)
#   BROKER_EXTRA_CONF="line\nline"  extra mosquitto.conf lines (e.g. max_queued_messages 0)
#
# Notes (see shared TESTBED.md): `listener 0` is a unix socket in mosquitto 2.0, so we pick the
# port ourselves; as root mosquitto needs `user root` or it cannot write its persistence file;
# it logs to a file because its stdout is block-buffered when redirected.

# Prints a free TCP port on 127.0.0.1 (bound then released: a tiny race, fine on a test box).
broker_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True when PID is a live process (a zombie counts as dead).
broker_pid_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# broker_write_config DIR PORT: writes DIR/mosquitto.conf.
broker_write_config() {
  local dir=$1 port=$2
  mkdir -p "$dir/data"
  {
    echo "# private broker written by tools/lib/broker.sh"
    [ "$(id -u)" = 0 ] && echo "user root"
    echo "listener $port 127.0.0.1"
    echo "allow_anonymous true"
    # Without it mosquitto's small writes (PUBACKs, single events) wait for delayed TCP ACKs:
    # ~40 ms each. Production brokers should set it too (docs/operations.md).
    echo "set_tcp_nodelay true"
    if [ "${BROKER_PERSISTENCE:-true}" = true ]; then
      echo "persistence true"
      echo "persistence_location $dir/data/"
      if [ "${BROKER_AUTOSAVE:-changes}" = changes ]; then
        echo "autosave_interval 1"
        echo "autosave_on_changes true"
      else
        echo "autosave_interval 60"
      fi
    else
      echo "persistence false"
    fi
    echo "log_dest file $dir/mosquitto.log"
    echo "log_type error"
    echo "log_type warning"
    echo "log_type notice"
    echo "log_type information"
    echo "connection_messages true"
    if [ -n "${BROKER_EXTRA_CONF:-}" ]; then printf '%b\n' "$BROKER_EXTRA_CONF"; fi
  } >"$dir/mosquitto.conf"
  echo "$port" >"$dir/port"
}

# broker_wait_ready PORT PID [TIMEOUT_S]: waits until a TCP connect succeeds.
broker_wait_ready() {
  local port=$1 pid=$2 tries=$(( ${3:-10} * 100 ))
  local i
  for ((i = 0; i < tries; i++)); do
    if ! broker_pid_alive "$pid"; then
      echo "broker: mosquitto exited during start-up; its log:" >&2
      tail -n 20 "$BROKER_DIR/mosquitto.log" "$BROKER_DIR/mosquitto.stderr" >&2 2>/dev/null
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.01
  done
  echo "broker: mosquitto did not accept connections on 127.0.0.1:$port within ${3:-10} s" >&2
  return 1
}

# Starts mosquitto with DIR/mosquitto.conf (already written) and waits until it is ready.
broker_launch() {
  BROKER_DIR=$(realpath -m "$1")
  BROKER_PORT=$(cat "$BROKER_DIR/port")
  mosquitto -c "$BROKER_DIR/mosquitto.conf" >>"$BROKER_DIR/mosquitto.stderr" 2>&1 </dev/null &
  BROKER_PID=$!
  echo "$BROKER_PID" >"$BROKER_DIR/pid"
  # shellcheck disable=SC2034 # output for the caller
  BROKER_URI="tcp://127.0.0.1:$BROKER_PORT"
  broker_wait_ready "$BROKER_PORT" "$BROKER_PID" 10 || { broker_stop "$BROKER_DIR"; return 1; }
}

# broker_start DIR: picks a free port, writes the config, starts and waits.
broker_start() {
  local dir
  dir=$(realpath -m "$1")
  mkdir -p "$dir"
  command -v mosquitto >/dev/null || { echo "broker: mosquitto is not installed (tools/setup installs it)" >&2; return 1; }
  broker_write_config "$dir" "$(broker_free_port)"
  broker_launch "$dir"
}

# broker_stop DIR: SIGTERM and wait (up to 10 s, then SIGKILL). Safe to call twice.
broker_stop() {
  local dir pid i
  dir=$(realpath -m "$1")
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 1000; i++)); do
    broker_pid_alive "$pid" || break
    sleep 0.01
  done
  if broker_pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true   # reap it when it is our child
  rm -f "$dir/pid"
}

broker_restart() {
  broker_stop "$1"
  broker_launch "$1"
}
