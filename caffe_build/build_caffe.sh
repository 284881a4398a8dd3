#!/usr/bin/env bash
# Build BVLC Caffe (libcaffe, pycaffe, the `caffe` tool) from source, once.
#
#   caffe_build/build_caffe.sh [--cuda]
#
# Source, first that works (docs/caffe.md, "Source"):
#   1. CAFFE_SRC=/path/to/tree          a tree the user already has;
#   2. the BVLC GitHub tarball of commit $BVLC_COMMIT;
#   3. Debian's source package caffe $DEBIAN_VERSION (bullseye), fetched with
#      `apt-get source` against a private apt state directory.
# Both downloads are pristine BVLC trees; each is checked against a pinned
# SHA-256 of its file manifest (see verify_manifest), the Debian tarball also
# against its own pinned SHA-256.
#
# The project's patches (caffe_build/caffe_patches/series) are applied, CMake builds
# with BUILD_python=ON, BUILD_python_layer=ON and OpenBLAS, and the result is
# installed into $CAFFE_CACHE/<variant>-<key>, key = hash(source manifest,
# patches, flags, Python + NumPy). A second run with the same key does nothing.
#
# Environment:
#   PYTHON            interpreter whose headers and NumPy _caffe.so is built
#                     against (default: python3); must already have numpy.
#   CAFFE_CACHE       cache root (default: ${XDG_CACHE_HOME:-~/.cache}/reid-caffe)
#   CAFFE_SRC         user source tree (optional)
#   CUDA_ARCH_BIN     CUDA variant's architectures (default "75 80 86 89 90")
#   CUDA_ROOT         toolkit root for the CUDA variant (default /usr/local/cuda)
#   JOBS              parallel compile jobs (default: nproc)
#   CAFFE_OFFLINE=1   skip the GitHub attempt (Debian is still tried)
#   CAFFE_GITHUB_URL, CAFFE_DEBIAN_MIRROR   other download locations
#   CAFFE_NO_APT_INSTALL=1   report missing apt packages instead of installing
#   CAFFE_EXTRA_APT_DEPS     more apt packages to require
#   CAFFE_WITHOUT     optional parts left out, of: opencv leveldb hdf5 (the GPU
#                     kit leaves all three out: the pipeline feeds Caffe raw
#                     datums from LMDB and Python layers)
#   BOOST_PYTHON_LIBRARY   a Boost.Python built for $PYTHON's version, where
#                     the system's Boost.Python is for another (the GPU kit's)
#
# On success the last line on stdout is `CAFFE_PREFIX=<install prefix>`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PATCH_DIR="$HERE/caffe_patches"

BVLC_COMMIT=9b891540183ddc834a02b2bd81b31afae71b2153
GITHUB_URL="${CAFFE_GITHUB_URL:-https://codeload.github.com/BVLC/caffe/tar.gz/$BVLC_COMMIT}"
DEBIAN_VERSION="1.0.0+git20180821.99bd997-8"
DEBIAN_SUITE=bullseye
DEBIAN_MIRROR="${CAFFE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_ORIG="caffe_1.0.0+git20180821.99bd997.orig.tar.gz"
DEBIAN_ORIG_SHA256=e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c
# SHA-256 of the sorted `sha256sum` manifest of the tree without README.md and
# scripts/cpp_lint.py, the only files in which 9b89154 and 99bd997 differ
# (compare the two commits on GitHub): one pin that both downloads must meet.
# Bump to force a rebuild when the build recipe itself changes.
BUILD_RECIPE=2
BVLC_MANIFEST_SHA256=b6d18d8cfcb75eb649eeab184377c61a8b51572125a68071f837b558049df390
# Optional extra pin on the GitHub tarball's own bytes (GitHub's gzip output
# has changed before, so the manifest is the primary check).
GITHUB_TARBALL_SHA256="${GITHUB_TARBALL_SHA256:-}"

APT_BUILD_DEPS=(build-essential cmake patch curl ca-certificates
  libboost-system-dev libboost-thread-dev libboost-filesystem-dev
  libboost-python-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev
  libgflags-dev libhdf5-dev libleveldb-dev libsnappy-dev liblmdb-dev
  libopenblas-dev libopencv-dev ${CAFFE_EXTRA_APT_DEPS:-})

CUDA=0
for arg in "$@"; do
  case "$arg" in
    --cuda) CUDA=1 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "build_caffe: unknown argument '$arg' (expected --cuda)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
CAFFE_CACHE="${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reid-caffe}"
JOBS="${JOBS:-$(nproc)}"
CUDA_ARCH_BIN="${CUDA_ARCH_BIN:-75 80 86 89 90}"
CUDA_ROOT="${CUDA_ROOT:-/usr/local/cuda}"

say() { echo "[build_caffe] $*" >&2; }
die() { echo "build_caffe: error: $*" >&2; exit 1; }
QUIET_LOG="${QUIET_LOG:-$CAFFE_CACHE/build_caffe.log}"
source "$HERE/quiet.sh"

# ---------------------------------------------------------------- apt deps
missing_apt_packages() {
  local p
  for p in "${APT_BUILD_DEPS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

ensure_apt_deps() {
  command -v dpkg-query >/dev/null || { say "no dpkg: not checking apt build dependencies"; return; }
  local missing
  missing=$(missing_apt_packages | paste -sd " ")
  [ -z "${missing// /}" ] && return
  if [ "$(id -u)" = 0 ] && [ "${CAFFE_NO_APT_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null; then
    say "installing $(wc -w <<<"$missing") apt build dependencies (log: $QUIET_LOG)"
    # shellcheck disable=SC2086
    apt_install $missing \
      || die "apt-get could not install: $missing (log: $QUIET_LOG)"
    missing=$(missing_apt_packages | paste -sd " ")
    [ -z "${missing// /}" ] || die "apt build dependencies still missing: $missing"
  else
    die "missing apt build dependencies: $missing (install them: apt-get install $missing)"
  fi
}

# ---------------------------------------------------------------- source
manifest_sha256() {  # $1 = tree; prints the pinned-manifest hash of it
  (cd "$1" && find . -type f ! -path './.git/*' -printf '%P\n' \
     | grep -vxE 'README\.md|scripts/cpp_lint\.py' | LC_ALL=C sort \
     | while IFS= read -r f; do sha256sum "$f"; done | sha256sum | cut -d' ' -f1)
}

verify_manifest() {  # $1 = tree, $2 = its name for messages
  local got
  got=$(manifest_sha256 "$1")
  [ "$got" = "$BVLC_MANIFEST_SHA256" ] \
    || die "$2 does not match BVLC commit $BVLC_COMMIT (manifest sha256 $got, expected $BVLC_MANIFEST_SHA256)"
}

fetch_github() {  # $1 = destination tree; returns 1 when unreachable
  local tgz="$CAFFE_CACHE/downloads/caffe-$BVLC_COMMIT.tar.gz" tmp
  mkdir -p "$CAFFE_CACHE/downloads"
  if [ ! -s "$tgz" ]; then
    [ "${CAFFE_OFFLINE:-0}" = 1 ] && return 1
    command -v curl >/dev/null || return 1
    curl -fsSL --connect-timeout 10 --max-time 300 -o "$tgz.part" "$GITHUB_URL" 2>/dev/null \
      || { rm -f "$tgz.part"; return 1; }
    mv "$tgz.part" "$tgz"
  fi
  if [ -n "$GITHUB_TARBALL_SHA256" ]; then
    echo "$GITHUB_TARBALL_SHA256  $tgz" | sha256sum -c --quiet - \
      || { rm -f "$tgz"; die "GitHub tarball $tgz does not match pinned sha256 $GITHUB_TARBALL_SHA256"; }
  fi
  tmp="$1.part"; rm -rf "$tmp"; mkdir -p "$tmp"
  tar xzf "$tgz" -C "$tmp" --strip-components=1
  verify_manifest "$tmp" "GitHub tarball $tgz"
  mv "$tmp" "$1"
}

fetch_debian() {  # $1 = destination tree; returns 1 when unreachable
  local apt="$CAFFE_CACHE/apt" dl="$CAFFE_CACHE/downloads" tmp
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d" "$apt/preferences.d" "$dl"
  if [ ! -s "$dl/$DEBIAN_ORIG" ]; then
    command -v apt-get >/dev/null || return 1
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || return 1
    echo "deb-src [signed-by=$keyring] $DEBIAN_MIRROR $DEBIAN_SUITE main" > "$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
      -o "Dir::Etc::SourceParts=$apt/sources.list.d"
      -o "Dir::Etc::Preferences=$apt/preferences"
      -o "Dir::Etc::PreferencesParts=$apt/preferences.d"
      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
      -o "APT::Sandbox::User=root" -o "Acquire::Retries=2")
    quiet apt-get "${opts[@]}" -qq update || return 1
    (cd "$dl" && quiet apt-get "${opts[@]}" -qq source --download-only "caffe=$DEBIAN_VERSION") || return 1
  fi
  echo "$DEBIAN_ORIG_SHA256  $dl/$DEBIAN_ORIG" | sha256sum -c --quiet - \
    || { rm -f "$dl/$DEBIAN_ORIG"; die "$dl/$DEBIAN_ORIG does not match pinned sha256 $DEBIAN_ORIG_SHA256"; }
  # The orig tarball is the pristine BVLC tree; Debian's own patches are not
  # used, ours replace them so that one patch set serves both sources.
  tmp="$1.part"; rm -rf "$tmp"; mkdir -p "$tmp"
  tar xzf "$dl/$DEBIAN_ORIG" -C "$tmp"
  verify_manifest "$tmp" "Debian source $dl/$DEBIAN_ORIG"
  mv "$tmp" "$1"
}

resolve_source() {  # sets SRC and SRC_ID
  if [ -n "${CAFFE_SRC:-}" ]; then
    [ -f "$CAFFE_SRC/CMakeLists.txt" ] && [ -d "$CAFFE_SRC/src/caffe" ] \
      || die "CAFFE_SRC=$CAFFE_SRC is not a Caffe source tree (no CMakeLists.txt or src/caffe)"
    SRC="$(cd "$CAFFE_SRC" && pwd)"
    SRC_ID="user:$(manifest_sha256 "$SRC")"
    say "source: user tree CAFFE_SRC=$SRC"
    return
  fi
  local gh="$CAFFE_CACHE/src/github-$BVLC_COMMIT" deb="$CAFFE_CACHE/src/debian-$DEBIAN_VERSION"
  if [ -d "$gh" ] || fetch_github "$gh"; then
    SRC="$gh"; SRC_ID="bvlc:$BVLC_MANIFEST_SHA256"
    say "source: BVLC GitHub tarball of commit $BVLC_COMMIT ($GITHUB_URL)"
    return
  fi
  say "GitHub unreachable ($GITHUB_URL); trying Debian's source package"
  if [ -d "$deb" ] || fetch_debian "$deb"; then
    SRC="$deb"; SRC_ID="bvlc:$BVLC_MANIFEST_SHA256"
    say "source: Debian source package caffe $DEBIAN_VERSION ($DEBIAN_SUITE, $DEBIAN_MIRROR)"
    return
  fi
  die "no Caffe source: GitHub tarball $GITHUB_URL unreachable and Debian source package caffe=$DEBIAN_VERSION ($DEBIAN_SUITE) could not be fetched; set CAFFE_SRC to a BVLC tree"
}

# ---------------------------------------------------------------- flags
python_flags() {  # sets PY_* from $PYTHON
  local out
  out=$("$PYTHON" - <<'EOF'
import sysconfig, sys
import numpy
v = sysconfig.get_config_var
print(sys.executable)
print(v("INCLUDEPY"))
print(v("LIBDIR") + "/" + v("LDLIBRARY"))
print("%d.%d.%d" % sys.version_info[:3])
print(numpy.__version__)
EOF
) || die "$PYTHON cannot import numpy: create the venv first (make setup does)"
  { read -r PY_EXE; read -r PY_INC; read -r PY_LIB; read -r PY_VER; read -r PY_NUMPY; } <<<"$out"
}

cuda_flags() {
  [ -x "$CUDA_ROOT/bin/nvcc" ] || die "CUDA variant: no nvcc under CUDA_ROOT=$CUDA_ROOT"
  CMAKE_FLAGS+=(-DCPU_ONLY=OFF -DUSE_CUDNN=OFF -DCUDA_ARCH_NAME=Manual
    "-DCUDA_ARCH_BIN=$CUDA_ARCH_BIN" "-DCUDA_ARCH_PTX="
    "-DCUDA_TOOLKIT_ROOT_DIR=$CUDA_ROOT")
  # Multi-GPU training through pycaffe (training/multi_gpu.py) needs NCCL.
  # Any one of the places is enough (ls over all three fails where one is empty).
  local where
  for where in /usr/lib/x86_64-linux-gnu /usr/lib "$CUDA_ROOT/lib64"; do
    if compgen -G "$where/libnccl.so*" >/dev/null; then CMAKE_FLAGS+=(-DUSE_NCCL=ON); break; fi
  done
}

# ---------------------------------------------------------------- extras
install_extras() {  # $1 = source tree, $2 = prefix
  # Beside pycaffe, the parts of the tree the project reads: the canonical
  # model definitions (with their weight URLs and SHA1s), the log parser and
  # the net drawer.
  local m
  for m in bvlc_googlenet bvlc_reference_caffenet bvlc_alexnet; do
    mkdir -p "$2/models/$m"
    cp "$1/models/$m/"*.prototxt "$1/models/$m/readme.md" "$2/models/$m/"
  done
  mkdir -p "$2/extra"
  cp "$1/tools/extra/parse_log.py" "$1/tools/extra/extract_seconds.py" "$1/python/draw_net.py" "$2/extra/"
}

# ---------------------------------------------------------------- main
mkdir -p "$CAFFE_CACHE"
python_flags
use() {  # $1 = optional part; prints ON unless CAFFE_WITHOUT names it
  case " ${CAFFE_WITHOUT:-} " in *" $1 "*) echo OFF ;; *) echo ON ;; esac
}
for part in ${CAFFE_WITHOUT:-}; do
  case "$part" in opencv|leveldb|hdf5) ;; *) die "CAFFE_WITHOUT: unknown part '$part' (expected opencv, leveldb, hdf5)" ;; esac
done
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DBLAS=Open -DBUILD_python=ON
  -DBUILD_python_layer=ON -Dpython_version=3 -DBUILD_docs=OFF
  -DBUILD_matlab=OFF -DUSE_LMDB=ON "-DUSE_LEVELDB=$(use leveldb)" "-DUSE_OPENCV=$(use opencv)"
  -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON
  "-DPYTHON_EXECUTABLE=$PY_EXE" "-DPYTHON_INCLUDE_DIR=$PY_INC" "-DPYTHON_LIBRARY=$PY_LIB")
[ "$(use hdf5)" = ON ] || CMAKE_FLAGS+=(-DUSE_HDF5=OFF)
# Patches that only a build leaving a part out needs: caffe_patches/without-<part>/.
WITHOUT_PATCHES=()
for part in ${CAFFE_WITHOUT:-}; do
  [ -f "$PATCH_DIR/without-$part/series" ] || continue
  while read -r p; do [ -n "$p" ] && WITHOUT_PATCHES+=("without-$part/$p"); done < "$PATCH_DIR/without-$part/series"
done
if [ -n "${BOOST_PYTHON_LIBRARY:-}" ]; then
  [ -f "$BOOST_PYTHON_LIBRARY" ] || die "BOOST_PYTHON_LIBRARY=$BOOST_PYTHON_LIBRARY: no such file"
  # FindBoost's module mode takes a preset library path; Boost's own CMake
  # files know only the Python versions Debian built Boost.Python for.
  CMAKE_FLAGS+=(-DBoost_NO_BOOST_CMAKE=ON
    "-DBoost_PYTHON$(echo "${PY_VER%.*}" | tr -d .)_LIBRARY_RELEASE=$BOOST_PYTHON_LIBRARY")
fi
if [ "$CUDA" = 1 ]; then VARIANT=cuda; cuda_flags; else VARIANT=cpu; CMAKE_FLAGS+=(-DCPU_ONLY=ON); fi

# The key does not depend on which download was used: both are verified to
# be the same BVLC tree, so CI reuses a build whichever source made it.
if [ -n "${CAFFE_SRC:-}" ]; then resolve_source; KEY_SRC="$SRC_ID"; else KEY_SRC="bvlc:$BVLC_MANIFEST_SHA256"; fi
# The interpreter's path is left out (it is the checkout's venv), so every
# checkout on the machine with the same Python and NumPy shares one build.
KEY=$( { echo "recipe $BUILD_RECIPE"; echo "$KEY_SRC"; cat "$PATCH_DIR/series";
         while read -r p; do cat "$PATCH_DIR/$p"; done < "$PATCH_DIR/series";
         for p in ${WITHOUT_PATCHES[@]+"${WITHOUT_PATCHES[@]}"}; do echo "$p"; cat "$PATCH_DIR/$p"; done;
         printf '%s\n' "${CMAKE_FLAGS[@]}" | grep -v '^-DPYTHON_EXECUTABLE=';
         echo "python $PY_VER numpy $PY_NUMPY"; } | sha256sum | cut -c1-16)
PREFIX="$CAFFE_CACHE/$VARIANT-$KEY"

if [ -f "$PREFIX/.complete" ]; then
  say "reusing build $PREFIX ($(cat "$PREFIX/.complete"))"
  echo "CAFFE_PREFIX=$PREFIX"
  exit 0
fi

ensure_apt_deps
[ -n "${SRC:-}" ] || resolve_source

WORK="$CAFFE_CACHE/work/$VARIANT-$KEY"
rm -rf "$WORK"; mkdir -p "$WORK"
cp -a "$SRC" "$WORK/src"
applied=0
while read -r p; do
  [ -n "$p" ] || continue
  patch -d "$WORK/src" -p1 --forward --quiet < "$PATCH_DIR/$p" \
    || die "patch $p does not apply to $SRC"
  applied=$((applied + 1))
done < <(cat "$PATCH_DIR/series"; printf '%s\n' ${WITHOUT_PATCHES[@]+"${WITHOUT_PATCHES[@]}"})
say "applied $applied patches (caffe_build/caffe_patches/)"

say "configuring ($VARIANT) in $WORK/build"
mkdir -p "$WORK/build"
# Installed straight into the prefix (Caffe bakes it into the RPATH); the
# .complete stamp written last marks a whole install.
rm -rf "$PREFIX"
(cd "$WORK/build" && cmake "$WORK/src" "${CMAKE_FLAGS[@]}" -DCMAKE_INSTALL_PREFIX="$PREFIX" > cmake.log 2>&1) \
  || { tail -30 "$WORK/build/cmake.log" >&2; die "cmake failed, log: $WORK/build/cmake.log"; }
grep -q "BUILD_python      :   ON" "$WORK/build/cmake.log" && grep -qE "Boost +: +Yes" "$WORK/build/cmake.log" \
  || die "cmake did not enable pycaffe (Python, NumPy or Boost.Python missing), log: $WORK/build/cmake.log"
say "compiling with $JOBS jobs (on 2 cores: CPU about 4-8 min, CUDA for one architecture about 7)"
start=$(date +%s)
(cd "$WORK/build" && make -j"$JOBS" > make.log 2>&1 && make install > install.log 2>&1) \
  || { grep -m5 -B2 -A5 "error" "$WORK/build/make.log" >&2 || tail -30 "$WORK/build/make.log" >&2;
       die "compilation failed, log: $WORK/build/make.log"; }
secs=$(( $(date +%s) - start ))

install_extras "$WORK/src" "$PREFIX"
sed -n '/Caffe Configuration Summary/,/Install path/p' "$WORK/build/cmake.log" | sed 's/^-- //' > "$PREFIX/build-summary.txt"
echo "source $SRC_ID; built in ${secs}s; $(date -u +%FT%TZ)" > "$PREFIX/.complete"
rm -rf "$WORK"
say "installed $PREFIX in ${secs}s"
echo "CAFFE_PREFIX=$PREFIX"
