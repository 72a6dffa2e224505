#!/usr/bin/env bash
# Checks proto/ for breaking changes (buf.yaml: FILE rules) against the contracts of the
# previous commit on main, or against BUF_BREAKING_AGAINST (any buf input, for example
# '.git#branch=main' in a pull-request pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
against=${BUF_BREAKING_AGAINST:-}
if [ -z "$against" ]; then
  if ! git rev-parse -q --verify HEAD~1 >/dev/null || [ -z "$(git ls-tree -r --name-only HEAD~1 -- proto/telemed)" ]; then
    echo "buf breaking: no earlier contracts to compare with"
    exit 0
  fi
  against=".git#ref=HEAD~1"
fi
npx --no-install buf breaking --against "$against"
echo "buf breaking: no breaking change against $against"
