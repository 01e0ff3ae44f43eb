#!/usr/bin/env bash
# `make serve`: the service alone against the endpoints configured in the environment
# or .env (no simulators). Several instances may share one Redis: the cron sweep takes a
# per-tick Redis lock and every record sync a per-record lock.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
if [ -f .env ]; then set -a; source .env; set +a; fi
export PORT="${PORT:-3000}"
export MOTIA_ANALYTICS_DISABLED=true
python_modules/bin/python -m services.settings   # fails fast naming any missing/invalid variable
if port_in_use "$PORT"; then
  echo "Port $PORT is already in use; set PORT=..." >&2
  exit 1
fi
exec node_modules/.bin/motia start -H 127.0.0.1 -p "$PORT"
