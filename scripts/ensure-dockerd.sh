#!/usr/bin/env bash
# Makes sure a Docker engine answers: starts `dockerd` in the background when `docker info` fails.
# Sandboxes (root in a container, no systemd, no nftables) often need extra flags, so it tries
# a few configurations in order and keeps the first that answers. Exit 0 when the engine answers,
# 1 with the reason on stderr otherwise. Safe to run concurrently (flock) and repeatedly.
# Stdout: "started <pid>" when this call started dockerd, nothing when an engine already
# answered: a caller stops only what it started (testkit/dockerd.py, at the end of a test run).
set -uo pipefail

LOG_DIR="${TIERSERVE_DOCKERD_LOG_DIR:-/tmp/tierserve-dockerd}"
WAIT_S="${TIERSERVE_DOCKERD_WAIT_S:-30}"
mkdir -p "$LOG_DIR"

answers() { timeout 10 docker info >/dev/null 2>&1; }

if answers; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  echo "docker/dockerd not installed (scripts/install-system-test-deps.sh installs docker.io)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "the Docker engine does not answer and starting dockerd needs root" >&2
  exit 1
fi

exec 9>"$LOG_DIR/lock"
flock 9
# Another caller may have started it while we waited for the lock.
if answers; then
  exit 0
fi

# A dockerd that died leaves its pid file behind, and a new one refuses to start over it.
for pidfile in /var/run/docker.pid /run/docker.pid; do
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
    rm -f "$pidfile"
  fi
done

wait_for_engine() {
  local pid=$1 deadline=$((SECONDS + WAIT_S))
  while [ $SECONDS -lt $deadline ]; do
    if answers; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
  return 1
}

# From most to least capable: the defaults; no iptables (no netfilter in the sandbox);
# vfs storage (no overlay mounts inside an overlay root) as the last resort.
configs=(
  ""
  "--iptables=false --ip6tables=false"
  "--iptables=false --ip6tables=false --storage-driver=vfs"
  "--iptables=false --ip6tables=false --bridge=none --storage-driver=vfs"
)
for flags in "${configs[@]}"; do
  log="$LOG_DIR/dockerd.log"
  echo "=== $(date -u +%FT%TZ) dockerd $flags" >>"$log"
  # shellcheck disable=SC2086
  setsid nohup dockerd $flags >>"$log" 2>&1 </dev/null &
  pid=$!
  if wait_for_engine "$pid"; then
    echo "$pid" >"$LOG_DIR/dockerd.pid"
    echo "$flags" >"$LOG_DIR/dockerd.flags"
    echo "dockerd started (pid $pid, flags: ${flags:-defaults}); log $log" >&2
    echo "started $pid"
    exit 0
  fi
  kill "$pid" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null
  # Only the pid file of the daemon just killed: never another daemon's.
  for pidfile in /var/run/docker.pid /run/docker.pid; do
    if [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ]; then rm -f "$pidfile"; fi
  done
done
echo "dockerd did not answer with any configuration; last lines of $LOG_DIR/dockerd.log:" >&2
tail -n 15 "$LOG_DIR/dockerd.log" >&2
exit 1
