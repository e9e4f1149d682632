#!/usr/bin/env bash
# Airflow on Celery workers, on one machine, from packages only, on loopback:
#   PostgreSQL (metadata database), Redis (Celery broker), the Airflow API server,
#   scheduler and DAG processor, and two Celery workers (one task at a time each).
#
#   scripts/airflow-celery.sh start <state-folder>   start everything; returns when healthy
#   scripts/airflow-celery.sh env   <state-folder>   print the environment for `airflow` CLI calls
#   scripts/airflow-celery.sh stop  <state-folder>   stop everything this script started
#
# Needs: PostgreSQL server binaries (Debian: postgresql), redis-server (Debian: redis-server),
# and .venv with the `celery` extra (scripts/setup.sh installs requirements.lock, which has it).
# Ports: FH_PG_PORT (default 54329), FH_REDIS_PORT (63799), FH_API_PORT (18080); the two
# workers' log servers use FH_LOG_PORT and FH_LOG_PORT+1 (18793, 18794).
#
# This is a deployment a data team can start and inspect; it is not hardened: PostgreSQL trusts
# local connections and Redis has no password, which is acceptable only because both listen on
# 127.0.0.1 of a single-user machine. A server deployment sets passwords (docs/airflow.md).
# Patient data never passes through PostgreSQL or Redis: tasks exchange region names and paths.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
cmd=${1:-}; STATE=${2:-}
[ -n "$cmd" ] && [ -n "$STATE" ] || { sed -n 2,9p "$0"; exit 2; }
mkdir -p "$STATE"; STATE=$(cd "$STATE" && pwd)
PG_PORT=${FH_PG_PORT:-54329}; REDIS_PORT=${FH_REDIS_PORT:-63799}
API_PORT=${FH_API_PORT:-18080}; LOG_PORT=${FH_LOG_PORT:-18793}
PG_BIN=${FH_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

# initdb and postgres refuse to run as root: then they run as the packaged `postgres` account
# (the state folder and its parents must be reachable for it; the data folder is its own).
AS_PG=(); [ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)

airflow_env() {
  [ -f "$STATE/secret" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/secret")
  cat <<EOF
export PATH="$REPO/.venv/bin:\$PATH"
export AIRFLOW_HOME="$STATE/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$API_PORT/execution/"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://airflow@127.0.0.1:$PG_PORT/airflow"
export AIRFLOW__CELERY__BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql://airflow@127.0.0.1:$PG_PORT/airflow"
export AIRFLOW__CELERY__WORKER_CONCURRENCY=1
export AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER=1
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$API_PORT
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$API_PORT"
export AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$STATE/secret")"
export AIRFLOW__API__SECRET_KEY="$(cat "$STATE/secret")"
export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=2
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__CORE__HOSTNAME_CALLABLE=fh_worker_name.name
export PYTHONPATH="$STATE/lib\${PYTHONPATH:+:\$PYTHONPATH}"
export GX_ANALYTICS_ENABLED=false TQDM_DISABLE=1
EOF
}

start_bg() {  # name, command...: own process group, pid in $STATE/<name>.pid, log in $STATE/<name>.log
  local name=$1; shift
  setsid "$@" > "$STATE/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/$name.pid"
}

wait_for() {  # seconds, description, command...
  local limit=$1 what=$2; shift 2
  for _ in $(seq "$limit"); do "$@" > /dev/null 2>&1 && return 0; sleep 1; done
  echo "airflow-celery: $what did not come up in ${limit}s (logs in $STATE)" >&2; return 1
}

stop_group() {  # names...: SIGTERM each process group, wait for all of them, SIGKILL what is left
  local name pid alive pids=()
  for name in "$@"; do
    [ -f "$STATE/$name.pid" ] || continue
    pids+=("$(cat "$STATE/$name.pid")")
    kill -TERM -- "-${pids[-1]}" 2> /dev/null || true
  done
  for _ in $(seq 20); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2> /dev/null && alive=1; done
    [ "$alive" = 1 ] || break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2> /dev/null || true; done
  for name in "$@"; do rm -f "$STATE/$name.pid"; done
}

case "$cmd" in
env) airflow_env ;;
start)
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2; exit 1; }
  command -v redis-server > /dev/null || { echo "redis-server not found (Debian: apt-get install redis-server)" >&2; exit 1; }
  [ -x .venv/bin/airflow ] || bash scripts/setup.sh
  mkdir -p "$STATE/lib"
  # The name each task instance records as its host: which worker ran it (fh-worker-1/2).
  printf 'import os\nimport socket\n\n\ndef name():\n    return os.environ.get("FH_WORKER_NAME") or socket.getfqdn()\n' \
    > "$STATE/lib/fh_worker_name.py"
  if [ ! -d "$STATE/pg" ]; then
    install -d -m 700 "$STATE/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$STATE/pg" && chmod o+x "$STATE"
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$STATE/pg" -U airflow --auth=trust -E UTF8 > "$STATE/initdb.log"
  fi
  start_bg postgres "${AS_PG[@]}" "$PG_BIN/postgres" -D "$STATE/pg" -p "$PG_PORT" -k "$STATE/pg" -c listen_addresses=127.0.0.1
  start_bg redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir "$STATE"
  wait_for 60 PostgreSQL "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -U airflow
  wait_for 30 Redis redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'airflow'" | grep -q 1 \
    || "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U airflow airflow
  eval "$(airflow_env)"
  airflow db migrate > "$STATE/migrate.log" 2>&1
  airflow pools set fh_duckdb 2 "DuckDB writers (one per region at a time)" > /dev/null 2>&1
  start_bg api-server airflow api-server
  start_bg scheduler airflow scheduler
  start_bg dag-processor airflow dag-processor
  for n in 1 2; do
    FH_WORKER_NAME=fh-worker-$n AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$((LOG_PORT + n - 1)) \
      start_bg "worker-$n" airflow celery worker --celery-hostname "fh-worker-$n@%h" --concurrency 1
  done
  wait_for 120 "the API server" curl -sf "http://127.0.0.1:$API_PORT/api/v2/monitor/health"
  wait_for 120 "both Celery workers" bash -c \
    "grep -q 'ready' '$STATE/worker-1.log' && grep -q 'ready' '$STATE/worker-2.log'"
  echo "airflow-celery: up (API http://127.0.0.1:$API_PORT, state in $STATE)"
  ;;
stop)
  # Airflow's processes first, together, then the services they use; each group gets 10 s
  # after SIGTERM before SIGKILL (the API server can take all of it).
  stop_group worker-2 worker-1 dag-processor scheduler api-server
  stop_group redis postgres
  echo "airflow-celery: stopped"
  ;;
*) sed -n 2,9p "$0"; exit 2 ;;
esac
