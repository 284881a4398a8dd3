#!/usr/bin/env bash
# The GPU kit (`make gpu-kit`): one compressed archive holding all that a bare
# CUDA 13 machine with Python 3.12 lacks to run this project on its GPU
# (docs/gpu.md): the CUDA variant of Caffe for sm_90 built for Python 3.12
# without OpenCV, LevelDB and HDF5, the libraries it links beyond glibc,
# libstdc++, zlib and CUDA's own, and the Python packages that machine lacks.
#
#   caffe_build/gpu_kit.sh [KIT_DIR]      (default: gpu-kit/ in the checkout)
#
# The machine brings Python 3.12 with NumPy, and cuBLAS, cuRAND and the CUDA
# runtime as PyPI wheels; tools/gpu_check.sh unpacks the kit there and points
# the loader at them. Boost.Python ties _caffe.so to one Python version, and
# Debian 12's is for 3.11: a Boost.Python 1.74 for 3.12 is compiled from
# Debian's own boost1.74 source, against Debian's installed Boost headers.
#
# Environment: PYTHON312 (an interpreter 3.12 with its headers; default: the
# first python3.12 found on PATH or under ~/.pyenv), CAFFE_CACHE as for
# build_caffe.sh, DEBIAN_MIRROR. Build chatter goes to the log that errors name.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAFFE_CACHE="${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reid-caffe}"
KIT_DIR="${1:-$ROOT/gpu-kit}"
WORK="$CAFFE_CACHE/gpu-kit"
LOG="$WORK/gpu-kit.log"
ARCHIVE=reid-gpu-kit.tar.xz
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BOOST_POOL="$MIRROR/pool/main/b/boost1.74"
BOOST_ORIG="boost1.74_1.74.0+ds1.orig.tar.xz"
BOOST_ORIG_SHA256=192f5df504d282cb81288f88232d8af45b64a9ab531e1c7cf8ae955f16f6bb28
BOOST_DEB="boost1.74_1.74.0+ds1-21.debian.tar.xz"
BOOST_DEB_SHA256=6549dab4824c781e0510272ac352f9e0367d4d47c16c94989e5ec7447fd8f0d8
# Debian's patches to Boost.Python's sources for newer Pythons (its installed
# headers already carry them).
BOOST_PATCHES=(python3.10-file python3.10-pep-620 python-enum)
# Python packages the machine lacks (its own list: docs/gpu.md), as wheels for
# CPython 3.12 on manylinux x86-64.
KIT_WHEELS=(lmdb==3.0.0)
# Left to the machine: glibc's libraries, libstdc++, libgcc_s, zlib, liblzma,
# the driver and the CUDA libraries (their wheels there), Python itself; and
# libcaffe, which the kit holds in caffe/lib.
SYSTEM_LIBS='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\+\+|libgcc_s|libz|liblzma|libcuda|libcudart|libcublas|libcublasLt|libcurand|libnccl|libpython3\.[0-9]+|libcaffe)\.so'
say() { echo "[gpu_kit] $*" >&2; }
die() { echo "gpu_kit: error: $*" >&2; exit 1; }

mkdir -p "$WORK"
: > "$LOG"
start=$(date +%s)

# ---- the kit folder is ours or new
if [ -e "$KIT_DIR" ] && [ ! -f "$KIT_DIR/manifest.json" ]; then
  [ -z "$(ls -A "$KIT_DIR" 2>/dev/null)" ] || die "$KIT_DIR exists and is not a GPU kit (no manifest.json): move it away or name another folder"
fi

# ---- Python 3.12 with headers, and a venv of it with the pinned NumPy
find_python312() {
  local c
  for c in "${PYTHON312:-}" "$(command -v python3.12 2>/dev/null || true)" "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    "$c" -c 'import sys, sysconfig, os; sys.exit(not (sys.version_info[:2] == (3, 12) and os.path.isfile(os.path.join(sysconfig.get_config_var("INCLUDEPY"), "Python.h"))))' 2>/dev/null \
      && { echo "$c"; return; }
  done
  return 1
}
PY312=$(find_python312) || die "no Python 3.12 with its headers (Python.h) found: set PYTHON312=/path/to/python3.12"
numpy_pin=$(grep -E '^numpy==' "$ROOT/requirements.txt" | cut -d' ' -f1)
VENV="$WORK/py312-venv"
if [ "$("$VENV/bin/python" -c 'import numpy; print("numpy==" + numpy.__version__)' 2>/dev/null)" != "$numpy_pin" ]; then
  say "Python 3.12 venv with $numpy_pin ($PY312)"
  rm -rf "$VENV"
  { "$PY312" -m venv "$VENV" && "$VENV/bin/python" -m pip install -q "$numpy_pin"; } >>"$LOG" 2>&1 \
    || die "could not make the Python 3.12 venv $VENV with $numpy_pin, log: $LOG"
fi
PY_INC=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("INCLUDEPY"))')

# ---- Boost.Python 1.74 for Python 3.12
BP_DIR="$WORK/boost-python312-1.74.0"
BP_LIB="$BP_DIR/libboost_python312.so.1.74.0"
fetch() {  # $1 = file name in the pool, $2 = sha256
  local f="$CAFFE_CACHE/downloads/$1"
  mkdir -p "$CAFFE_CACHE/downloads"
  if [ ! -s "$f" ]; then
    curl -fsSL --connect-timeout 10 --max-time 600 -o "$f.part" "$BOOST_POOL/${1//+/%2b}" >>"$LOG" 2>&1 \
      || { rm -f "$f.part"; die "could not download $BOOST_POOL/$1"; }
    mv "$f.part" "$f"
  fi
  echo "$2  $f" | sha256sum -c --quiet - >/dev/null 2>&1 \
    || { rm -f "$f"; die "$f does not match its pinned sha256 $2"; }
  echo "$f"
}
if [ ! -f "$BP_DIR/.complete" ]; then
  say "Boost.Python 1.74 for Python 3.12 from Debian's boost1.74 source"
  orig=$(fetch "$BOOST_ORIG" "$BOOST_ORIG_SHA256")
  deb=$(fetch "$BOOST_DEB" "$BOOST_DEB_SHA256")
  src="$WORK/boost-src"
  rm -rf "$src" "$BP_DIR"; mkdir -p "$src" "$BP_DIR/obj"
  tar xJf "$orig" -C "$src" boost/libs/python/src boost/libs/python/include
  tar xJf "$deb" -C "$src" debian/patches
  for p in "${BOOST_PATCHES[@]}"; do
    patch -d "$src/boost" -p1 --forward --quiet < "$src/debian/patches/$p.patch" >>"$LOG" 2>&1 \
      || die "Debian's patch $p does not apply to Boost.Python, log: $LOG"
  done
  # Its headers must be the installed ones (libboost-python1.74-dev), or the
  # library and Caffe would see two different Boost.Pythons.
  diff -r "$src/boost/libs/python/include/boost/python" /usr/include/boost/python >>"$LOG" 2>&1 \
    || die "the installed Boost.Python headers (/usr/include/boost/python) are not boost1.74 1.74.0+ds1-21's, log: $LOG"
  (cd "$src/boost/libs/python/src" && for f in *.cpp converter/*.cpp object/*.cpp; do
     echo "$f"; g++ -O2 -fPIC -DNDEBUG -DBOOST_PYTHON_SOURCE -DBOOST_PYTHON_DYN_LINK -DBOOST_ALL_NO_LIB \
       -I"$PY_INC" -c "$f" -o "$BP_DIR/obj/$(echo "$f" | tr / _).o" || exit 1
   done) >>"$LOG" 2>&1 || die "Boost.Python did not compile for Python 3.12, log: $LOG"
  g++ -shared -Wl,-soname,libboost_python312.so.1.74.0 -o "$BP_LIB" "$BP_DIR"/obj/*.o >>"$LOG" 2>&1 \
    || die "Boost.Python did not link, log: $LOG"
  rm -rf "$src" "$BP_DIR/obj"
  touch "$BP_DIR/.complete"
fi

# ---- Caffe's CUDA variant (check_cuda.sh's toolchain, sm_90), cached by key
say "Caffe, CUDA variant for sm_90 and Python 3.12 (cached; a first build takes 10-60 min on 2 cores)"
out=$(PYTHON="$VENV/bin/python" CAFFE_WITHOUT="opencv leveldb hdf5" BOOST_PYTHON_LIBRARY="$BP_LIB" \
      CUDA_ARCH_BIN=90 bash "$ROOT/caffe_build/check_cuda.sh" --build-only 2>>"$LOG") \
  || die "the CUDA build failed, log: $LOG"
PREFIX=$(sed -n 's/^CAFFE_PREFIX=//p' <<<"$out" | tail -1)
[ -f "$PREFIX/.complete" ] || die "the CUDA build gave no prefix, log: $LOG"

# ---- up to date?
KEY=$( { cat "${BASH_SOURCE[0]}"; echo "$PREFIX"; cat "$PREFIX/.complete"; sha256sum "$BP_LIB"; } | sha256sum | cut -c1-16)
if [ -f "$KIT_DIR/$ARCHIVE" ] && grep -q "\"key\": \"$KEY\"" "$KIT_DIR/manifest.json" 2>/dev/null; then
  say "up to date: $KIT_DIR/$ARCHIVE ($(du -h "$KIT_DIR/$ARCHIVE" | cut -f1))"
  exit 0
fi
command -v patchelf >/dev/null || {
  [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends patchelf >>"$LOG" 2>&1
} || die "patchelf is missing (apt-get install patchelf)"

# ---- the kit's tree: caffe/ (the prefix's runtime part), lib/, site/
# (a folder of this run's own: two checkouts may make their kits at once)
STAGE=$(mktemp -d "$WORK/stage.XXXXXX")
trap 'rm -rf "$STAGE" "$STAGE.tar.xz" "$STAGE.json"' EXIT
mkdir -p "$STAGE/caffe/lib" "$STAGE/lib" "$STAGE/site"
cp -a "$PREFIX/python" "$PREFIX/models" "$PREFIX/extra" "$PREFIX/build-summary.txt" "$PREFIX/.complete" "$STAGE/caffe/"
cp -a "$PREFIX"/lib/libcaffe.so* "$STAGE/caffe/lib/"
find "$STAGE/caffe" -name __pycache__ -prune -exec rm -rf {} +
cp "$BP_LIB" "$STAGE/lib/"
libcaffe=$(readlink -f "$STAGE/caffe/lib/libcaffe.so")
pycaffe="$STAGE/caffe/python/caffe/_caffe.so"
# What they link, less what the machine has: every library ldd resolves here.
ldd "$libcaffe" "$pycaffe" "$BP_LIB" 2>>"$LOG" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u \
  | while read -r soname path; do
      echo "$soname" | grep -qE "$SYSTEM_LIBS" && continue
      [ -e "$STAGE/lib/$soname" ] || cp -L "$path" "$STAGE/lib/$soname"
    done
missing=$(ldd "$libcaffe" "$pycaffe" 2>/dev/null | awk '/not found/ {print $1}' | { grep -vE "$SYSTEM_LIBS" || true; } | sort -u | tr '\n' ' ')
[ -z "$missing" ] || die "libraries Caffe links are not found here: $missing"
strip --strip-unneeded "$libcaffe" "$pycaffe" "$STAGE"/lib/*.so* 2>>"$LOG" || true
# Python's symbols come from the interpreter that imports pycaffe (the
# machine's may be a static one without libpython3.12.so); the kit's own
# libraries find each other through lib/.
for f in "$libcaffe" "$pycaffe"; do
  for n in $(readelf -d "$f" | sed -n 's/.*NEEDED.*\[\(libpython3[^]]*\)\]/\1/p'); do patchelf --remove-needed "$n" "$f"; done
done
patchelf --set-rpath '$ORIGIN:$ORIGIN/../../lib' "$libcaffe"
patchelf --set-rpath '$ORIGIN/../../lib:$ORIGIN/../../../lib' "$pycaffe"
for f in "$STAGE"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$f"; done
say "the Python packages the machine lacks: ${KIT_WHEELS[*]}"
"$VENV/bin/python" -m pip install -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_28_x86_64 --target "$STAGE/site" "${KIT_WHEELS[@]}" >>"$LOG" 2>&1 \
  || die "pip could not fetch ${KIT_WHEELS[*]}, log: $LOG"

# ---- compress; the manifest says what is inside and what the machine must have
say "compressing (xz -9)"
tmp="$STAGE.tar.xz"
XZ_OPT="-9 -T2" tar -C "$STAGE" -cJf "$tmp" --owner=0 --group=0 --sort=name caffe lib site
unpacked=$(du -sb "$STAGE" | cut -f1)
"$VENV/bin/python" - "$STAGE" "$KEY" "$PREFIX" "$unpacked" "$(stat -c %s "$tmp")" "$STAGE.json" <<'EOF'
import json, os, subprocess, sys
stage, key, prefix, unpacked, packed, out = sys.argv[1:]
def needed(path):
    text = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return sorted(l.split("[")[1].rstrip("]") for l in text.splitlines() if "(NEEDED)" in l)
libcaffe = os.path.realpath(os.path.join(stage, "caffe/lib/libcaffe.so"))
kit_libs = sorted(os.listdir(os.path.join(stage, "lib")))
linked = set(needed(libcaffe))
for lib in kit_libs:
    linked.update(needed(os.path.join(stage, "lib", lib)))
doc = {"key": key, "archive": "reid-gpu-kit.tar.xz", "caffe_build": os.path.basename(prefix),
       "python": "3.12", "cuda_arch": "sm_90", "bytes_packed": int(packed), "bytes_unpacked": int(unpacked),
       "kit_libraries": kit_libs,
       "from_the_machine": sorted(l for l in linked if l not in kit_libs),
       "site_packages": sorted(d for d in os.listdir(os.path.join(stage, "site")) if not d.endswith(".dist-info"))}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
EOF
size=$(stat -c %s "$tmp")
[ "$size" -le $((64 * 1024 * 1024)) ] || die "the kit would be $((size / 1048576)) MiB, over the 64 MiB that may travel"
mkdir -p "$KIT_DIR"
mv "$tmp" "$KIT_DIR/$ARCHIVE"
mv "$STAGE.json" "$KIT_DIR/manifest.json"
say "$KIT_DIR/$ARCHIVE: $((size / 1024)) KiB packed, $((unpacked / 1024)) KiB unpacked, in $(( $(date +%s) - start ))s"
