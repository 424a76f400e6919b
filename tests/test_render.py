"""benchmarks/render.py: BENCHMARKS.md's table marks are rendered from the committed result
files, and the files each table read are what the section cites (provenance)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fhvae_invariance  # noqa: E402
import harness  # noqa: E402
import render  # noqa: E402
import ssvae_bench  # noqa: E402
import tables  # noqa: E402
import unified_table as uni  # noqa: E402


def _keep(c: harness.Cell, disc: float) -> Path:
    return harness.keep({"train_wall_s": 90.0,
                         "training": {"epochs_run": 97, "train_seconds": 60.0},
                         "metrics": {"discriminative": {"mean": disc, "std": 0.041,
                                                        "values": [0.1, 0.2]},
                                     "predictive": {"mean": 0.024}}}, c)


def test_fill_renders_a_marked_table_and_one_seed_shows_the_repeats_spread(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    for name in ("timevae:stockv:100", "vae_conv:sines:10"):
        _keep(tables.cell("timevae_paper", name, 0), 0.177)
    text = render.fill("before\n<!-- table: timevae_paper stockv -->\nafter\n").splitlines()
    assert text[0] == "before" and text[-1] == "after"
    rows = [r for r in text if r.startswith("| `")]
    assert len(rows) == 1  # the pattern kept stockv's cell only
    cells = rows[0].split(" | ")
    # one training seed: ±ᵣ is the std over metric repeats; a score without values: no ±
    assert cells[2] == "0.177 ±ᵣ 0.041" and cells[3] == "0.024" and cells[4] == "—"
    assert cells[6] == "1.5 |"


def test_a_views_sources_are_exactly_the_files_its_table_read(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    wanted = {_keep(uni.cell(m, "stocks", s), 0.4).resolve()
              for m in ("gan", "iwgan") for s in (0, 1)}
    other = _keep(tables.cell("timegan_family", "timevae:stocks", 0), 0.1).resolve()
    weights = harness.record(tmp_path / "unified" / "weights_iwgan_stocks_s0.json",
                             {"epoch_means": {"train_iw_ess": [0.9, 0.99]}}).resolve()
    text, files = render.render("unified")
    assert "| stocks | iwgan | 2 |" in text and files == wanted  # timevae's cell is not read
    assert render.render("unified_weights")[1] == {weights}
    marks = "<!-- table: unified -->\nprose\n<!-- table: unified_weights -->\n"
    assert render.sources(marks) == wanted | {weights}
    assert other not in render.sources("<!-- table: timegan_family ^gan: -->")
    # outside a rendering nothing is collected, and the scope is closed after it
    harness.kept("timegan_family", "gan_stocks")
    assert harness._READ == []


def test_an_ssvae_pattern_reads_its_cells_and_their_baselines_only(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)

    def keep(data: str, labels: int, alpha: float | None, objective: str) -> Path:
        return harness.keep({"training": {"epochs_run": 40, "train_seconds": 9.0},
                             "metrics": {"accuracy": 0.8, "chance": 0.1}},
                            ssvae_bench.cell(data, labels, alpha, objective, 0)).resolve()

    wanted = {keep("digits", 50, 3.0, "semi"), keep("digits", 50, None, "classifier")}
    others = {keep("digits", 20, 3.0, "semi"), keep("digits", 20, None, "classifier"),
              keep("digits", 50, 0.1, "semi")}
    text, files = render.render("ssvae", "^digits_n50_alpha3$")
    assert files == wanted  # the baseline of (digits, 50) came along; n20 and alpha 0.1 did not
    assert [r.split(" | ")[2] for r in text.splitlines()[2:4]] == ["— (plain classifier)", "3"]
    assert render.render("ssvae")[1] == wanted | others


def test_the_invariance_view_cites_the_probe_records_it_shows(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    c = fhvae_invariance.cell("test", 10.0, 0)
    run = harness.keep({"train_wall_s": 60.0, "training": {"epochs_run": 30},
                        "metrics": {"eer_static": 0.0, "eer_dynamic": 0.3}}, c).resolve()
    probe = harness.record(tmp_path / "fhvae_invariance" / "probes_test_w10_s0.json",
                           {"metrics": {"speaker_acc_z1": 0.628}}).resolve()
    text, files = render.render("fhvae_invariance")
    assert "| 0.628 |" in text and files == {run, probe}


def test_a_mark_quoted_in_prose_is_not_rendered_and_an_unknown_view_is_refused():
    assert render.marks("see `<!-- table: unified -->` in prose\n") == []
    with pytest.raises(SystemExit, match="no table view 'nope'"):
        render.fill("<!-- table: nope -->\n")
