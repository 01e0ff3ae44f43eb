# Shared shell helpers for run-sandbox.sh and serve.sh (sourced, not executed).

port_in_use() {  # port_in_use PORT -> 0 if something listens on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

redis_host_port() {  # prints "host port" parsed from a redis:// URL
  python_modules/bin/python - "$1" <<'PY'
import sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 6379)
PY
}

wait_for_http() {  # wait_for_http URL TIMEOUT_SECONDS
  local url=$1 deadline=$((SECONDS + $2))
  until curl -s -o /dev/null "$url"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

load_dotenv() {  # load_dotenv FILE: export each NAME=value of FILE that the environment does not set
  # (the environment wins, as in services/settings.py; `source .env` would let the file win).
  local line name value
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    [[ -z $line || $line == \#* || $line != *=* ]] && continue
    line="${line#export }"
    name="${line%%=*}"; value="${line#*=}"
    name="${name%"${name##*[![:space:]]}"}"
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [ -n "${!name+x}" ] && continue
    value="${value#"${value%%[![:space:]]*}"}"; value="${value%"${value##*[![:space:]]}"}"
    if [[ $value == \"*\" || $value == \'*\' ]]; then value="${value:1:${#value}-2}"; fi
    export "$name=$value"
  done < "$1"
}
