#!/usr/bin/env bash
# Assemble BENCHMARKS.md: the TimeVAE section (table regenerated from benchmarks/out) and the
# per-model result sections kept in benchmarks/*_RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# results scored under an older scoring version are listed (STRICT=1: refuse to assemble)
python benchmarks/stale_results.py ${STRICT:+--check} >&2
{
  cat benchmarks/sections/head.md
  # the TimeVAE table from its results when they are here, else the committed snapshot
  if ls benchmarks/out/timevae_*/result.json > /dev/null 2>&1; then
    python benchmarks/timevae_table.py --table
  else
    cat benchmarks/sections/timevae_table.md
  fi
  cat benchmarks/sections/timevae_speed.md
  sections=(benchmarks/FHVAE_RESULTS.md benchmarks/SSVAE_RESULTS.md benchmarks/FAMILY_RESULTS.md
            benchmarks/GENERATION_RESULTS.md benchmarks/DISENTANGLEMENT_RESULTS.md
            benchmarks/UNIFIED_RESULTS.md benchmarks/GAPS_RESULTS.md
            benchmarks/SPRITES_RESULTS.md benchmarks/PROTOCOL_RESULTS.md
            benchmarks/CPU_RESULTS.md benchmarks/FACTORS_RESULTS.md benchmarks/HOSTILE_RESULTS.md
            benchmarks/MULTI_ENTITY_RESULTS.md)
  for f in "${sections[@]}"; do
    [[ -f $f ]] && { echo; cat "$f"; }
  done
  # each section's committed result files and their scoring version
  echo
  python benchmarks/provenance.py \
    benchmarks/sections/head.md+benchmarks/sections/timevae_table.md+benchmarks/sections/timevae_speed.md \
    "${sections[@]}"
} > BENCHMARKS.md.tmp
mv BENCHMARKS.md.tmp BENCHMARKS.md  # replaced only once assembled in full
