#!/usr/bin/env bash
# Make the working tree small enough to travel to the GPU host with .gpu-kit/ (64 MiB in
# all on this workplace's device machine; the tracked tree alone is about 65 MB).
#
#   tools/gpu_check/slim.sh away    # move docs/results and models/cmr-lvot out of the checkout
#   tools/gpu_check/slim.sh back    # put them back (git status is clean again)
#   tools/gpu_check/slim.sh size    # what would travel, in MB
#
# The GPU checks need neither: the benchmark's phantoms are radiographs, which the
# cxr-foreign-object package takes. If a session ends while they are away,
# `git checkout -- docs/results models/cmr-lvot` restores them from git.
set -euo pipefail

KIT=.gpu-kit
ASIDE=(docs/results models/cmr-lvot)
# outside the checkout, so that nothing of it travels with the tree or with .gpu-kit
AWAY=${TMPDIR:-/tmp}/iqgate-gpu-aside

[ -d .git ] || { echo "run from the repository root" >&2; exit 2; }

travelling_mb() {
    # tracked files present, untracked files git does not ignore, and the kit
    { git ls-files -z --cached --others --exclude-standard; find "$KIT" -type f -print0 2>/dev/null; } |
        { xargs -0 -r stat -c %s 2>/dev/null || true; } | awk '{s += $1} END {printf "%.1f\n", s / 1e6}'
}

move_aside_folders() {  # move_aside_folders FROM TO
    for path in "${ASIDE[@]}"; do
        [ -e "$1/$path" ] || continue
        mkdir -p "$(dirname "$2/$path")"
        mv "$1/$path" "$2/$path"
    done
}

case "${1:-}" in
away)
    move_aside_folders . "$AWAY"
    echo "travelling: $(travelling_mb) MB (the limit is 67.1 MB)"
    ;;
back)
    move_aside_folders "$AWAY" .
    rm -rf "$AWAY"
    git status --short -- "${ASIDE[@]}"
    ;;
size)
    echo "travelling: $(travelling_mb) MB (the limit is 67.1 MB)"
    ;;
*)
    echo "usage: $0 away|back|size" >&2
    exit 2
    ;;
esac
