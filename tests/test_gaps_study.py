"""benchmarks/gaps_table.py (section 8) over the harness: the cells of GAPS_RESULTS.md's
commands carry the arguments the script ran before the harness, and the table is mean ±
sample std over the kept seeds (refusals shown with their error line)."""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import gaps_table  # noqa: E402
import harness  # noqa: E402

from factorseq.metrics.scoring import SCORING_VERSION  # noqa: E402

# gaps_table.py before the harness (b70301d), copied as the reference: its cell_name, its
# train_args + ["--seed", seed] + extra, its evaluate call and main()'s loop over the cells
OLD_SOURCES = {"stocks-table": str(REPO / "data" / "timegan" / "stock_data.csv"),
               "energy10": "energy"}
OLD_DATA_ARGS = {"energy": ["--epochs", "40"],
                 "energy10": ["--epochs", "40", "--set", "data.options={percent: 10}"]}


def old_name(model, data, pattern, method, seed=0, tag=""):
    tail = (f"_s{seed}" if seed else "") + (f"_{tag}" if tag else "")
    if pattern is None:
        return f"{model}_{data}_complete{tail}"
    kind, rate = pattern.split(":")
    return f"{model}_{data}_{kind}{rate}_{method}{tail}"


def old_commands(model, data, pattern, method, seed, repeats, extra):
    src = OLD_SOURCES.get(data, data)
    train = ["train", model, "--data", src, "--out", "RUN", "--force",
             *OLD_DATA_ARGS.get(data, [])]
    if pattern is not None:
        kind, rate = pattern.split(":")
        train += ["--set", f"data.remove_rate={rate}", "--set", f"data.remove_pattern={kind}",
                  "--impute", str(method)]
    evaluate = ["evaluate", "RUN", "--data", src, "--out", "METRICS", "--repeats", str(repeats),
                "--force", "--set", "privacy=false"]
    return train + ["--seed", str(seed)] + extra, evaluate


def old_cells(a):
    for seed in a.seeds:
        for model in a.models:
            for data in a.data:
                todo = ([(None, None)] if a.complete else []) + [
                    (p, m) for p in a.patterns for m in a.methods]
                for p, m in todo:
                    tag = a.tag if p else ""
                    yield (old_name(model, data, p, m, seed, tag), seed,
                           old_commands(model, data, p, m, seed, a.repeats, a.extra))


def args_of(argv: list[str]) -> list[str]:
    """A command's arguments without the run folder (``evaluate``'s first), ``--out``,
    ``--force`` and ``--seed``; a path relative to the repository made absolute."""
    argv = argv[:1] + argv[2:] if argv[0] == "evaluate" else argv
    out, it = [], iter(argv)
    for x in it:
        if x in ("--out", "--seed"):
            next(it)
        elif x != "--force":
            out.append(str(REPO / x) if (REPO / x).is_file() else x)
    return out


def documented() -> list[list[str]]:
    """The ``gaps_table.py run`` commands of GAPS_RESULTS.md's bash blocks (their ``$S``
    expanded), as argument lists."""
    found = []
    text = (REPO / "benchmarks" / "GAPS_RESULTS.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")
        env = dict(re.findall(r'^(\w+)="([^"]*)"$', block, re.M))
        for line in block.splitlines():
            line = re.sub(r"\s#.*", "", line)
            if "gaps_table.py run" in line:
                for var, value in env.items():
                    line = line.replace(f"${var}", value)
                found.append(shlex.split(line.split("gaps_table.py", 1)[1]))
    return found


def test_the_documented_commands_make_the_cells_the_script_ran_before_the_harness():
    commands = documented()
    assert len(commands) == 7
    seed1 = ["run", "--models", "diffusion_ts", "--data", "stocks", "--patterns", "mcar:0.3",
             "--methods", "mask", "--seeds", "1", "--", *commands[2][-4:]]  # "the same, seed 1"
    total = 0
    for argv in [*commands, seed1]:
        a = gaps_table.parse(argv)
        new, old = gaps_table.cells(a), list(old_cells(a))
        assert len(new) == len(old) > 0
        for c, (name, seed, (train, evaluate)) in zip(new, old, strict=True):
            # same cell (the seed is now the folder s<seed>, no longer in the name)
            assert c.seed == seed and c.name == (name.replace(f"_s{seed}", "") if seed else name)
            new_train, new_eval = c.commands()
            assert args_of(new_train) == args_of(train)
            assert args_of(new_eval) == args_of(evaluate)
            assert new_train[-3:] == ["--force", "--seed", str(seed)]
            assert c.refusal_ok == ("_complete" not in name)  # only a method may be refused
        total += len(new)
    assert total == 13 + 7 + 3 + 1 + 2 + 4 + 4 + 2
    first = gaps_table.parse(commands[0])
    assert [c.name for c in gaps_table.cells(first)][:3] == [
        "timevae_stocks_complete", "timevae_stocks_mcar0.1_drop", "timevae_stocks_mcar0.1_linear"]
    zero = gaps_table.cells(gaps_table.parse(commands[3]))
    assert [c.name for c in zero] == ["diffusion_ts_stocks_mcar0.3_mask_zero-fill"]
    assert zero[0].train[-2:] == ("--set", "missing_fill=zero")
    table = gaps_table.cells(gaps_table.parse(commands[5]))[0]
    assert table.train[:3] == ("diffusion_ts", "--data", "data/timegan/stock_data.csv")


def _result(disc: float, seed: int, epochs: int = 104, seconds: float = 300.0, **more) -> dict:
    return {"study": "gaps", "seed": seed, "train_wall_s": seconds + 5,
            "training": {"n_train": 3296, "n_val": 366, "epochs_run": epochs,
                         "train_seconds": seconds},
            "metrics": {"discriminative": {"mean": disc, "std": 0.05},
                        "predictive": {"mean": 0.04, "std": 0.0},
                        "predictive_real": {"mean": 0.036 + 0.001 * seed, "std": 0.0},
                        "scoring_version": SCORING_VERSION, **more}}


def test_the_table_is_mean_and_sample_std_over_the_kept_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    for seed, ref, mask, epochs in ((0, 0.20, 0.10, 100), (1, 0.26, 0.22, 104),
                                    (2, 0.23, 0.16, 108)):
        harness.keep(_result(ref, seed, epochs, 100.0 * (seed + 2)),
                     gaps_table.cell("timevae", "stocks", None, None, seed))
        harness.keep(_result(mask, seed), gaps_table.cell("timevae", "stocks", "mcar:0.3",
                                                          "mask", seed))
    drop = gaps_table.cell("timevae", "stocks", "mcar:0.3", "drop", 0)
    harness.keep({"status": "refused", "seed": 0, "scoring_version": SCORING_VERSION,
                  "error": "error: every window of stocks has a missing value (Open 26,403)"},
                 drop)
    harness.keep(_result(0.43, 0, context_fid={"mean": 8.0, "std": 1.5}),
                 gaps_table.cell("diffusion_ts", "stocks", "mcar:0.3", "mask", 0, "zero-fill"))
    assert (tmp_path / "gaps" / "timevae_stocks_mcar0.3_drop_s0.json").is_file()
    lines = gaps_table.table().splitlines()
    assert lines[0].split(" | ")[4:] == ["seeds", "windows kept", "discriminative",
                                         "predictive", "context_fid", "disc − complete",
                                         "epochs", "train s |"]
    rows = [line.split(" | ") for line in lines[2:6]]
    assert [r[:4] for r in rows] == [["| diffusion_ts", "stocks", "mcar 0.3", "mask [zero-fill]"],
                                     ["| timevae", "stocks", "complete", "complete"],
                                     ["| timevae", "stocks", "mcar 0.3", "drop"],
                                     ["| timevae", "stocks", "mcar 0.3", "mask"]]
    # no complete reference of diffusion_ts: no total, no difference; one seed: no ±
    assert rows[0][4:] == ["0", "3,662", "0.430", "0.040", "8.000", "—", "104", "300 |"]
    # complete: disc .20 .26 .23 -> .230 ± sqrt((.03² + .03² + 0) / 2) = .030; epochs 104 ± 4;
    # train seconds 200, 300, 400
    assert rows[1][4:] == ["0, 1, 2", "3,662 / 3,662", "0.230 ± 0.030", "0.040 ± 0.000", "—",
                           "—", "104 ± 4", "300 ± 100 |"]
    assert rows[2][4:6] == ["0", "refused: every window of stocks has a missing value (Open "
                            "26,403)"] and lines[4].count("|") == 13  # 12 columns
    # mask: disc .10 .22 .16 -> .160 ± .060; against the same seed's complete model:
    # -.10, -.04, -.07 -> -.070 ± .030
    assert rows[3][4:] == ["0, 1, 2", "3,662 / 3,662", "0.160 ± 0.060", "0.040 ± 0.000", "—",
                           "-0.070 ± 0.030", "104 ± 0", "300 ± 0 |"]
    # the real-data line over all 7 evaluations: .036, .037, .038 x 2 and .036 -> mean .0369
    note = next(line for line in lines if line.startswith("Predictive score"))
    assert note.endswith("stocks: 0.037 ± 0.001 (7).")
    assert "Stale" not in gaps_table.table()


def test_a_result_file_that_is_no_gaps_cell_stops_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    harness.keep(_result(0.2, 0), gaps_table.cell("timevae", "stocks", None, None, 0))
    assert "| timevae | stocks | complete |" in gaps_table.table()
    (tmp_path / "gaps" / "timevae_stocks_mcar_s0.json").write_text("{}")  # no rate or method
    with pytest.raises(SystemExit, match="is not the name of a gaps cell"):
        gaps_table.table()
