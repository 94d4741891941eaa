#!/usr/bin/env bash
# Runs a single-node Apache Cassandra 5.0 from Maven Central jars: no Docker, no package, no cqlsh.
# backends/store-cassandra/README.md says why each flag is here.
#
#   cassandra.sh fetch    copy cassandra-all and its runtime dependencies into $CASSANDRA_LIB (once)
#   cassandra.sh start    start in the background, wait until the CQL port accepts connections
#   cassandra.sh stop     SIGTERM, wait for the exit (SIGKILL after $CASSANDRA_STOP_TIMEOUT seconds)
#   cassandra.sh kill     SIGKILL (what a crash looks like), wait for the exit
#   cassandra.sh status   exit 0 and print the pid and port when running, exit 3 otherwise
#
# Without CASSANDRA_DIR, stop, kill and status act on every node under <repo>/.tmp/ (the tests' node
# in .tmp/cassandra-test included), each on the port its configuration names.
#
# Environment (every instance needs its own CASSANDRA_DIR and ports; they may share CASSANDRA_LIB):
#   CASSANDRA_DIR           instance folder: conf/, data/, logs/, tmp/, cassandra.pid   [<repo>/.tmp/cassandra]
#   CASSANDRA_LIB           the jars                                                   [$CASSANDRA_DIR/lib]
#   CASSANDRA_PORT          CQL port                                                   [9042]
#   CASSANDRA_STORAGE_PORT  gossip / internode port                                    [7000]
#   CASSANDRA_HEAP          -Xms/-Xmx                                                  [512m]
#   CASSANDRA_VERSION       cassandra-all version fetched                              [5.0.6]
#   CASSANDRA_START_TIMEOUT seconds to wait for the CQL port                           [120]
#   CASSANDRA_STOP_TIMEOUT  seconds to wait after SIGTERM                              [60]
#   JAVA_HOME               a JDK 17 (otherwise `java` on PATH, then /usr/lib/jvm/*17*)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

die() {
  echo "cassandra.sh: $*" >&2
  exit 1
}

absolute() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

# stop, kill and status without CASSANDRA_DIR: every node under .tmp/ that has a pid file.
if [[ -z "${CASSANDRA_DIR:-}" && "${1:-}" =~ ^(stop|kill|status)$ ]]; then
  dirs=()
  for dir in "$REPO_ROOT"/.tmp/cassandra*/; do
    [[ -f "$dir/cassandra.pid" ]] && dirs+=("${dir%/}")
  done
  if ((${#dirs[@]} > 0)); then
    worst=0
    for dir in "${dirs[@]}"; do
      CASSANDRA_DIR="$dir" bash "${BASH_SOURCE[0]}" "$1" || worst=$?
    done
    exit "$worst"
  fi
fi

CASSANDRA_DIR="$(absolute "${CASSANDRA_DIR:-$REPO_ROOT/.tmp/cassandra}")"
# A node that was started keeps its ports in its configuration: status and stop report those.
if [[ -z "${CASSANDRA_PORT:-}" && -f "$CASSANDRA_DIR/conf/cassandra.yaml" ]]; then
  CASSANDRA_PORT="$(awk '/^native_transport_port:/ { print $2; exit }' "$CASSANDRA_DIR/conf/cassandra.yaml")"
fi
if [[ -z "${CASSANDRA_STORAGE_PORT:-}" && -f "$CASSANDRA_DIR/conf/cassandra.yaml" ]]; then
  CASSANDRA_STORAGE_PORT="$(awk '/^storage_port:/ { print $2; exit }' "$CASSANDRA_DIR/conf/cassandra.yaml")"
fi
CASSANDRA_LIB="$(absolute "${CASSANDRA_LIB:-$CASSANDRA_DIR/lib}")"
CASSANDRA_PORT="${CASSANDRA_PORT:-9042}"
CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-7000}"
CASSANDRA_HEAP="${CASSANDRA_HEAP:-512m}"
CASSANDRA_VERSION="${CASSANDRA_VERSION:-5.0.6}"
CASSANDRA_START_TIMEOUT="${CASSANDRA_START_TIMEOUT:-120}"
CASSANDRA_STOP_TIMEOUT="${CASSANDRA_STOP_TIMEOUT:-60}"
PID_FILE="$CASSANDRA_DIR/cassandra.pid"

for port in "$CASSANDRA_PORT" "$CASSANDRA_STORAGE_PORT"; do
  [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "not a port number: '$port'"
done
[[ "$CASSANDRA_PORT" != "$CASSANDRA_STORAGE_PORT" ]] || die "CASSANDRA_PORT and CASSANDRA_STORAGE_PORT are both $CASSANDRA_PORT"
[[ "$CASSANDRA_HEAP" =~ ^[0-9]+[kKmMgG]$ ]] || die "CASSANDRA_HEAP must look like 512m or 1g, got '$CASSANDRA_HEAP'"

now_ms() { date +%s%3N; }
elapsed() { awk -v ms="$(($(now_ms) - $1))" 'BEGIN { printf "%.1f s", ms / 1000 }'; }

# The major version of a java binary ("17" for 17.0.15, "1" would be 1.8).
java_major() {
  "$1" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print v[1]; exit }'
}

find_java() {
  local candidates=() seen=""
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && candidates+=("$(command -v java)")
  local dir
  for dir in /usr/lib/jvm/*17* /usr/lib/jvm/*-17-* /opt/java/*17*; do
    [[ -x "$dir/bin/java" ]] && candidates+=("$dir/bin/java")
  done
  local candidate major
  for candidate in "${candidates[@]}"; do
    [[ -x "$candidate" ]] || continue
    major="$(java_major "$candidate" || true)"
    if [[ "$major" == "17" ]]; then
      printf '%s\n' "$candidate"
      return 0
    fi
    seen+="${seen:+;} $candidate (version ${major:-unknown})"
  done
  die "java 17 not found: Cassandra 5.0 runs on JDK 17 only (21+ fails with 'Setting a system-wide Policy object is not supported').${seen:+ Tried:$seen.} Install a JDK 17 or point JAVA_HOME at one."
}

pid_alive() {
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A pid file can outlive its process and the pid be reused: only our daemon, with our config, counts.
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "CassandraDaemon" &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$CASSANDRA_DIR/conf/cassandra.yaml"
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_fetch() {
  if [[ -d "$CASSANDRA_LIB" ]] && compgen -G "$CASSANDRA_LIB/cassandra-all-*.jar" >/dev/null; then
    echo "cassandra jars already in $CASSANDRA_LIB ($(ls "$CASSANDRA_LIB" | wc -l) files), skipping fetch"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: the jars come from Maven Central through Maven (apt-get install maven)"
  find_java >/dev/null
  local started parent staging
  started="$(now_ms)"
  parent="$(dirname "$CASSANDRA_LIB")"
  mkdir -p "$parent"
  # Copied next to the target and renamed at the end, so an interrupted or concurrent fetch never
  # leaves a half-filled lib/ behind that a later run would take for complete.
  staging="$(mktemp -d "$parent/.lib-fetch.XXXXXX")"
  FETCH_STAGING="$staging"
  trap 'rm -rf "${FETCH_STAGING:-}"' EXIT
  echo "fetching org.apache.cassandra:cassandra-all:$CASSANDRA_VERSION and its runtime dependencies from Maven Central into $CASSANDRA_LIB ..."
  # Progress: one line per jar downloaded (nothing when ~/.m2 already has them), then the copy count.
  (
    cd "$SCRIPT_DIR"
    mvn -B -f "$SCRIPT_DIR/pom.xml" -Dcassandra.version="$CASSANDRA_VERSION" \
      org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DoutputDirectory="$staging/lib" -DincludeScope=runtime 2>&1
  ) | awk '
      /^\[(ERROR|WARNING)\]/ { print "  " $0; fflush(); next }
      /Downloaded from .*\.jar / { n++; jar = $0; sub(/\.jar .*/, ".jar", jar); sub(/.*\//, "", jar); printf "  downloaded %3d: %s\n", n, jar; fflush(); next }
      /Copying / { c++ }
      END { if (c) printf "  copied %d jars\n", c }
    ' || true
  compgen -G "$staging/lib/cassandra-all-*.jar" >/dev/null || die "mvn copy-dependencies did not produce cassandra-all-$CASSANDRA_VERSION.jar (see the errors above; is Maven Central reachable?)"
  if [[ -d "$CASSANDRA_LIB" ]] && compgen -G "$CASSANDRA_LIB/cassandra-all-*.jar" >/dev/null; then
    echo "another fetch finished first; keeping $CASSANDRA_LIB"
  else
    rm -rf "$CASSANDRA_LIB"
    mv "$staging/lib" "$CASSANDRA_LIB"
  fi
  echo "fetched $(ls "$CASSANDRA_LIB" | wc -l) jars ($(du -sh "$CASSANDRA_LIB" | cut -f1)) in $(elapsed "$started")"
}

write_config() {
  local conf="$CASSANDRA_DIR/conf"
  mkdir -p "$conf" "$CASSANDRA_DIR/data" "$CASSANDRA_DIR/logs" "$CASSANDRA_DIR/tmp" "$CASSANDRA_DIR/triggers"
  sed -e "s|@CLUSTER_NAME@|chat-$(basename "$CASSANDRA_DIR")|g" \
    -e "s|@CQL_PORT@|$CASSANDRA_PORT|g" \
    -e "s|@STORAGE_PORT@|$CASSANDRA_STORAGE_PORT|g" \
    "$SCRIPT_DIR/cassandra.yaml" >"$conf/cassandra.yaml.new"
  mv "$conf/cassandra.yaml.new" "$conf/cassandra.yaml"
  cp "$SCRIPT_DIR/logback.xml" "$conf/logback.xml"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    if port_open "$CASSANDRA_PORT"; then
      echo "cassandra already running (pid $pid, CQL 127.0.0.1:$CASSANDRA_PORT, dir $CASSANDRA_DIR)"
      return 0
    fi
    die "cassandra (pid $pid) from $CASSANDRA_DIR is running but 127.0.0.1:$CASSANDRA_PORT does not accept connections; stop it first"
  fi
  port_open "$CASSANDRA_PORT" && die "127.0.0.1:$CASSANDRA_PORT is already in use by another process; choose another CASSANDRA_PORT"
  port_open "$CASSANDRA_STORAGE_PORT" && die "127.0.0.1:$CASSANDRA_STORAGE_PORT is already in use by another process; choose another CASSANDRA_STORAGE_PORT"

  local java
  java="$(find_java)"
  cmd_fetch >/dev/null || die "fetching the jars failed; run '$0 fetch' to see why"
  write_config

  local started jamm=()
  started="$(now_ms)"
  local jamm_jar
  jamm_jar="$(compgen -G "$CASSANDRA_LIB/jamm-*.jar" | head -n 1 || true)"
  [[ -n "$jamm_jar" ]] && jamm=("-javaagent:$jamm_jar")

  # Cassandra's conf/jvm17-server.options: without them 5.0 stops with "unable to access required classes".
  local modules=(
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.math=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens java.base/java.net=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  )
  local flags=(
    "-Xms$CASSANDRA_HEAP" "-Xmx$CASSANDRA_HEAP"
    -XX:+ExitOnOutOfMemoryError
    -Djdk.attach.allowAttachSelf=true
    -Dio.netty.tryReflectionSetAccessible=true
    -Dcassandra-foreground=yes
    "-Dcassandra.config=file://$CASSANDRA_DIR/conf/cassandra.yaml"
    "-Dcassandra.storagedir=$CASSANDRA_DIR/data"
    "-Dcassandra.logdir=$CASSANDRA_DIR/logs"
    "-Dcassandra.triggers_dir=$CASSANDRA_DIR/triggers"
    "-Dlogback.configurationFile=file://$CASSANDRA_DIR/conf/logback.xml"
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.ring_delay_ms=1000
    # Natives are unpacked here; in the system temp folder they would leak after every kill -9.
    "-Djava.io.tmpdir=$CASSANDRA_DIR/tmp"
    "-Djna.tmpdir=$CASSANDRA_DIR/tmp"
  )

  # setsid: its own session, so neither a terminal hang-up nor the test runner's process group takes
  # it down with them; only `stop`/`kill` (by pid) do.
  setsid "$java" "${jamm[@]}" "${modules[@]}" "${flags[@]}" \
    -cp "$CASSANDRA_DIR/conf:$CASSANDRA_LIB/*" org.apache.cassandra.service.CassandraDaemon \
    </dev/null >"$CASSANDRA_DIR/logs/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "starting cassandra $CASSANDRA_VERSION (pid $pid, CQL 127.0.0.1:$CASSANDRA_PORT, storage $CASSANDRA_STORAGE_PORT, heap $CASSANDRA_HEAP, dir $CASSANDRA_DIR) ..."

  local deadline=$(($(now_ms) + CASSANDRA_START_TIMEOUT * 1000))
  until port_open "$CASSANDRA_PORT"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "cassandra exited during start; last lines of its logs:" >&2
      tail -n 30 "$CASSANDRA_DIR/logs/stdout.log" >&2 || true
      grep -E 'ERROR|Exception' "$CASSANDRA_DIR/logs/system.log" 2>/dev/null | tail -n 10 >&2 || true
      rm -f "$PID_FILE"
      exit 1
    fi
    if (($(now_ms) > deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "cassandra did not accept CQL connections on 127.0.0.1:$CASSANDRA_PORT within ${CASSANDRA_START_TIMEOUT}s (killed it; see $CASSANDRA_DIR/logs/system.log)"
    fi
    sleep 0.1
  done
  echo "cassandra ready on 127.0.0.1:$CASSANDRA_PORT in $(elapsed "$started")"
}

wait_exit() {
  local pid="$1" timeout_s="$2" deadline
  deadline=$(($(now_ms) + timeout_s * 1000))
  while kill -0 "$pid" 2>/dev/null; do
    (($(now_ms) > deadline)) && return 1
    sleep 0.1
  done
}

cmd_stop() {
  local pid started
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    echo "cassandra not running (dir $CASSANDRA_DIR)"
    return 0
  fi
  started="$(now_ms)"
  kill -TERM "$pid"
  if ! wait_exit "$pid" "$CASSANDRA_STOP_TIMEOUT"; then
    echo "cassandra (pid $pid) still running ${CASSANDRA_STOP_TIMEOUT}s after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" 30 || die "cassandra (pid $pid) survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  echo "cassandra stopped (pid $pid) in $(elapsed "$started")"
}

cmd_kill() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    echo "cassandra not running (dir $CASSANDRA_DIR)"
    return 0
  fi
  kill -KILL "$pid"
  wait_exit "$pid" 30 || die "cassandra (pid $pid) survived SIGKILL"
  rm -f "$PID_FILE"
  echo "cassandra killed (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if port_open "$CASSANDRA_PORT"; then
      echo "running (pid $pid, CQL 127.0.0.1:$CASSANDRA_PORT, dir $CASSANDRA_DIR)"
    else
      echo "starting (pid $pid, CQL 127.0.0.1:$CASSANDRA_PORT not open yet, dir $CASSANDRA_DIR)"
    fi
    return 0
  fi
  echo "stopped (dir $CASSANDRA_DIR)"
  return 3
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 fetch|start|stop|kill|status  (see the top of this file for the environment)" >&2
    exit 2
    ;;
esac
