#!/usr/bin/env bash
# Starts (up) or stops (down) the demo: a sandbox of 4 MariaDB instances
# (1 master, 2 replicas, 1 replica of a replica) and 3 warden nodes, all on
# loopback, in the background. State and logs live in .demo/ at the repo root.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
demo="$root/.demo"
bin="$root/bin"
base_port=${WARDEN_DEMO_DB_PORT:-23306}
http_base=${WARDEN_DEMO_HTTP_PORT:-3000}
raft_base=${WARDEN_DEMO_RAFT_PORT:-7000}
gossip_base=${WARDEN_DEMO_GOSSIP_PORT:-7946}

up() {
  mkdir -p "$demo/logs"
  if [ -f "$demo/warden.pids" ]; then
    echo "demo already running (make demo-down first)"; exit 1
  fi
  "$bin/sandbox" up --dir "$demo/sandbox" --base-port "$base_port" --instances 4 --chain \
    > "$demo/topology.json"
  local pwfile="$demo/sandbox/warden.pass"
  # Secure coordinator traffic, as in production (docs/security.md): a CA
  # for this demo group, one certificate per node, one gossip key.
  local pki="$demo/pki"
  mkdir -p "$pki" && chmod 700 "$pki"
  "$bin/warden" tls init --dir "$pki" --name "warden demo CA" > /dev/null
  for i in 1 2 3; do
    "$bin/warden" tls cert --dir "$pki" --node-id "warden$i" --host 127.0.0.1 > /dev/null
  done
  "$bin/warden" keygen --out "$pki/gossip.key" > /dev/null
  local join="127.0.0.1:$gossip_base,127.0.0.1:$((gossip_base + 1)),127.0.0.1:$((gossip_base + 2))"
  for i in 1 2 3; do
    local n=$((i - 1))
    nohup "$bin/warden" server \
      --node-id "warden$i" \
      --data-dir "$demo/warden$i" \
      --http-addr "127.0.0.1:$((http_base + n))" \
      --raft-addr "127.0.0.1:$((raft_base + n))" \
      --gossip-addr "127.0.0.1:$((gossip_base + n))" \
      --join "$join" \
      --bootstrap-expect 3 \
      --raft-tls-cert-file "$pki/warden$i.pem" --raft-tls-key-file "$pki/warden$i-key.pem" \
      --raft-tls-ca-file "$pki/ca.pem" --gossip-encrypt-key-file "$pki/gossip.key" \
      --mysql-user warden --mysql-password-file "$pwfile" \
      --mysql-replication-password-file "$demo/sandbox/repl.pass" \
      --discover "127.0.0.1:$base_port" \
      > "$demo/logs/warden$i.log" 2>&1 < /dev/null &
    echo $! >> "$demo/warden.pids"
  done
  # Wait (bounded) until every node answers its health check.
  for i in 1 2 3; do
    local url="http://127.0.0.1:$((http_base + i - 1))/healthz"
    for _ in $(seq 1 100); do
      curl -fsS -o /dev/null "$url" 2>/dev/null && break
      sleep 0.1
    done
    curl -fsS -o /dev/null "$url" || { echo "warden$i did not come up; see $demo/logs/warden$i.log"; exit 1; }
  done
  cat <<TXT

Warden demo is running.
  Web UI:      http://127.0.0.1:$http_base/   (also :$((http_base + 1)) and :$((http_base + 2)))
  API:         http://127.0.0.1:$http_base/api/v1/clusters
  MariaDB:     127.0.0.1:$base_port (master) .. $((base_port + 3)); topology in $demo/topology.json
  Logs:        $demo/logs/
  Coordinators: mutual TLS and an encrypted gossip key; certificates in $demo/pki/
  Stop it:     make demo-down
TXT
}

down() {
  if [ -f "$demo/warden.pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$demo/warden.pids"
    for _ in $(seq 1 50); do
      alive=0
      while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$demo/warden.pids"
      [ $alive = 0 ] && break
      sleep 0.1
    done
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$demo/warden.pids"
    rm -f "$demo/warden.pids"
  fi
  if [ -d "$demo/sandbox" ]; then
    "$bin/sandbox" down --dir "$demo/sandbox"
  fi
  rm -rf "$demo"
  echo "demo stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
