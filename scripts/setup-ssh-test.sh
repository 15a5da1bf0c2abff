#!/usr/bin/env bash
# Installs what the ssh:// engine test (test/engine/sshEngine.test.ts) needs: OpenSSH's server (the test runs
# its own sshd on 127.0.0.1 with generated keys; no system sshd is started or configured) and client.
# Prints nothing on stdout; progress on stderr.
set -euo pipefail
need_apt=()
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[ssh-test] installing ${need_apt[*]}" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
  # Keep the package from starting the system's sshd on port 22: policy-rc.d 101 = "action not allowed".
  policy=/usr/sbin/policy-rc.d
  made_policy=
  if [ ! -e "$policy" ]; then
    "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    made_policy=1
  fi
  trap '[ -n "$made_policy" ] && "${as_root[@]}" rm -f "$policy"' EXIT
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi
