"""The Sprites protocol (metrics/swap.py, metrics/judge.py) on constructed cases.

Tiny "sprites": 3x8x8 frames, 4 per sequence; a 2x2 square whose colour channel is the
``skin`` (3 classes), a top stripe whose brightness is the ``top`` (2 classes), and whose path
is the ``motion`` (right, left, down). Two oracle models built through the contract: one whose
generate really keeps the kept factor (a perfect swap), one whose decoder ignores its static
code. Probability tables for IS / H(y|x) / H(y) by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from factorseq.data.container import SequenceData
from factorseq.data.scaler import Scaler
from factorseq.errors import FactorseqError
from factorseq.metrics.evaluators import choose_evaluator, get_evaluator
from factorseq.metrics.factor_evaluator import factor_roles
from factorseq.metrics.swap import SwapEvaluator, inception_scores
from factorseq.models.base import DECODES, ENCODES, FACTORS, ModelConfig, SequenceModel
from factorseq.models.outputs import CodeSpec, Factor
from factorseq.run import Run

C, H, W, T = 3, 8, 8, 4
D = C * H * W
JUDGE = dict(judge_epochs=40, judge_min_epochs=40, judge_channels=4, judge_hidden=16,
             judge_batch_size=32, judge_lr=3e-3)


def path(motion: int) -> list[tuple[int, int]]:
    """(row, column) of the square's top-left corner at each step of a motion."""
    return [((3, 1 + t), (3, 5 - t), (2 + t, 3))[motion] for t in range(T)]


def render(skin: int, top: int, corners: list[tuple[int, int]]) -> np.ndarray:
    """One sequence (T, C*H*W): the top stripe, the square at each corner."""
    x = np.zeros((T, C, H, W), np.float32)
    x[:, :, 0, :] = 0.25 * (top + 1)
    for t, (r, c) in enumerate(corners):
        x[t, skin, r:r + 2, c:c + 2] = 1.0
    return x.reshape(T, D)


def sprites_like(copies: int, noise: float, seed: int) -> SequenceData:
    rng = np.random.default_rng(seed)
    rows = [(s, t, m) for _ in range(copies) for s in range(3) for t in range(2)
            for m in range(3)]
    x = np.stack([render(s, t, path(m)) for s, t, m in rows])
    x = np.clip(x + noise * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    a = np.array(rows)
    extras = {"skin": a[:, 0], "top": a[:, 1], "motion": a[:, 2]}
    meta = {"frame_shape": [C, H, W],
            "factors": {"static": ["skin", "top"], "dynamic": ["motion"]},
            "factor_classes": {"skin": 3, "top": 2, "motion": 3}}
    return SequenceData(x, y=a[:, 2], seq_id=np.arange(len(a)), extras=extras, meta=meta,
                        name="tiny-sprites")


@pytest.fixture(scope="module")
def data() -> SequenceData:
    train = sprites_like(8, 0.03, 0)
    train.test = sprites_like(2, 0.03, 1)
    return train


class Oracle(SequenceModel):
    """Reads each factor off the pixels (f = skin, top; z = the square's corner per step) and
    draws them back: generation by factor that keeps exactly what it is asked to keep."""

    name = "oracle"
    capabilities = frozenset({ENCODES, DECODES, FACTORS})
    scaler = "none"

    def loss(self, batch):
        raise NotImplementedError

    def code_specs(self):
        return [CodeSpec("f", 2, "sequence"), CodeSpec("z", 2, "steps")]

    def factors(self):
        return [Factor("f", "code", "sequence"), Factor("z", "code", "segment")]

    def _encode(self, x):
        img = x.reshape(len(x), T, C, H, W)
        skin = img[:, :, :, 1:].sum((1, 3, 4)).argmax(1).float()
        top = (img[:, :, 0, 0].mean((1, 2)) / 0.25 - 1).round()
        body = (img[:, :, :, 1:].amax(2) > 0.5).float()  # (n, T, H - 1, W): the square
        rows = torch.arange(H - 1, dtype=torch.float32)[:, None] + 1
        cols = torch.arange(W, dtype=torch.float32)[None, :]
        mass = body.sum((2, 3))
        corner = torch.stack([(body * rows).sum((2, 3)) / mass,
                              (body * cols).sum((2, 3)) / mass], -1) - 0.5
        return {"f": torch.stack([skin, top], 1), "z": corner}

    def _decode(self, codes):
        f, z = codes["f"].round().long(), codes["z"].round().long()
        return torch.as_tensor(np.stack([render(int(a), int(b), [tuple(c) for c in zi.tolist()])
                                         for (a, b), zi in zip(f.tolist(), z, strict=True)]))

    def _sample_codes(self, n, given, generator):
        g = generator or torch.Generator().manual_seed(0)
        f = given.get("f")
        if f is None:
            f = torch.stack([torch.randint(0, 3, (n,), generator=g),
                             torch.randint(0, 2, (n,), generator=g)], 1).float()
        z = given.get("z")
        if z is None:
            z = torch.tensor([path(int(m)) for m in torch.randint(0, 3, (n,), generator=g)],
                             dtype=torch.float32)
        return {"f": f, "z": z}


class IgnoresStatic(Oracle):
    """The same, but its decoder draws every sequence with skin 0 and top 0."""

    def _decode(self, codes):
        return super()._decode({"f": torch.zeros_like(codes["f"]), "z": codes["z"]})


def run_of(cls: type) -> Run:
    model = cls(ModelConfig(seq_len=T, n_features=D)).eval()
    return Run(path=None, model=model, scaler=Scaler(), config={})


def scores(run: Run, data: SequenceData, tmp_path) -> dict:
    ev = SwapEvaluator(run, data, judge_cache=str(tmp_path / "judges"), **JUDGE)
    return ev.evaluate()


def entropy(row: list[float]) -> float:
    return -sum(p * math.log(p) for p in row if p > 0)


def test_inception_score_and_entropies_by_hand():
    table = [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]
    p_y = [(0.9 + 0.2 + 0.5) / 3, (0.1 + 0.8 + 0.5) / 3]
    kl = [sum(p * math.log(p / q) for p, q in zip(row, p_y, strict=True)) for row in table]
    got = inception_scores(np.array(table))
    assert got["inception_score"] == pytest.approx(math.exp(sum(kl) / 3))
    assert got["h_y_given_x"] == pytest.approx(sum(entropy(r) for r in table) / 3)
    assert got["h_y"] == pytest.approx(entropy(p_y))
    # E_x KL(p(y|x) || p(y)) = H(y) - H(y|x)
    assert math.log(got["inception_score"]) == pytest.approx(got["h_y"] - got["h_y_given_x"])


def test_extreme_tables():
    sure = inception_scores(np.eye(9))  # every class once, each for sure: IS = 9
    assert sure["inception_score"] == pytest.approx(9.0)
    assert sure["h_y_given_x"] == 0.0 and sure["h_y"] == pytest.approx(math.log(9))
    one = inception_scores(np.tile([0.0, 1.0, 0.0], (5, 1)))  # always the same class: IS = 1
    assert one["inception_score"] == pytest.approx(1.0) and one["h_y"] == 0.0
    flat = inception_scores(np.full((4, 3), 1 / 3))  # unsure: IS = 1, H(y|x) = ln 3
    assert flat["inception_score"] == pytest.approx(1.0)
    assert flat["h_y_given_x"] == pytest.approx(math.log(3))


def test_factor_layouts():
    assert factor_roles({"static": ["a", "b"], "dynamic": ["m"]}) == {
        "a": "sequence", "b": "sequence", "m": "segment"}
    assert factor_roles({"speaker": "sequence", "digit": "segment"}) == {
        "speaker": "sequence", "digit": "segment"}
    assert factor_roles(None) == {}


def test_the_oracle_encodes_what_it_drew(data):
    model = run_of(Oracle).model
    x = torch.as_tensor(data.test.x[:6])
    again = model.decode(model.encode(x))
    assert torch.equal(again, torch.as_tensor(np.stack([render(s, t, path(m)) for s, t, m in
                       zip(data.test.extras["skin"][:6], data.test.extras["top"][:6],
                           data.test.extras["motion"][:6], strict=True)])))


def test_a_perfect_swap_scores_the_judges_accuracy(data, tmp_path):
    out = scores(run_of(Oracle), data, tmp_path)
    assert min(out["judge_test_accuracy"].values()) >= 0.95
    motion = out["static_redrawn"]["motion"]
    assert motion["accuracy"] >= 0.95
    assert motion["h_y_given_x"] < 0.3 and motion["h_y"] > math.log(3) - 0.05
    assert motion["inception_score"] > 2.5 and motion["h_y_max"] == pytest.approx(math.log(3))
    assert out["dynamic_redrawn"]["mean_attribute_accuracy"] >= 0.95
    # what was redrawn is not kept: the prior's draws agree with the reference by chance
    assert out["static_redrawn"]["attribute_accuracy"]["skin"] < 0.7
    assert out["dynamic_redrawn"]["dynamic_accuracy"]["motion"] < 0.7
    assert out["n_test"] == data.test.n_windows and out["kept_dynamic"] == ["z"]


def test_a_decoder_that_ignores_its_static_code_fails_the_attribute_swap(data, tmp_path):
    out = scores(run_of(IgnoresStatic), data, tmp_path)
    attr = out["dynamic_redrawn"]["attribute_accuracy"]
    assert attr["skin"] == pytest.approx(1 / 3, abs=0.1) and attr["top"] == pytest.approx(
        0.5, abs=0.1)
    assert out["dynamic_redrawn"]["mean_attribute_accuracy"] < 0.55
    assert out["static_redrawn"]["motion"]["accuracy"] >= 0.95  # its dynamics are fine


def test_the_judge_is_cached_as_safetensors_and_json(data, tmp_path):
    first = scores(run_of(Oracle), data, tmp_path)
    second = scores(run_of(IgnoresStatic), data, tmp_path)
    assert not first["judge"]["cached"] and second["judge"]["cached"]
    assert first["judge_test_accuracy"] == second["judge_test_accuracy"]
    files = sorted(p.suffix for p in (tmp_path / "judges").iterdir())
    assert files == [".json", ".safetensors"]
    for key in ("epochs_run", "holdout_accuracy", "below_target"):  # kept with the cache
        assert first["judge"][key] == second["judge"][key]


def test_the_judge_trains_until_every_head_reaches_its_target(data):
    """Stops at the first epoch where every head scores the target on the held-out share;
    an unreachable target runs every epoch and names the heads short of it."""
    from factorseq.metrics.judge import JudgeConfig, train_judge
    names = ["skin", "motion"]
    labels = {k: data.extras[k] for k in names}
    classes = {k: int(labels[k].max()) + 1 for k in names}
    small = dict(channels=4, hidden=16, batch_size=32, lr=3e-3)
    _, easy = train_judge(data.x, labels, [C, H, W], classes,
                          JudgeConfig(epochs=30, min_epochs=1, target=0.9, **small))
    assert easy["epochs_run"] < 30 and easy["below_target"] == []
    assert min(easy["holdout_accuracy"].values()) >= 0.9
    _, hard = train_judge(data.x, labels, [C, H, W], classes,
                          JudgeConfig(epochs=2, min_epochs=1, target=1.0, **small))
    assert hard["epochs_run"] == 2
    assert hard["below_target"] == sorted(k for k, v in hard["holdout_accuracy"].items()
                                          if v < 1.0) != []


def test_the_protocol_is_chosen_by_the_data_and_the_models_capabilities(data):
    oracle = run_of(Oracle)
    assert choose_evaluator(oracle, data) is SwapEvaluator
    assert choose_evaluator(oracle, data, "generative") is get_evaluator("generative")
    plain = SequenceData(data.x, extras=dict(data.extras), meta={"frame_shape": [C, H, W]})
    assert choose_evaluator(oracle, plain) is get_evaluator(oracle.model.evaluator)


def test_user_errors(data):
    oracle = run_of(Oracle)
    with pytest.raises(FactorseqError, match="batch must be >= 1"):
        SwapEvaluator(oracle, data, batch=0)
    with pytest.raises(FactorseqError, match="unknown sprites evaluator option"):
        SwapEvaluator(oracle, data, judge_epoch=3)
    no_test = SequenceData(data.x, extras=dict(data.extras), meta=dict(data.meta))
    with pytest.raises(FactorseqError, match="no test split"):
        SwapEvaluator(oracle, no_test)
    with pytest.raises(FactorseqError, match="takes no --samples"):
        SwapEvaluator(oracle, data, samples=data.x)


def test_cli_trains_a_conv_dsvae_on_sprites_and_scores_it_by_the_protocol(tmp_path, monkeypatch,
                                                                        capsys):
    """End to end on 24 characters at 16 x 16: ``evaluate`` picks the protocol by itself (the
    data declares it, dsvae has static and dynamic codes); a model without them is refused."""
    import json

    from clihelp import cli, user_error

    monkeypatch.setenv("FACTORSEQ_CACHE", str(tmp_path / "cache"))
    cfg = tmp_path / "sprites.yaml"
    cfg.write_text("data:\n  options:\n    size: 16\n    characters: 24\n")
    run = tmp_path / "run"
    assert cli("train", "dsvae", "--out", run, "--data", "sprites", "--config", cfg,
               "--epochs", 1, "--set", "frame_net=conv", "--set", "hidden=16",
               "--set", "frame_channels=4", "--set", "f_dim=4", "--set", "z_dim=4") == 0
    out = tmp_path / "m.json"
    assert cli("evaluate", run, "--out", out, "--set", "judge_epochs=1",
               "--set", "judge_channels=4", "--set", "judge_hidden=8") == 0
    m = json.loads(out.read_text())
    assert set(m["judge_test_accuracy"]) == {"skin", "top", "pants", "hair", "motion"}
    assert m["n_test"] == 9 * 5 and m["kept_static"] == ["f"] and m["kept_dynamic"] == ["z"]
    assert 1.0 <= m["static_redrawn"]["motion"]["inception_score"] <= 9.0
    assert (tmp_path / "cache" / "judges" / f"{m['judge']['key']}.json").is_file()
    plain = tmp_path / "ae"
    assert cli("train", "ae", "--out", plain, "--data", "sprites", "--config", cfg,
               "--epochs", 1, "--set", "hidden=8") == 0
    err = user_error(capsys, "evaluate", plain, "--out", tmp_path / "ae.json",
                     "--evaluator", "sprites")
    assert "cannot generate by factor" in err


def test_the_judge_key_follows_the_data_and_the_settings(data):
    from factorseq.metrics.judge import JudgeConfig, judge_key

    labels = {k: data.extras[k] for k in ("skin", "top", "motion")}
    classes = {"skin": 3, "top": 2, "motion": 3}
    key = judge_key(data.x, labels, [C, H, W], classes, JudgeConfig(), "tiny")
    assert key == judge_key(data.x.copy(), dict(labels), [C, H, W], classes, JudgeConfig(),
                            "tiny")
    moved = dict(labels, top=np.roll(labels["top"], 1))
    assert key != judge_key(data.x, moved, [C, H, W], classes, JudgeConfig(), "tiny")
    assert key != judge_key(data.x, labels, [C, H, W], classes, JudgeConfig(epochs=7), "tiny")
    assert key != judge_key(data.x + 0.01, labels, [C, H, W], classes, JudgeConfig(), "tiny")
