"""benchmarks/energy_seeds.py: mean ± std over training seeds of each seed's metric mean."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import energy_seeds  # noqa: E402


def test_the_table_is_the_mean_and_sample_std_over_seeds(tmp_path):
    for seed, disc in ((0, 0.20), (1, 0.26), (2, 0.23)):
        cell = {"discriminative": {"mean": disc, "std": 0.5, "values": [disc]},
                "predictive": {"mean": 0.25}, "context_fid": {"mean": 0.1 * (seed + 1)}}
        (tmp_path / f"flow_ts_s{seed}.json").write_text(json.dumps(cell))
    (tmp_path / "diffusion_ts_s0.json").write_text(json.dumps(  # the harness's format
        {"train_command": "factorseq train ...", "metrics": {"discriminative": {"mean": .3}}}))
    rows = energy_seeds.table(tmp_path).splitlines()
    flow = next(r for r in rows if "`flow_ts`" in r).split(" | ")
    # discriminative: mean 0.23, sample std sqrt((.03² + .03² + 0) / 2) = 0.03
    assert flow[1] == "0, 1, 2" and flow[2] == "0.230 ± 0.030"
    assert flow[4] == "0.200 ± 0.100"  # Context-FID 0.1, 0.2, 0.3
    diff = next(r for r in rows if "`diffusion_ts`" in r).split(" | ")
    assert diff[1] == "0" and diff[2] == "0.300" and diff[3] == ""  # one seed: no ±
