#!/bin/sh
# Fix the Motia 0.17.x core slowdown: server.mjs mutates the *shared* stream adapter
# returned by stream() on every step execution, stacking one wrapper per call, so each
# execution gets slower (see README "Motia core fix"). Wrapping a fresh prototype-linked
# object instead of the shared one leaves the adapter untouched.
# Idempotent: running it twice changes nothing; it exits non-zero if neither the
# unpatched nor the patched line is found (a Motia upgrade moved the code).
set -eu
file="${1:-node_modules/@motiadev/core/dist/src/server.mjs}"
if [ ! -f "$file" ]; then
  echo "patch-motia-core: $file not found" >&2
  exit 1
fi
if grep -q 'const main = Object.create(stream());' "$file"; then
  echo "patch-motia-core: already applied"
  exit 0
fi
if ! grep -q 'const main = stream();' "$file"; then
  echo "patch-motia-core: pattern not found in $file; Motia changed, review the fix" >&2
  exit 1
fi
sed -i 's/const main = stream();/const main = Object.create(stream());/' "$file"
echo "patch-motia-core: applied to $file"
