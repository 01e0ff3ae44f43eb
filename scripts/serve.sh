#!/usr/bin/env bash
# `make serve`: the service alone against the endpoints configured in the environment
# or .env (no simulators; the environment wins over .env). Several instances may share one
# Redis: the cron sweep takes a per-tick Redis lock and every record sync a per-record lock.
#
# One port (PORT, bound to HOST): only the project's API steps answer without a login (the
# EspoCRM webhooks check their signature, the ops API its bearer token). The Workbench and
# everything else Motia serves needs WORKBENCH_USER/WORKBENCH_PASSWORD (HTTP Basic); without
# them it is not served at all (see scripts/motia-port-gate.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
if [ -f .env ]; then load_dotenv .env; fi
export PORT="${PORT:-3000}"
export MOTIA_ANALYTICS_DISABLED=true
export MOTIA_FLOW_LAYOUT_READONLY=true   # the running service never rewrites motia-workbench.json
unset WORKBENCH_OPEN_LOCAL   # the sandbox's open Workbench never applies here
python_modules/bin/python -m services.settings   # fails fast naming any missing/invalid variable
python_modules/bin/python -m services.ops.preflight   # names what keeps notices from arriving
if [ -n "${WORKBENCH_USER:-}" ] && [ -n "${WORKBENCH_PASSWORD:-}" ]; then
  echo "Workbench: http://${HOST:-127.0.0.1}:$PORT behind the login WORKBENCH_USER/WORKBENCH_PASSWORD"
else
  export MOTIA_DOCKER_DISABLE_WORKBENCH=true
  echo "Workbench: off (set WORKBENCH_USER and WORKBENCH_PASSWORD to serve it behind a login)"
fi
if port_in_use "$PORT"; then
  echo "Port $PORT is already in use; set PORT=..." >&2
  exit 1
fi
exec node_modules/.bin/motia start -H "${HOST:-127.0.0.1}" -p "$PORT"
