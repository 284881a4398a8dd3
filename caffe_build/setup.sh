#!/usr/bin/env bash
# One-time setup of a checkout: the project venv (.venv), Caffe built from
# source (caffe_build/build_caffe.sh, cached), and pycaffe + the `caffe` tool wired
# into the venv so that neither needs a hand-set PYTHONPATH.
#
#   caffe_build/setup.sh [--cuda]      (what `make setup` runs)
#
# Every step is skipped when already done: a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY_BASE="${PY_BASE:-python3}"
say() { echo "[setup] $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }
# apt-get's, dpkg's and pip's output goes here, and so does build_caffe.sh's.
export QUIET_LOG="${QUIET_LOG:-$ROOT/.setup.log}"
source "$ROOT/caffe_build/quiet.sh"

# ---- venv with the pinned requirements
if [ ! -x "$VENV/bin/python" ]; then
  [ ! -e "$VENV" ] || [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists and is not a venv: move it away"
  say "creating $VENV with $($PY_BASE --version 2>&1)"
  # A fresh Debian has Python without its venv module and headers.
  quiet "$PY_BASE" -m venv "$VENV" \
    || { rm -rf "$VENV"; say "installing python3-venv python3-dev"
         apt_install python3-venv python3-dev && quiet "$PY_BASE" -m venv "$VENV"; } \
    || die "'$PY_BASE -m venv' failed (log: $QUIET_LOG; on Debian it needs the packages python3-venv and python3-dev)"
fi
req_sum=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_sum" ]; then
  say "installing requirements.txt into $VENV"
  quiet "$VENV/bin/python" -m pip install --upgrade pip \
    && quiet "$VENV/bin/python" -m pip install -r "$ROOT/requirements.txt" \
    || die "pip could not install requirements.txt into $VENV (log: $QUIET_LOG)"
  echo "$req_sum" > "$VENV/.requirements.sha256"
fi

# ---- Debian packages beyond Caffe's build: COMMAND PACKAGE WHAT-NEEDS-IT
apt_tool() {
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $2 ($3)"
    apt_install "$2" || die "apt-get could not install $2 (log: $QUIET_LOG)"
  else
    say "warning: $1 is missing (apt-get install $2); $3 needs it"
  fi
}
apt_tool dot graphviz "make diagrams, Caffe's net drawer"
# tests/test_html_report.py renders a report's index.html headless
apt_tool chromium chromium "the report page's rendering test"

# ---- Caffe (cached by its own key)
out=$(PYTHON="$VENV/bin/python" "$ROOT/caffe_build/build_caffe.sh" "$@")
PREFIX=$(sed -n 's/^CAFFE_PREFIX=//p' <<<"$out" | tail -1)
[ -n "$PREFIX" ] && [ -d "$PREFIX/python/caffe" ] || die "build_caffe.sh gave no pycaffe (prefix '$PREFIX')"

# ---- wire it into the venv
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# pycaffe first, then the checkout, so `import caffe`, `import layers` work.
printf '%s\n%s\n' "$PREFIX/python" "$ROOT" > "$site/reid_caffe.pth"
echo "$PREFIX" > "$VENV/caffe-prefix"
# The `caffe` tool embeds Python but knows nothing of the venv: its wrapper
# hands it the venv's packages, pycaffe and the checkout (for layers/).
# CAFFE_PREFIX overrides the build it runs (make check-cuda uses that).
cat > "$VENV/bin/caffe" <<EOF
#!/usr/bin/env bash
prefix="\${CAFFE_PREFIX:-$PREFIX}"
export PYTHONPATH="\$prefix/python:$ROOT:$site\${PYTHONPATH:+:\$PYTHONPATH}"
# glog >= 0.6 prefixes lines with the year, which parse_log.py cannot read.
export GLOG_log_year_in_prefix="\${GLOG_log_year_in_prefix:-0}"
exec "\$prefix/bin/caffe" "\$@"
EOF
chmod +x "$VENV/bin/caffe"

version=$("$VENV/bin/python" -c 'import caffe; print(caffe.__version__)' 2>>"$QUIET_LOG") \
  || die "pycaffe does not import from $VENV (log: $QUIET_LOG)"
say "ready: $VENV with pycaffe $version (Caffe's configuration: $PREFIX/build-summary.txt)"
