#!/bin/sh
# Apply the project's patches to the installed Motia core (see patch-motia-core.mjs for
# what and why). Idempotent; fails if a patch no longer applies.
set -eu
cd "$(dirname "$0")/.."
exec node scripts/patch-motia-core.mjs "$@"
