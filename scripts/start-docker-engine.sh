#!/usr/bin/env bash
# Starts a private Docker engine for development and tests, or reuses a running one.
# No bridge and no iptables: boxes run with network "none", and tests must never reach beyond loopback.
# Prints `export DOCKER_HOST=...` on stdout; everything else goes to stderr.
set -euo pipefail
dir="${AGENT_SANDBOX_ENGINE_DIR:-/tmp/agent-sandbox-engine}"
sock="$dir/docker.sock"
mkdir -p "$dir"

if ! command -v dockerd >/dev/null 2>&1; then
  echo "[engine] installing Debian's docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq docker.io >&2
fi

# gVisor (runsc) from Debian: the engine tier runs boxes under it as well (agentSandbox.runtime "runsc").
# runsc's own network stack is off: boxes have no network, and the egress relay shares a runc box's namespace.
if ! command -v runsc >/dev/null 2>&1; then
  echo "[engine] installing Debian's runsc (gVisor)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq runsc >&2 || { apt-get update -qq >&2 && apt-get install -y -qq runsc >&2; }
fi
runsc_path="$(command -v runsc)"

write_config() {
  cat > "$dir/daemon.json" <<JSON
{
  "data-root": "$dir/data",
  "exec-root": "$dir/exec",
  "pidfile": "$dir/docker.pid",
  "hosts": ["unix://$sock"],
  "bridge": "none",
  "iptables": false,
  "ip6tables": false,
  "ip-forward": false,
  "ip-masq": false,
  "runtimes": { "runsc": { "path": "$runsc_path", "runtimeArgs": ["--network=none"] } }
}
JSON
}

if docker -H "unix://$sock" version >/dev/null 2>&1; then
  if [ -f "$dir/docker.pid" ] && ! docker -H "unix://$sock" info --format '{{json .Runtimes}}' | grep -q '"runsc"'; then
    # An engine started by an older version of this script: runtimes are reloaded on SIGHUP, no restart needed.
    echo "[engine] registering runsc with the running engine" >&2
    write_config
    kill -HUP "$(cat "$dir/docker.pid")"
    sleep 1
  fi
  echo "[engine] reusing the engine at unix://$sock" >&2
  echo "export DOCKER_HOST=unix://$sock"
  exit 0
fi

write_config
# A bare dockerd needs containerd; Debian's docker.io starts its own when none is given.
nohup dockerd --config-file "$dir/daemon.json" >"$dir/dockerd.log" 2>&1 &
for _ in $(seq 1 100); do
  if docker -H "unix://$sock" version >/dev/null 2>&1; then
    echo "[engine] dockerd ready at unix://$sock (log: $dir/dockerd.log)" >&2
    echo "export DOCKER_HOST=unix://$sock"
    exit 0
  fi
  sleep 0.2
done
echo "[engine] dockerd did not answer within 20 s; its log:" >&2
tail -30 "$dir/dockerd.log" >&2
exit 1
