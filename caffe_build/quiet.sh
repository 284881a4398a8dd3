# Sourced by setup.sh and build_caffe.sh: a step's own output (apt-get,
# dpkg, pip) goes to one log, the terminal gets the step's one-line name, and
# a failure names the log.
#
#   QUIET_LOG=<file>   the log (setup.sh passes its own to build_caffe.sh)
#   quiet CMD ARGS...  runs CMD with stdout and stderr appended to the log
quiet() {
  mkdir -p "$(dirname "$QUIET_LOG")"
  echo "== $(date -u +%FT%TZ) $*" >>"$QUIET_LOG"
  "$@" >>"$QUIET_LOG" 2>&1
}
