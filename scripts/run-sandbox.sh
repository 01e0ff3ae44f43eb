#!/usr/bin/env bash
# `make run`: Redis (if none is reachable), the EspoCRM and Advoware simulators, and the
# service with its Workbench on http://127.0.0.1:$PORT. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

if [ ! -f sandbox/sandbox.env ]; then
  echo "The sandbox simulators (sandbox/) are not built yet: nothing to run against." >&2
  exit 1
fi
set -a; source sandbox/sandbox.env; set +a
export PORT="${PORT:-3000}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export MOTIA_ANALYTICS_DISABLED=true
# The sandbox's Workbench is open without a login, on 127.0.0.1 only (see scripts/motia-port-gate.mjs).
# `make serve` never is: there only the webhook and ops routes answer without a login.
export WORKBENCH_OPEN_LOCAL=true

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  echo "stopped."
}
trap cleanup INT TERM EXIT

if port_in_use "$PORT"; then
  echo "Port $PORT is already in use; stop what runs there or set PORT=..." >&2
  exit 1
fi

read -r rhost rport < <(redis_host_port "$REDIS_URL")
if redis-cli -h "$rhost" -p "$rport" ping >/dev/null 2>&1; then
  echo "Using the Redis already running at $rhost:$rport"
else
  echo "Starting redis-server on $rhost:$rport (no persistence)"
  setsid redis-server --bind "$rhost" --port "$rport" --save "" --appendonly no >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -h "$rhost" -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

espo_port=$(python_modules/bin/python -c "from urllib.parse import urlparse; print(urlparse('$ESPOCRM_API_BASE_URL').port)")
advo_port=$(python_modules/bin/python -c "from urllib.parse import urlparse; print(urlparse('$ADVOWARE_API_BASE_URL').port)")
echo "Starting the EspoCRM (:$espo_port) and Advoware (:$advo_port) simulators"
setsid python_modules/bin/python -m sandbox --espo-port "$espo_port" --advo-port "$advo_port" \
  --webhook-base "http://127.0.0.1:$PORT/vmh/webhook/beteiligte" &
pids+=($!)

echo "Starting the service with the Workbench on http://127.0.0.1:$PORT"
setsid node_modules/.bin/motia dev -H 127.0.0.1 -p "$PORT" &
pids+=($!)
if wait_for_http "http://127.0.0.1:$PORT/__motia" 90; then
  echo
  echo "  Workbench:  http://127.0.0.1:$PORT        (flow 'vmh')"
  echo "  NOTE: sandbox mode - the Workbench, /emit and /__motia* are open WITHOUT login on 127.0.0.1."
  echo "        make serve (production) serves them only behind WORKBENCH_USER/WORKBENCH_PASSWORD."
  echo "  Act as a user:  python_modules/bin/python -m sandbox.act --help"
  echo "  Ctrl-C stops everything started here."
  echo
fi
wait -n "${pids[@]}"
