#!/usr/bin/env bash
# Assemble BENCHMARKS.md from benchmarks/sections/*.md and benchmarks/*_RESULTS.md, their tables
# rendered from the committed result files in benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
# results scored under an older scoring version are listed (STRICT=1: refuse to assemble)
python benchmarks/stale_results.py ${STRICT:+--check} >&2
{
  # every <!-- table: STUDY [REGEX] --> mark is followed by its table, rendered now from the
  # committed result files (benchmarks/render.py)
  cat benchmarks/sections/head.md benchmarks/sections/timevae_table.md \
    benchmarks/sections/timevae_speed.md | python benchmarks/render.py fill
  sections=(benchmarks/FHVAE_RESULTS.md benchmarks/SSVAE_RESULTS.md benchmarks/FAMILY_RESULTS.md
            benchmarks/GENERATION_RESULTS.md benchmarks/DISENTANGLEMENT_RESULTS.md
            benchmarks/UNIFIED_RESULTS.md benchmarks/GAPS_RESULTS.md
            benchmarks/SPRITES_RESULTS.md benchmarks/PROTOCOL_RESULTS.md
            benchmarks/CPU_RESULTS.md benchmarks/FACTORS_RESULTS.md benchmarks/HOSTILE_RESULTS.md
            benchmarks/MULTI_ENTITY_RESULTS.md)
  for f in "${sections[@]}"; do
    [[ -f $f ]] && { echo; python benchmarks/render.py fill < "$f"; }
  done
  # each section's committed result files and their scoring version
  echo
  python benchmarks/provenance.py \
    benchmarks/sections/head.md+benchmarks/sections/timevae_table.md+benchmarks/sections/timevae_speed.md \
    "${sections[@]}"
} > BENCHMARKS.md.tmp
mv BENCHMARKS.md.tmp BENCHMARKS.md  # replaced only once assembled in full
