#!/bin/bash
# Alternate 10k builds of an older commit and of the working tree, each in a fresh
# interpreter, and print the wall seconds of each (imports included): a change's cost
# measured in the same minutes, as the machine's speed drifts more than most changes.
#
# usage: benchmarks/ab_build.sh COMMIT PAIRS [SOURCE]
#   e.g. benchmarks/ab_build.sh f73051b 5
set -euo pipefail
commit=$1
pairs=$2
source=${3:-../shared/data/stac-items/pc-naip-10000.parquet}
repo=$(cd "$(dirname "$0")/.." && pwd)
python="$repo/.venv/bin/python"
source=$(realpath "$source")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/old"
git -C "$repo" archive "$commit" dafab_static | tar -x -C "$work/old"
for i in $(seq 1 "$pairs"); do
  for side in old new; do
    code=$([ "$side" = old ] && echo "$work/old" || echo "$repo")
    out="$work/out-$side-$i"
    start=$(date +%s.%N)
    (cd "$work" && PYTHONPATH="$code" "$python" -c "import sys, dafab_static
assert dafab_static.__file__.startswith('$code'), dafab_static.__file__
from dafab_static.cli import app
sys.argv = ['dafab-static', 'build', '$source', '--out', '$out', '--quiet']
app()")
    end=$(date +%s.%N)
    echo "$side $(echo "$end - $start" | bc)"
    rm -rf "$out"
  done
done
