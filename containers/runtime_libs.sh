#!/usr/bin/env bash
# What a runtime image needs to load an installed Caffe, read off the builder:
#
#   containers/runtime_libs.sh PREFIX OUT
#
# Every shared library that libcaffe, pycaffe's _caffe.so and the caffe tool
# load (ldd) is either a Debian package's, listed in OUT/packages.txt for the
# runtime stage to apt-get install, or a file from elsewhere (the CUDA
# wheels), copied with its path under OUT/root/ for the runtime stage to copy
# over /. No -dev package or compiler is ever listed: only what ldd resolves.
set -euo pipefail
prefix=${1:?usage: runtime_libs.sh PREFIX OUT}
out=${2:?usage: runtime_libs.sh PREFIX OUT}
die() { echo "runtime_libs: error: $*" >&2; exit 1; }

bins=("$prefix"/lib/libcaffe.so* "$prefix"/python/caffe/_caffe.so "$prefix"/bin/caffe)
for b in "${bins[@]}"; do [ -e "$b" ] || die "$b is missing: is $prefix a Caffe install prefix?"; done
# A library ldd cannot find would fail at run time too: stop here.
if ldd "${bins[@]}" | grep -q "not found"; then
  die "unresolved libraries: $(ldd "${bins[@]}" | grep "not found" | sort -u | tr -s ' \n\t' ' ')"
fi
mkdir -p "$out/root"
libs=$(ldd "${bins[@]}" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | grep -v "^$prefix/" || true)
# dpkg knows a library by its own path, or (alternatives: OpenBLAS) by the
# path the symlinks lead to; one query for all ("PACKAGE:ARCH: PATH" lines).
owned=$(dpkg -S $(for lib in $libs; do echo "$lib"; readlink -f "$lib"; done | sort -u) 2>/dev/null || true)
sed -n 's/^\([^:, ]*\)[^ ]* .*/\1/p' <<<"$owned" | sort -u > "$out/packages.txt"
for lib in $libs; do
  if ! grep -qxF -e "$lib" -e "$(readlink -f "$lib")" <<<"$(sed 's/^[^ ]* //' <<<"$owned")"; then
    cp --parents -L "$lib" "$out/root/"
  fi
done
