#!/usr/bin/env bash
# Builds the images the engine and host tests use, from this machine's own binaries (no registry is reachable).
#   agent-sandbox-test/busybox : busybox-static only (tiny, for hardening and mirror tests)
#   agent-sandbox-test/node    : busybox + bash + the host's node, git and GNU find with the libraries they
#                                link, and a setuid-root copy of node (/usr/local/bin/node-setuid) that the
#                                security tests try to escalate through
#   agent-sandbox-test/net     : busybox + bash + the host's node, npm, git and curl, and an nsswitch.conf that reads
#                                /etc/hosts before DNS; the egress tests' box, gateway and upstream stand-ins
# All have a user `sandbox` (uid 1000) whose home is /home/sandbox. Rebuilt when missing, when built by an
# older version of this script (label below), or with --force.
set -euo pipefail
force="${1:-}"
IMAGE_VERSION=2
# The net image has its own version, so a change to it does not rebuild the others.
NET_IMAGE_VERSION=4
need() {
  [ "$force" = "--force" ] && return 0
  local have want="${2:-$IMAGE_VERSION}"
  have=$(docker image inspect --format '{{ index .Config.Labels "dev.agent-sandbox.test-image-version" }}' "$1" 2>/dev/null) || return 0
  [ "$have" != "$want" ]
}
label="LABEL dev.agent-sandbox.test-image-version=$IMAGE_VERSION"

# The image has no libc of its own for busybox, so it must be the static build.
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  echo "[images] installing Debian's busybox-static" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2
fi
# curl for the egress tests' box; openssl makes their test CA on the host.
for pkg in curl openssl; do
  if ! command -v "$pkg" >/dev/null 2>&1; then
    echo "[images] installing Debian's $pkg" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2
  fi
done

base_rootfs() {
  local root="$1"
  mkdir -p "$root"/{bin,etc,tmp,home/sandbox,workspace,proc,sys,dev,usr/bin}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\nsandbox:x:1000:\n' > "$root/etc/group"
  chmod 1777 "$root/tmp"
  chown 1000:1000 "$root/home/sandbox" "$root/workspace"
}

copy_with_libs() {
  local root="$1" bin="$2"
  mkdir -p "$root$(dirname "$bin")"
  cp -L "$bin" "$root$bin"
  ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

if need agent-sandbox-test/busybox; then
  tmp=$(mktemp -d)
  base_rootfs "$tmp"
  tar -C "$tmp" -c . | docker import -c "$label" -c 'USER sandbox' -c 'WORKDIR /workspace' -c 'ENV HOME=/home/sandbox PATH=/usr/local/bin:/usr/bin:/bin' - agent-sandbox-test/busybox >/dev/null
  rm -rf "$tmp"
  echo "[images] built agent-sandbox-test/busybox" >&2
fi

if need agent-sandbox-test/node; then
  tmp=$(mktemp -d)
  base_rootfs "$tmp"
  copy_with_libs "$tmp" "$(readlink -f "$(command -v node)")"
  [ -e "$tmp/usr/bin/node" ] || ln -s "$(readlink -f "$(command -v node)")" "$tmp/usr/bin/node"
  copy_with_libs "$tmp" /usr/bin/git
  copy_with_libs "$tmp" /bin/bash
  copy_with_libs "$tmp" /usr/bin/find
  mkdir -p "$tmp/usr/local/bin"
  cp "$(readlink -f "$(command -v node)")" "$tmp/usr/local/bin/node-setuid"
  chown 0:0 "$tmp/usr/local/bin/node-setuid"; chmod 4755 "$tmp/usr/local/bin/node-setuid"
  rm -f "$tmp/bin/sh"; ln -s bash "$tmp/bin/sh"
  # git's helpers (git-remote-*, etc.) live in git-core; copy the directory as is.
  mkdir -p "$tmp/usr/lib/git-core" "$tmp/usr/share"
  cp -a /usr/lib/git-core/. "$tmp/usr/lib/git-core/"
  [ -d /usr/share/git-core ] && cp -a /usr/share/git-core "$tmp/usr/share/"
  [ -d /usr/share/terminfo ] && cp -a /usr/share/terminfo "$tmp/usr/share/"
  [ -d /lib/terminfo ] && { mkdir -p "$tmp/lib"; cp -a /lib/terminfo "$tmp/lib/"; }
  printf 'root:x:0:0:root:/root:/bin/bash\nsandbox:x:1000:1000:sandbox:/home/sandbox:/bin/bash\n' > "$tmp/etc/passwd"
  tar -C "$tmp" -c . | docker import -c "$label" -c 'USER sandbox' -c 'WORKDIR /workspace' -c 'ENV HOME=/home/sandbox PATH=/usr/local/bin:/usr/bin:/bin TERM=xterm-256color' - agent-sandbox-test/node >/dev/null
  rm -rf "$tmp"
  echo "[images] built agent-sandbox-test/node" >&2
fi

if need agent-sandbox-test/net "$NET_IMAGE_VERSION"; then
  tmp=$(mktemp -d)
  base_rootfs "$tmp"
  copy_with_libs "$tmp" "$(readlink -f "$(command -v node)")"
  [ -e "$tmp/usr/bin/node" ] || ln -s "$(readlink -f "$(command -v node)")" "$tmp/usr/bin/node"
  copy_with_libs "$tmp" /usr/bin/git
  copy_with_libs "$tmp" /bin/bash
  copy_with_libs "$tmp" "$(readlink -f "$(command -v curl)")"
  npm_cli=$(readlink -f "$(command -v npm)")
  npm_dir=$(dirname "$(dirname "$npm_cli")")
  mkdir -p "$tmp$(dirname "$npm_dir")"
  cp -a "$npm_dir" "$tmp$npm_dir"
  ln -sf "$npm_cli" "$tmp/usr/bin/npm"
  # npm starts with "#!/usr/bin/env node".
  [ -e "$tmp/usr/bin/env" ] || ln -s /bin/busybox "$tmp/usr/bin/env"
  [ -e "$tmp/usr/bin/curl" ] || ln -s "$(readlink -f "$(command -v curl)")" "$tmp/usr/bin/curl"
  rm -f "$tmp/bin/sh"; ln -s bash "$tmp/bin/sh"
  mkdir -p "$tmp/usr/lib/git-core" "$tmp/usr/share"
  cp -a /usr/lib/git-core/. "$tmp/usr/lib/git-core/"
  # git's https transport links its own libcurl flavour (Debian: gnutls).
  copy_with_libs "$tmp" /usr/lib/git-core/git-remote-http
  [ -d /usr/share/git-core ] && cp -a /usr/share/git-core "$tmp/usr/share/"
  # glibc without an nsswitch.conf asks DNS first and stops at its "no such name"; read /etc/hosts first.
  printf 'hosts: files dns\n' > "$tmp/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/root:/bin/bash\nsandbox:x:1000:1000:sandbox:/home/sandbox:/bin/bash\n' > "$tmp/etc/passwd"
  tar -C "$tmp" -c . | docker import -c "LABEL dev.agent-sandbox.test-image-version=$NET_IMAGE_VERSION" -c 'USER sandbox' -c 'WORKDIR /workspace' -c 'ENV HOME=/home/sandbox PATH=/usr/local/bin:/usr/bin:/bin TERM=xterm-256color' - agent-sandbox-test/net >/dev/null
  rm -rf "$tmp"
  echo "[images] built agent-sandbox-test/net" >&2
fi

# agent-sandbox-test/claude : the net image + the real Claude Code CLI (npm @anthropic-ai/claude-code, its native
#                             linux-x64 binary as /usr/local/bin/claude, with the libraries it links), for the
#                             end-to-end agent tests. About 370 MB, fetched from the npm registry once per machine:
#                             the binary is kept in ~/.cache/agent-sandbox-test-images (a second engine, as the
#                             security tier's fault tests start, gets a copy without a download) and npm's own cache
#                             is a throw-away directory, so ~/.npm does not grow by it.
CLAUDE_CODE_VERSION=2.1.328
# Rebuilt when the CLI's version, the net image under it or this recipe (the last number) changes.
CLAUDE_IMAGE_VERSION="claude-$CLAUDE_CODE_VERSION-net$NET_IMAGE_VERSION-1"
if need agent-sandbox-test/claude "$CLAUDE_IMAGE_VERSION"; then
  # A failed step (set -e) leaves no half-made download, copy or container behind.
  tmp="" container=""
  trap 'rm -rf "$tmp"; [ -z "$container" ] || docker rm -f "$container" >/dev/null 2>&1' EXIT
  cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/agent-sandbox-test-images/claude-code-$CLAUDE_CODE_VERSION"
  if [ ! -x "$cache_dir/claude" ] || [ "$force" = "--force" ]; then
    tmp=$(mktemp -d)
    echo "[images] downloading @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION from the npm registry (~370 MB, once per machine)" >&2
    # --ignore-scripts: its postinstall only copies the platform binary over a stub; the binary is taken directly.
    npm install --prefix "$tmp/pkg" --cache "$tmp/npm-cache" --no-audit --no-fund --no-save --ignore-scripts --no-update-notifier --loglevel=error \
      "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2
    native="$tmp/pkg/node_modules/@anthropic-ai/claude-code-linux-x64/claude"
    if [ ! -x "$native" ]; then
      echo "[images] npm installed no linux-x64 binary of Claude Code (optional package @anthropic-ai/claude-code-linux-x64 missing: is this machine linux-x64 with glibc?)" >&2
      exit 1
    fi
    mkdir -p "$cache_dir"
    cp "$native" "$cache_dir/claude.partial" && mv "$cache_dir/claude.partial" "$cache_dir/claude"
    rm -rf "$tmp"
  fi
  tmp=$(mktemp -d)
  copy_with_libs "$tmp/root" "$cache_dir/claude"
  mkdir -p "$tmp/root/usr/local/bin"
  mv "$tmp/root$cache_dir/claude" "$tmp/root/usr/local/bin/claude"
  # copy_with_libs put the binary under the cache's path: only the directories it made for that are left, empty.
  find "$tmp/root" -depth -type d -empty -delete
  container=$(docker create agent-sandbox-test/net true)
  # docker cp writes as root: the CLI is not writable by the box's user.
  docker cp "$tmp/root/." "$container:/" >/dev/null
  docker commit --change "LABEL dev.agent-sandbox.test-image-version=$CLAUDE_IMAGE_VERSION" "$container" agent-sandbox-test/claude >/dev/null
  docker rm "$container" >/dev/null
  container=""
  rm -rf "$tmp"
  echo "[images] built agent-sandbox-test/claude (Claude Code $CLAUDE_CODE_VERSION)" >&2
fi

# agent-sandbox-test/noshell : an image without a shell (like a Docker Hardened Image's runtime variant): FROM
#                              scratch with one static program compiled here from the C below (/usr/bin/hello:
#                              prints its arguments; `--write FILE TEXT` writes a file; `--sleep N` sleeps),
#                              /etc/passwd and the dirs.
NOSHELL_IMAGE_VERSION=2
if need agent-sandbox-test/noshell "$NOSHELL_IMAGE_VERSION"; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp"/root/{usr/bin,etc,tmp,home/sandbox,workspace}
  cat > "$tmp/hello.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--sleep") == 0) {
    sleep((unsigned) atoi(argv[2]));
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "--write") == 0) {
    FILE *f = fopen(argv[2], "w");
    if (!f) { perror(argv[2]); return 2; }
    fputs(argv[3], f);
    return fclose(f) == 0 ? 0 : 3;
  }
  for (int i = 1; i < argc; i++) printf("%s%s", i > 1 ? " " : "", argv[i]);
  printf("\n");
  return 0;
}
C
  gcc -static -Os -o "$tmp/root/usr/bin/hello" "$tmp/hello.c"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nsandbox:x:1000:1000:sandbox:/home/sandbox:/sbin/nologin\n' > "$tmp/root/etc/passwd"
  printf 'root:x:0:\nsandbox:x:1000:\n' > "$tmp/root/etc/group"
  chmod 1777 "$tmp/root/tmp"
  chown 1000:1000 "$tmp/root/home/sandbox" "$tmp/root/workspace"
  tar -C "$tmp/root" -c . | docker import -c "LABEL dev.agent-sandbox.test-image-version=$NOSHELL_IMAGE_VERSION" -c 'USER sandbox' -c 'WORKDIR /workspace' -c 'ENV HOME=/home/sandbox PATH=/usr/bin' - agent-sandbox-test/noshell >/dev/null
  rm -rf "$tmp"
  echo "[images] built agent-sandbox-test/noshell" >&2
fi
