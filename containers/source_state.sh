#!/usr/bin/env bash
# The checkout's state that an image records in place of .git (read by
# common/provenance.py, SOURCE_STATE): JSON on stdout.
#
#   containers/source_state.sh COMMIT CHANGED
#
# COMMIT: `git rev-parse HEAD`; CHANGED: how many paths `git status
# --porcelain` lists (dirty when above 0). The Dockerfile runs it with its
# build arguments SOURCE_COMMIT and SOURCE_CHANGED.
set -euo pipefail
commit=${1:-}
changed=${2:-}
hint="build with make image, or pass --build-arg SOURCE_COMMIT=\$(git rev-parse HEAD) --build-arg SOURCE_CHANGED=\$(git status --porcelain | wc -l)"
[[ "$commit" =~ ^[0-9a-f]{40}$ ]] || { echo "source_state: error: SOURCE_COMMIT '$commit' is no git commit: $hint" >&2; exit 1; }
[[ "$changed" =~ ^[0-9]+$ ]] || { echo "source_state: error: SOURCE_CHANGED '$changed' is no count of paths: $hint" >&2; exit 1; }
dirty=false
[ "$changed" -gt 0 ] && dirty=true
printf '{"commit": "%s", "dirty": %s, "changed": %d}\n' "$commit" "$dirty" "$changed"
