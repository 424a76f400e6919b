#!/usr/bin/env bash
# Assemble BENCHMARKS.md: the TimeVAE section (table regenerated from benchmarks/out) and the
# per-model result sections kept in benchmarks/*_RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  cat benchmarks/sections/head.md
  python benchmarks/timevae_table.py --table
  cat benchmarks/sections/timevae_speed.md
  for f in benchmarks/FHVAE_RESULTS.md benchmarks/SSVAE_RESULTS.md benchmarks/FAMILY_RESULTS.md \
           benchmarks/DISENTANGLEMENT_RESULTS.md; do
    [[ -f $f ]] && { echo; cat "$f"; }
  done
} > BENCHMARKS.md
