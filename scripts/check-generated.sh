#!/usr/bin/env bash
# Fails when gen/ is not what `buf generate` makes from proto/ (gen/ is committed).
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install buf generate
drift=$(git status --porcelain -- gen)
if [ -n "$drift" ]; then
  echo "gen/ is out of date with proto/: run 'npm run generate' and commit the result." >&2
  echo "$drift" >&2
  exit 1
fi
echo "gen/ matches proto/"
