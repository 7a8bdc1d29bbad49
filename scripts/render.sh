#!/usr/bin/env bash
# Render the processed pages (_proc/, which nbdev-proc-nbs writes) into _docs/ with Quarto. One Quarto process renders
# every page, so that its warnings reach the terminal and build/render.log: nbdev-docs renders in workers and keeps their
# output to itself when Quarto exits 0. Fails on any warning or error (a link to a page that does not exist, say).
# scripts/site.sh calls it when quarto is on PATH.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
command -v quarto >/dev/null || die "quarto is not on PATH (quarto.org)"
[ -f _proc/_quarto.yml ] || die "no _proc/_quarto.yml: run nbdev-proc-nbs first (scripts/site.sh does)"
mkdir -p build && rm -rf _docs
quarto render _proc --no-cache --output-dir "$ROOT/_docs" 2>&1 | tee build/render.log
python -c "from nbdev.quarto import _fix_quarto_nav; _fix_quarto_nav('_docs')"  # nbdev's own fix of Quarto's nav script
if grep -E "WARN|ERROR" build/render.log; then die "Quarto warned (above; build/render.log): fix the pages before publishing"; fi
echo "rendered: $ROOT/_docs/index.html"
