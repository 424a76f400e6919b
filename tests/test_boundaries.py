"""Layer boundaries, checked by reading the source (AST), so that they stay fixed:

- nothing outside ``factorseq/models/`` calls a model's private (underscore) methods or any
  other object's private attributes (``x._y`` with ``x`` not ``self``/``cls``), and nothing
  there reaches for a method only one model has (``posterior_means``, ``mu2_of``, ...) on a
  model: evaluators, the CLI, the report and the benchmarks go through the public contract
  (``models/base.py``);
- no split, scaler or evaluator is built outside its one place;
- what replaced the private calls computes what they did (conversion, per-sequence mu2), and
  a named source is read through ``Run.load_data`` as it is.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import torch

from factorseq.models.base import SequenceModel

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "factorseq"
MODELS = SRC / "models"
SCANNED = [p for p in sorted(SRC.rglob("*.py")) if MODELS not in p.parents] + sorted(
    (ROOT / "benchmarks").glob("*.py"))
MODEL_RECEIVER = re.compile(r"(^|\.)\w*model$")  # model, run.model, self.model, base_model
OWN = ("self", "cls", "super()")
# the layers above the models, where no other object's private attribute is touched at all
CALLERS = [p for p in SCANNED if "benchmarks" in p.parts or p.parent.name in (
    "metrics", "commands", "train") or p.name in ("report.py", "cli.py", "run.py",
                                                   "checkpoint.py")]

# benchmarks that study one model's own training parts (not scores of a run): what they
# touch is named here, with the reason, so that a new use is a decision, not a drift
STUDIES = {
    ("unified_table.py", "generator"): "gan vs iwgan generator gradients (gradient_gap)",
    ("unified_table.py", "discriminate"): "gan vs iwgan generator gradients (gradient_gap)",
    ("unified_table.py", "fake"): "gan vs iwgan generator gradients (gradient_gap)",
    ("unified_table.py", "noise"): "gan vs iwgan generator gradients (gradient_gap)",
    ("diffusion_study.py", "denoiser"): "speed of diffusion_ts' denoiser sizes",
    ("diffusion_study.py", "draw"): "diffusion_ts' samplers (ddpm/ddim, steps) compared",
    ("diffusion_study.py", "ema_updates"): "which EMA step a diffusion_ts run was scored at",
    ("fhvae_memory.py", "mu2_table"): "FHVAE's mu2 table size vs the number of sequences",
    ("cpu_levers.py", "denoiser"): "bf16 autocast / torch.compile of the denoiser, timed",
}

# private names the hostile-input harness needs: the forked case ends with os._exit (no
# atexit handlers of the parent run in the child), and the CLI's plugins are loaded once
# before the fork so that each of ~300 cases does not import them again
HARNESS = {("hostile.py", "_exit"), ("hostile.py", "_load_plugins")}


def _trees(paths):
    for p in paths:
        yield p, ast.parse(p.read_text(), str(p))


def _class_names(path: Path, only: str | None = None) -> set[str]:
    """Methods and ``self.x`` attributes of the classes in ``path`` (or of class ``only``)."""
    found: set[str] = set()
    for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)
                and only in (None, n.name)):
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.add(node.name)
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id == "self"):
                found.add(node.attr)
    return found


def _contract_names() -> set[str]:
    """The public contract: what SequenceModel (and nn.Module) define, ``config`` included."""
    names = set(dir(torch.nn.Module)) | _class_names(MODELS / "base.py", "SequenceModel")
    for klass in SequenceModel.__mro__:
        names |= set(vars(klass))
    return {n for n in names if not _private(n)}


def _model_names() -> set[str]:
    """Every method and attribute some model class (or the base) defines."""
    return set().union(*(_class_names(p) for p in sorted(MODELS.glob("*.py"))))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


def _private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def violations(paths=SCANNED, callers=CALLERS) -> list[str]:
    """``file:line: receiver.attr``, outside ``models/``, for every private name of a model
    class used on anything but ``self``, every private attribute of another object in the
    calling layers (``callers``), and every name only some model has used on a model (minus
    :data:`STUDIES`)."""
    models = _model_names()
    model_private = {n for n in models if _private(n)}
    only = {n for n in models - _contract_names() if not _private(n)}
    out = []
    for path, tree in _trees(paths):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            recv = ast.unparse(node.value)
            private = _private(node.attr) and recv not in OWN and (
                node.attr in model_private or path in callers) and (
                path.name, node.attr) not in HARNESS
            specific = (node.attr in only and MODEL_RECEIVER.search(recv)
                        and (path.name, node.attr) not in STUDIES)
            if private or specific:
                out.append(f"{_rel(path)}:{node.lineno}: {recv}.{node.attr}")
    return out


def test_nothing_outside_models_calls_model_internals():
    assert violations() == []


def test_the_scan_catches_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(run, ev, model):\n"
                   "    run.model._encode(1)\n"         # a model's private method
                   "    ev._fidelity_privacy(1)\n"      # another object's private method
                   "    model.posterior_means(1)\n"     # a method only FHVAE has
                   "    self._ok = model.encode(1)\n")  # the contract, own attribute: fine
    got = [v.split(": ")[1] for v in violations([bad], [bad])]
    assert got == ["run.model._encode", "ev._fidelity_privacy", "model.posterior_means"]
    # outside the calling layers only a model's own private names are refused
    got = [v.split(": ")[1] for v in violations([bad], [])]
    assert got == ["run.model._encode", "model.posterior_means"]


# --- one place each: evaluators, scalers, splits ---------------------------------------------
# what builds each, and the only files (relative to src/factorseq) allowed to call it
BUILDERS = {
    "evaluator": ({"get_evaluator()", "choose_evaluator()", "*Evaluator"},
                  {"metrics/evaluators.py"}),  # build_evaluator (Run.evaluator calls it)
    "scaler": ({"make_scaler", "MinMaxScaler", "StandardScaler", "QuantileScaler"},
               {"data/scaler.py", "train/data.py",  # the run's scaler, fitted once (fit_scaler)
                "metrics/evaluators.py"}),  # the TimeGAN protocol's MinMax (protocol_minmax)
    "split": ({"make_split", "random_split", "time_split", "legacy_split"},
              {"data/split.py", "train/fit.py", "run.py"}),  # fit makes it, Run re-reads it
}


def _imported_from_factorseq(tree: ast.AST) -> set[str]:
    return {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and (n.level > 0 or (n.module or "").startswith("factorseq")) for a in n.names}


def _built(node: ast.Call, ours: set[str]) -> str | None:
    """What a call builds, in the terms of :data:`BUILDERS` (None: nothing of theirs)."""
    f = node.func
    if isinstance(f, ast.Call) and isinstance(f.func, ast.Name) and f.func.id in (
            "get_evaluator", "choose_evaluator"):
        return f"{f.func.id}()"
    name = f.id if isinstance(f, ast.Name) else None
    if name is None or name not in ours:
        return None
    return "*Evaluator" if name.endswith("Evaluator") and name != "Evaluator" else name


def built_outside(paths=None) -> list[str]:
    """``file:line: what`` for every evaluator, scaler or split built outside its place."""
    paths = paths if paths is not None else [p for p in sorted(SRC.rglob("*.py"))] + sorted(
        (ROOT / "benchmarks").glob("*.py"))
    out = []
    for path, tree in _trees(paths):
        rel = str(path.relative_to(SRC)) if SRC in path.parents else _rel(path)
        ours = _imported_from_factorseq(tree)
        for node in ast.walk(tree):
            what = _built(node, ours) if isinstance(node, ast.Call) else None
            for kind, (names, places) in BUILDERS.items():
                if what in names and rel not in places:
                    out.append((rel, node.lineno, f"{rel}:{node.lineno}: {kind} built by {what}"))
    return [v for *_, v in sorted(out)]


def test_evaluators_scalers_and_splits_are_built_in_one_place():
    assert built_outside() == []


def test_the_builder_scan_catches_a_stray_build(tmp_path):
    bad = tmp_path / "stray.py"
    bad.write_text("from sklearn.preprocessing import StandardScaler\n"
                   "from factorseq.data.scaler import MinMaxScaler\n"
                   "from factorseq.data.split import random_split\n"
                   "from factorseq.metrics.evaluators import GenerativeEvaluator, get_evaluator\n"
                   "StandardScaler()\n"                     # a probe's sklearn scaler: fine
                   "MinMaxScaler().fit(x)\n"
                   "random_split(10, 2, 0.1, 0)\n"
                   "get_evaluator('fhvae')(run)\n"
                   "GenerativeEvaluator(run, data)\n")
    got = [v.split(": ")[1] for v in built_outside([bad])]
    assert got == ["scaler built by MinMaxScaler", "split built by random_split",
                   "evaluator built by get_evaluator()", "evaluator built by *Evaluator"]


def test_a_named_source_is_read_as_it_is(monkeypatch):
    """``Run.load_data(source)``, the one path evaluators read other data by (the ssvae
    evaluator's ``test=FILE`` too), takes the run's options but none of what the training
    data hid on purpose: every label, every value."""
    import dataclasses
    import types

    from factorseq import registry
    from factorseq.config import build
    from factorseq.data import loaders
    from factorseq.data.config import DataConfig
    from factorseq.data.scaler import MinMaxScaler
    from factorseq.run import Run

    cls = registry.get_model_class("vae_dense")
    model = cls(build(cls.Config, {"seq_len": 6, "n_features": 2}))
    train_cfg = DataConfig(source="sines", window=6, labels=10, remove_rate=0.2)
    run = Run(None, model, MinMaxScaler(), {"data_config": dataclasses.asdict(train_cfg),
                                            "data_schema": {}, "data_split": {}})
    seen = []
    fake = types.SimpleNamespace(n_features=2, seq_len=6)
    monkeypatch.setattr(loaders, "load_data",
                        lambda cfg, strict: seen.append((cfg, strict)) or fake)
    assert run.load_data() is fake and run.load_data("other.csv") is fake
    (own, own_strict), (named, named_strict) = seen
    assert (own.labels, own.remove_rate) == (10, 0.2)  # the training data as it trained
    assert own_strict and not named_strict  # options carried to another source may not apply
    assert (named.source, named.labels, named.remove_rate, named.window) == (
        "other.csv", None, 0.0, 6)


def test_conversion_through_the_public_contract_by_hand():
    """The evaluator's and the CLI's conversion (encode, shift the sequence code, decode) and
    per-sequence means (sequence_codes) are FHVAE's: z2 + mu2_t - mu2_s, closed-form mu2."""
    from factorseq.metrics.fhvae import code_roles, convert, sequence_means
    from factorseq.models.fhvae import FHVAE, FHVAEConfig, sequence_mu2

    torch.manual_seed(0)
    m = FHVAE(FHVAEConfig(seq_len=4, n_features=3, z1_dim=2, z2_dim=2, hidden=6, layers=1,
                          sequences_per_round=3)).eval()
    x = torch.randn(6, 4, 3)
    assert code_roles(m) == {"segment": "z1", "sequence": "z2"}
    codes = m.encode(x)
    seq = np.array([5, 5, 2, 2, 2, 9])
    mu, inv = sequence_means(m, codes, seq)
    _, want, want_inv = sequence_mu2(codes["z2"], torch.as_tensor(seq), m.config.z2_std ** 2,
                                     m.config.mu2_std ** 2)
    assert np.allclose(mu, want.numpy()) and inv.tolist() == want_inv.tolist()
    assert inv.tolist() == [1, 1, 0, 0, 0, 2]  # rows of sorted ids 2, 5, 9
    shift = torch.tensor([0.5, -1.0])
    with torch.no_grad():
        by_hand = m.p_x(codes["z1"], codes["z2"] + shift)[0]
    assert torch.allclose(convert(m, x, shift), by_hand, atol=1e-6)
    assert torch.allclose(convert(m, x, torch.zeros(2)), m.reconstruct(x), atol=1e-6)
    assert not torch.allclose(convert(m, x, shift), m.reconstruct(x), atol=1e-3)
