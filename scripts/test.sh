#!/usr/bin/env bash
# `npm test` and `npm run test:faults`: check what the tests need on this machine, install what is
# missing when we may (root with apt-get), otherwise stop at once naming the command to run; then run
# the suite. Any further arguments go to vitest (a file name, -t "a test's name", --reporter=verbose).
#
#   scripts/test.sh [vitest arguments]            the main suite (everything but test/faults/)
#   scripts/test.sh --faults [vitest arguments]   faults and capacity under load (test/faults/)
#   scripts/test.sh --prerequisites               only the check (and install)
set -euo pipefail
cd "$(dirname "$0")/.."

project=main
case "${1:-}" in
  --faults) project=faults; shift ;;
  --prerequisites) project="" ;;
esac

# Debian puts nats-server in /usr/sbin, which is not on every user's PATH.
[[ ":$PATH:" == *":/usr/sbin:"* ]] || PATH="$PATH:/usr/sbin"
export PATH

# command -> Debian package, and which tests need it.
needs=(
  "nats-server|nats-server|cluster tests (event bus)"
  "redis-server|redis-server|cluster tests (presence, sessions, rate limits)"
  "prometheus|prometheus|operations test (scrapes /metrics)"
  "promtool|prometheus|operations test (checks the metrics format)"
  "tmux|tmux|terminal client test"
  "chromium|chromium|web client tests (headless)"
  "openssl|openssl|TLS tests (makes a certificate)"
)
# The Cassandra tests start a node from Maven Central jars unless CHAT_TEST_CASSANDRA names one.
if [[ -z "${CHAT_TEST_CASSANDRA:-}" ]]; then
  needs+=("java|openjdk-17-jre-headless|Cassandra tests (Cassandra 5.0 runs on Java 17)" "mvn|maven|Cassandra tests (fetches its jars once)")
fi

missing_packages=()
missing_lines=()
for need in "${needs[@]}"; do
  IFS='|' read -r command package why <<<"$need"
  if ! command -v "$command" >/dev/null 2>&1; then
    missing_lines+=("  $command: $why")
    [[ " ${missing_packages[*]} " == *" $package "* ]] || missing_packages+=("$package")
  fi
done

if ((${#missing_packages[@]} > 0)); then
  echo "The tests need programs this machine lacks:" >&2
  printf '%s\n' "${missing_lines[@]}" >&2
  install="apt-get install -y ${missing_packages[*]}"
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing them: apt-get update && $install" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing_packages[@]}" >/dev/null
  else
    echo "Install them, then run the tests again:" >&2
    echo "  sudo apt-get update && sudo $install" >&2
    exit 1
  fi
fi

if [[ -z "${CHAT_TEST_CASSANDRA:-}" ]] && command -v java >/dev/null 2>&1; then
  major="$(java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print v[1]; exit }')"
  if [[ "$major" != 17 ]] && ! compgen -G "/usr/lib/jvm/*17*/bin/java" >/dev/null; then
    echo "The Cassandra tests need Java 17 (this java is $major): sudo apt-get install -y openjdk-17-jre-headless" >&2
    exit 1
  fi
fi

[[ -n "$project" ]] || exit 0
[[ -d node_modules ]] || { echo "node_modules is missing: run npm install first" >&2; exit 1; }

exec npx vitest run --project "$project" "$@"
