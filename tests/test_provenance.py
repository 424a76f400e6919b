"""benchmarks/provenance.py: a section is current only when every result file it names is
committed and of the current scoring version, and it names no uncommitted cache."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import provenance  # noqa: E402

from factorseq.metrics.scoring import SCORING_VERSION  # noqa: E402


def _section(root: Path, name: str, body: str) -> Path:
    path = root / name
    path.write_text(f"## {name}\n\n{body}\n")
    return path


def test_each_status_from_the_files_a_section_names(tmp_path):
    res = tmp_path / "benchmarks" / "results"
    (res / "cells").mkdir(parents=True)
    (res / "new.json").write_text(json.dumps({"scoring_version": SCORING_VERSION}))
    (res / "cells" / "a.json").write_text(json.dumps({"scoring_version": SCORING_VERSION}))
    (res / "old.json").write_text(json.dumps({"discriminative": 0.2}))  # unversioned: v0
    rows = {name: provenance.section_row([_section(tmp_path, name, body)], tmp_path)
            for name, body in {
                "cur": "see `benchmarks/results/new.json` and `benchmarks/results/cells/`.",
                "old": "see benchmarks/results/new.json, benchmarks/results/old.json.",
                "part": "benchmarks/results/new.json and benchmarks/out/x/run",
                "none": "runs in `benchmarks/out/y/` only",
                "missing": "benchmarks/results/gone.json"}.items()}
    assert rows["cur"]["status"].startswith("current")
    assert rows["cur"]["results"] == {"benchmarks/results/cells/a.json": SCORING_VERSION,
                                      "benchmarks/results/new.json": SCORING_VERSION}
    assert rows["old"]["status"].startswith("older scoring version (v0")
    assert rows["part"]["status"].startswith("partly")
    assert rows["part"]["caches"] == ["benchmarks/out/x/run"]
    assert rows["none"]["status"] == rows["missing"]["status"] == "no committed result file"
    table = provenance.render(list(rows.values()))
    assert "**1 of 5 sections current.**" in table
    assert table.count("\n| ") == 6  # the header and one row per section


def test_a_section_of_several_files_reads_them_all(tmp_path):
    res = tmp_path / "benchmarks" / "results"
    res.mkdir(parents=True)
    (res / "t.json").write_text(json.dumps({"scoring_version": SCORING_VERSION}))
    head = _section(tmp_path, "head", "intro")
    table = tmp_path / "table.md"
    table.write_text("numbers: benchmarks/results/t.json\n")
    row = provenance.section_row([head, table], tmp_path)
    assert row["section"] == "head" and row["status"].startswith("current")


def test_a_table_mark_names_the_files_its_table_read_and_an_earlier_mark_makes_it_partly(
        tmp_path, monkeypatch):
    import harness

    res = tmp_path / "benchmarks" / "results"
    monkeypatch.setattr(harness, "RESULTS", res)
    for name in ("timevae_stockv_100_s0", "timevae_stockv_100_s1", "timevae_sines_10_s0"):
        path = res / "timevae_paper" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"scoring_version": SCORING_VERSION, "train_wall_s": 60.0,
                                    "training": {}, "metrics": {}}))
    mark = "<!-- table: timevae_paper stockv -->"
    row = provenance.section_row([_section(tmp_path, "s1", mark)], tmp_path)
    assert sorted(Path(p).name for p in row["results"]) == [
        "timevae_stockv_100_s0.json", "timevae_stockv_100_s1.json"]  # not the sines cell
    assert row["status"].startswith("current")
    row = provenance.section_row(
        [_section(tmp_path, "s2", mark + "\n<!-- earlier sessions: not re-run -->")], tmp_path)
    assert row["status"] == "partly: current files, and quoted runs of earlier sessions"


def test_the_results_and_out_folders_named_in_prose_cite_nothing(tmp_path):
    res = tmp_path / "benchmarks" / "results"
    res.mkdir(parents=True)
    (res / "t.json").write_text(json.dumps({"scoring_version": SCORING_VERSION}))
    row = provenance.section_row([_section(
        tmp_path, "p", "results are kept under `benchmarks/results/`; runs in `benchmarks/out/`.")],
        tmp_path)
    assert row["results"] == {} and row["caches"] == []
    assert row["status"] == "no committed result file"


def test_the_run_folder_of_a_kept_cell_is_not_an_untraced_cache(tmp_path):
    res = tmp_path / "benchmarks" / "results" / "study"
    res.mkdir(parents=True)
    (res / "cell_s0.json").write_text(json.dumps({"scoring_version": SCORING_VERSION}))
    row = provenance.section_row([_section(
        tmp_path, "k", "speed of benchmarks/out/study/cell/s0/run, "
                       "see benchmarks/results/study/cell_s0.json; also benchmarks/out/study/"
                       "cell/s1/run")], tmp_path)
    assert row["caches"] == ["benchmarks/out/study/cell/s1/run"]  # seed 1 has no result
    assert row["status"].startswith("partly")
