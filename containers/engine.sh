# Sourced by the image scripts: picks the container engine and sets
#   ENGINE      podman or docker, whichever is present (podman first);
#   LOG_DIR     where the scripts' logs go (runs/images of the checkout);
#   say, die    the scripts' step lines and their one-line errors.
# Where neither is present (a fresh CI machine), Debian's podman is installed
# with apt-get, as root. Podman reads the repository's containers.conf
# through CONTAINERS_CONF: a system containers.conf is neither read nor changed.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_DIR="${IMAGE_LOGS:-$ROOT/runs/images}"
mkdir -p "$LOG_DIR"
say() { echo "[$(basename "$0" .sh)] $*" >&2; }
die() { echo "$(basename "$0" .sh): error: $*" >&2; exit 1; }

# The packages Debian's podman 4.3.1 needs for rootful builds with a network
# (runc: the runtime containers.conf names).
PODMAN_PACKAGES=(podman runc uidmap slirp4netns fuse-overlayfs)

install_podman() {
  local log="$LOG_DIR/podman-install.log"
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    || die "no podman, and no working docker: install podman (apt-get install ${PODMAN_PACKAGES[*]}) or start the Docker daemon"
  say "installing Debian's podman (log: $log)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${PODMAN_PACKAGES[@]}"; } >"$log" 2>&1 \
    || die "apt-get could not install ${PODMAN_PACKAGES[*]}: see $log"
}

if command -v podman >/dev/null && command -v runc >/dev/null; then
  ENGINE=podman
elif ! command -v podman >/dev/null && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  ENGINE=docker
else
  install_podman
  ENGINE=podman
fi
if [ "$ENGINE" = podman ]; then
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/containers/containers.conf}"
fi
