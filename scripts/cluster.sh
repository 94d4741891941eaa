#!/usr/bin/env bash
# A local cluster on this machine: one Cassandra node, nats-server with JetStream, redis-server and
# three gateways on ports 8081-8083, sharing every secret and one blob directory.
#
#   bash scripts/cluster.sh start    # starts what is not running; prints the gateways' URLs
#   bash scripts/cluster.sh status   # what runs, with PIDs
#   bash scripts/cluster.sh stop     # drains the gateways (SIGTERM, waits), then stops the engines
#
# Ports: gateways 8081-8083; NATS, Redis and Cassandra on their usual ports unless CLUSTER_NATS_PORT,
# CLUSTER_REDIS_PORT, CLUSTER_CASSANDRA_PORT (and CASSANDRA_STORAGE_PORT) say otherwise.
# State lives in .cluster/ (git-ignored): pids/, logs/, data, and env (the shared secrets, made once).
# Cassandra comes from scripts/cassandra/cassandra.sh (Java 17 and Maven; its data in .cluster/cassandra).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE="$ROOT/.cluster"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
GATEWAYS=(1 2 3)
NATS_PORT=${CLUSTER_NATS_PORT:-4222}
REDIS_PORT=${CLUSTER_REDIS_PORT:-6379}
CASSANDRA_PORT=${CLUSTER_CASSANDRA_PORT:-9042}
export CASSANDRA_DIR="$STATE/cassandra" CASSANDRA_PORT

alive() { [ -f "$PIDS/$1" ] && kill -0 "$(cat "$PIDS/$1")" 2>/dev/null; }

wait_port() { # name port seconds
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "$1 did not open port $2 within $3 s (logs in $LOGS)" >&2; exit 1; }
    sleep 0.2
  done
}

secrets() {
  # One place for everything the gateways must share: tokens, push, blob URLs.
  [ -f "$STATE/env" ] && return
  local vapid
  vapid=$(node -e 'const k=require("web-push").generateVAPIDKeys();console.log(k.publicKey+" "+k.privateKey)')
  umask 077
  cat > "$STATE/env" <<EOF
CHAT_TOKEN_SECRET=$(openssl rand -hex 32)
CHAT_PUSH_WEBHOOK_SECRET=$(openssl rand -hex 32)
CHAT_BLOB_URL_SECRET=$(openssl rand -hex 32)
CHAT_VAPID_PUBLIC_KEY=${vapid% *}
CHAT_VAPID_PRIVATE_KEY=${vapid#* }
EOF
}

start() {
  mkdir -p "$PIDS" "$LOGS" "$STATE/nats" "$STATE/blobs"
  secrets
  bash scripts/cassandra/cassandra.sh fetch >/dev/null
  bash scripts/cassandra/cassandra.sh start
  if ! alive nats; then
    nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$STATE/nats" >"$LOGS/nats.log" 2>&1 &
    echo $! >"$PIDS/nats"
  fi
  if ! alive redis; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$LOGS/redis.log" 2>&1 &
    echo $! >"$PIDS/redis"
  fi
  wait_port nats-server "$NATS_PORT" 20
  wait_port redis-server "$REDIS_PORT" 20
  set -a
  # shellcheck disable=SC1091
  . "$STATE/env"
  set +a
  for i in "${GATEWAYS[@]}"; do
    alive "gw$i" && continue
    # node itself, not npm: the PID recorded is the gateway's, so SIGTERM reaches it and it drains.
    CHAT_STORE="cassandra://127.0.0.1:$CASSANDRA_PORT/chat" CHAT_BUS="nats://127.0.0.1:$NATS_PORT" \
      CHAT_PRESENCE="redis://127.0.0.1:$REDIS_PORT" CHAT_GATEWAY_ID="gw$i" CHAT_PORT="808$i" \
      CHAT_DATA_DIR="$STATE/gw$i" CHAT_BLOB_STORE="file:$STATE/blobs" \
      node --max-semi-space-size=64 --import tsx gateway/main.ts >"$LOGS/gw$i.log" 2>&1 &
    echo $! >"$PIDS/gw$i"
    # One at a time: the first one creates the keyspace and the streams.
    wait_port "gateway gw$i" "808$i" 60
  done
  status
}

status() {
  for name in cassandra nats redis "${GATEWAYS[@]/#/gw}"; do
    if [ "$name" = cassandra ]; then
      bash scripts/cassandra/cassandra.sh status || true
    elif alive "$name"; then
      echo "$name: running, pid $(cat "$PIDS/$name")"
    else
      echo "$name: not running"
    fi
  done
  for i in "${GATEWAYS[@]}"; do alive "gw$i" && echo "gateway gw$i: http://127.0.0.1:808$i"; done
  return 0
}

stop_pid() { # name signal seconds
  alive "$1" || { rm -f "$PIDS/$1"; return 0; }
  local pid deadline=$((SECONDS + $3))
  pid=$(cat "$PIDS/$1")
  kill "-$2" "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "$1 (pid $pid) still running after $3 s: SIGKILL" >&2; kill -KILL "$pid"; fi
    sleep 0.2
  done
  rm -f "$PIDS/$1"
  echo "$1: stopped"
}

stop() {
  # Gateways first, drained: each answers the sends it has read, tells its devices go_away, exits.
  for i in "${GATEWAYS[@]}"; do stop_pid "gw$i" TERM 40 & done
  wait
  stop_pid redis TERM 10
  stop_pid nats TERM 10
  bash scripts/cassandra/cassandra.sh stop
}

case "${1:-}" in
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
