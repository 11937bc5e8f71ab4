#!/usr/bin/env bash
# Start an MLflow tracking server for metarl searches. See mlflow/README.md.
#
#   mlflow/serve.sh                       # 127.0.0.1:5000, SQLite in mlflow/mlflow.db
#   mlflow/serve.sh --port 5001
#   BACKEND_STORE_URI=postgresql://mlflow:PASSWORD@db-host:5432/mlflow \
#   ARTIFACTS_DESTINATION=/shared/mlflow-artifacts \
#   mlflow/serve.sh --host 0.0.0.0        # team server
#
# Settings (flag or environment variable; flags win):
#   --host HOST          HOST                   interface to bind        (127.0.0.1)
#   --port PORT          PORT                   port                     (5000)
#   --backend-store-uri  BACKEND_STORE_URI      runs, params, metrics    (sqlite:///<this dir>/mlflow.db)
#   --artifacts-destination ARTIFACTS_DESTINATION  artifact files      (<this dir>/mlartifacts)
#   --workers N          WORKERS                server processes         (1 with SQLite, else 4)
#   --dry-run                                   print the command instead of running it
# Anything after `--` goes to `mlflow server` unchanged (e.g. -- --app-name basic-auth).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

host="${HOST:-127.0.0.1}"
port="${PORT:-5000}"
backend="${BACKEND_STORE_URI:-sqlite:///${here}/mlflow.db}"
artifacts="${ARTIFACTS_DESTINATION:-${here}/mlartifacts}"
workers="${WORKERS:-}"
dry_run=0
extra=()

usage() { sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --host) host="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --backend-store-uri) backend="$2"; shift 2 ;;
    --artifacts-destination) artifacts="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "serve.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# SQLite takes one writer at a time: several server processes would only queue on its lock
if [[ -z "$workers" ]]; then
  if [[ "$backend" == sqlite:* ]]; then workers=1; else workers=4; fi
fi

# prefer the console script; a virtualenv used without activation may only have the module
if command -v mlflow >/dev/null 2>&1; then
  mlflow_cmd=(mlflow)
else
  mlflow_cmd=(python -m mlflow)
fi

cmd=("${mlflow_cmd[@]}" server
     --backend-store-uri "$backend"
     --artifacts-destination "$artifacts"
     --host "$host" --port "$port" --workers "$workers"
     "${extra[@]}")

if [[ "$dry_run" == 1 ]]; then
  echo "${cmd[*]}"
  exit 0
fi

if [[ "$backend" == sqlite:///* ]]; then
  mkdir -p "$(dirname "${backend#sqlite:///}")"
fi
if [[ "$artifacts" != *://* ]]; then
  mkdir -p "$artifacts"
fi
if [[ "$host" != 127.0.0.1 && "$host" != localhost && "$host" != ::1 ]]; then
  echo "serve.sh: listening on $host: anyone who can reach this port can read and write runs." >&2
  echo "serve.sh: restrict it with a firewall or add authentication (-- --app-name basic-auth)," >&2
  echo "serve.sh: and pass --allowed-hosts for the names clients use (see mlflow/README.md)." >&2
fi

echo "serve.sh: MLflow at http://${host}:${port}  (store: ${backend}, artifacts: ${artifacts})" >&2
echo "serve.sh: log to it with  export MLFLOW_TRACKING_URI=http://${host}:${port}" >&2
exec "${cmd[@]}"
