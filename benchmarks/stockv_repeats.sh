#!/bin/bash
# issue #10: timevae on stockv with its defaults (the demo's command), 3 training seeds, each
# scored with 10 metric repeats; results in benchmarks/out/stockv10/s<seed>/metrics.json
set -e
EXE=${EXE:-.venv/bin/factorseq}
for s in 0 1 2; do
  d=benchmarks/out/stockv10/s$s
  [ -f $d/metrics.json ] && continue
  $EXE train timevae --data stockv --out $d/run --force --seed $s --set train.tensorboard=false
  $EXE evaluate $d/run --out $d/metrics.json --repeats 10 --force
done
