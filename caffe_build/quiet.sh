# Sourced by setup.sh and build_caffe.sh: a step's own output (apt-get,
# dpkg, pip) goes to one log, the terminal gets the step's one-line name, and
# a failure names the log.
#
#   QUIET_LOG=<file>    the log (setup.sh passes its own to build_caffe.sh)
#   quiet CMD ARGS...   runs CMD with stdout and stderr appended to the log
#   apt_install PKG...  installs Debian packages quietly, as root where
#                       apt-get is (else returns 1); refreshes the package
#                       lists only when the first try fails
quiet() {
  mkdir -p "$(dirname "$QUIET_LOG")"
  echo "== $(date -u +%FT%TZ) $*" >>"$QUIET_LOG"
  "$@" >>"$QUIET_LOG" 2>&1
}

apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get install -y -qq --no-install-recommends "$@" \
    || { quiet apt-get update -qq && quiet apt-get install -y -qq --no-install-recommends "$@"; }
}
