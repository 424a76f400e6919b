"""FHVAE maths: bound terms, closed-form mu2, discriminative term, hierarchical sampling."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from clihelp import cli, user_error
from factorseq.batching import in_order
from factorseq.errors import FactorseqError, ShapeError
from factorseq.models.fhvae import (
    FHVAE,
    FHVAEConfig,
    HierarchicalBatchSampler,
    closed_form_mu2,
    fhvae_terms,
    sequence_mu2,
)


def tiny(**kw) -> FHVAE:
    cfg = dict(seq_len=4, n_features=3, z1_dim=2, z2_dim=2, hidden=6, layers=1,
               sequences_per_round=3)
    cfg.update(kw)
    torch.manual_seed(0)
    return FHVAE(FHVAEConfig(**cfg))


def logn(x: float, m: float, v: float) -> float:
    """log N(x; m, v) for scalars, written out."""
    return -0.5 * math.log(2 * math.pi * v) - (x - m) ** 2 / (2 * v)


def kl1(m: float, v: float, pm: float, pv: float) -> float:
    """KL(N(m, v) || N(pm, pv)) for scalars."""
    return 0.5 * (math.log(pv / v) + (v + (m - pm) ** 2) / pv - 1)


def test_bound_terms_match_hand_computation():
    # one segment, T=2 frames, D=1 feature, 1-d z1 and z2; every number chosen by hand
    x = torch.tensor([[[0.5], [-1.0]]])
    x_mean = torch.tensor([[[0.0], [-0.5]]])
    x_logvar = torch.tensor([[[0.0], [math.log(2.0)]]])
    z1_m, z1_lv = torch.tensor([[0.3]]), torch.tensor([[math.log(0.5)]])
    z2_m, z2_lv = torch.tensor([[1.0]]), torch.tensor([[math.log(0.1)]])
    cands = torch.tensor([[0.8], [-0.4]])  # mu2 of the segment's sequence is row 0
    target, n_i = torch.tensor([0]), torch.tensor([4.0])
    t = fhvae_terms(x, x_mean, x_logvar, z1_m, z1_lv, z2_m, z2_lv, cands[target], n_i, cands,
                    target)
    log_px = logn(0.5, 0.0, 1.0) + logn(-1.0, -0.5, 2.0)
    kl_z1 = kl1(0.3, 0.5, 0.0, 1.0)
    kl_z2 = kl1(1.0, 0.1, 0.8, 0.25)
    log_pmu2 = logn(0.8, 0.0, 1.0)
    lb = log_px - kl_z1 - kl_z2 + log_pmu2 / 4
    # log p(i=0 | z2) with full Gaussian densities (the constants cancel)
    num = logn(1.0, 0.8, 0.25)
    den = math.log(math.exp(logn(1.0, 0.8, 0.25)) + math.exp(logn(1.0, -0.4, 0.25)))
    for key, want in dict(log_px_z=log_px, kl_z1=kl_z1, kl_z2=kl_z2, log_pmu2=log_pmu2, lb=lb,
                          log_qy=num - den).items():
        assert t[key].item() == pytest.approx(want, rel=1e-5, abs=1e-6), key


def test_discriminative_term_is_log_softmax_of_gaussian_densities():
    g = torch.Generator().manual_seed(1)
    z2 = torch.randn(5, 3, generator=g)
    cands = torch.randn(4, 3, generator=g)
    target = torch.tensor([0, 3, 1, 1, 2])
    zeros = torch.zeros(5, 3)
    t = fhvae_terms(torch.zeros(5, 1, 1), torch.zeros(5, 1, 1), torch.zeros(5, 1, 1),
                    zeros[:, :1], zeros[:, :1], z2, zeros, cands[target], torch.ones(5), cands,
                    target)
    for n in range(5):
        logp = [sum(logn(z2[n, d].item(), cands[j, d].item(), 0.25) for d in range(3))
                for j in range(4)]
        want = logp[target[n]] - math.log(sum(math.exp(v) for v in logp))
        assert t["log_qy"][n].item() == pytest.approx(want, rel=1e-5)


def test_closed_form_mu2_formula_and_map():
    z2 = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-2.0, 4.0], [1.0, 1.0]])
    seq = torch.tensor([7, 7, 3, 7, 3])
    ids, mu2, inv = sequence_mu2(z2, seq)
    assert ids.tolist() == [3, 7]
    assert torch.allclose(mu2[0], (z2[2] + z2[4]) / (2 + 0.5 ** 2 / 1.0 ** 2))
    assert torch.allclose(mu2[1], (z2[0] + z2[1] + z2[3]) / (3 + 0.25))
    assert inv.tolist() == [1, 1, 0, 1, 0]
    # it is the maximiser of log p(mu2) + sum_n log N(z2_n; mu2, 0.5^2): zero gradient there
    m = mu2[1].clone().requires_grad_(True)
    obj = -0.5 * (m ** 2).sum() - ((z2[[0, 1, 3]] - m) ** 2).sum() / (2 * 0.25)
    obj.backward()
    assert torch.allclose(m.grad, torch.zeros(2), atol=1e-5)
    # other priors: sum / (N + var_z2 / var_mu2)
    assert torch.allclose(closed_form_mu2(torch.tensor([[6.0]]), torch.tensor([2.0]), 1.0, 0.5),
                          torch.tensor([[1.5]]))


def test_loss_wiring_matches_terms_and_alpha():
    m = tiny(alpha=10.0)
    x = torch.randn(6, 4, 3)
    seq = torch.tensor([0, 0, 1, 1, 2, 2])
    m.start_round(np.array([0, 1, 2]), x.numpy(), seq.numpy())
    torch.manual_seed(5)
    out = m.loss({"x": x, "seq_id": seq})
    # redo the same draws by hand: eps for z2 first, then eps for z1
    torch.manual_seed(5)
    z2m, z2lv = m.q_z2(x)
    z2 = z2m + torch.randn(z2m.shape) * (0.5 * z2lv).exp()
    z1m, z1lv = m.q_z1(x, z2)
    z1 = z1m + torch.randn(z1m.shape) * (0.5 * z1lv).exp()
    xm, xlv = m.p_x(z1, z2)
    rows = seq  # ids 0, 1, 2 sit in rows 0, 1, 2
    t = fhvae_terms(x, xm, xlv, z1m, z1lv, z2m, z2lv, m.mu2_table[rows], torch.full((6,), 2.0),
                    m.mu2_table, rows)
    want = -(t["lb"] + 10.0 * t["log_qy"]).mean()
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    assert out["log_qy"].item() == pytest.approx(t["log_qy"].mean().item(), rel=1e-5)


def test_kl_weights_reprice_only_their_terms():
    """z2_kl_weight scales KL(z2) in the training objective; z1_kl_warmup ramps KL(z1) from 0
    over its epochs; validation always uses the full z1 weight; logged terms stay unweighted."""
    x = torch.randn(6, 4, 3)
    seq = torch.tensor([0, 0, 1, 1, 2, 2])
    losses = {}
    for name, kw in {"paper": {}, "z2x3": {"z2_kl_weight": 3.0},
                     "mean4": {"z2_mean_weight": 4.0}, "warm": {"z1_kl_warmup": 4},
                     "z1x2": {"z1_kl_weight": 2.0}}.items():
        m = tiny(alpha=10.0, **kw)
        m.start_round(np.array([0, 1, 2]), x.numpy(), seq.numpy())
        m.on_train_epoch_start(1, 10)  # warm-up weight 1/4
        torch.manual_seed(5)
        losses[name] = m.loss({"x": x, "seq_id": seq})
        torch.manual_seed(5)
        losses[name + "_val"] = m.validation_loss({"x": x, "seq_id": seq})
    p = losses["paper"]
    assert losses["z2x3"]["loss"].item() == pytest.approx(
        (p["loss"] + 2.0 * p["kl_z2"]).item(), rel=1e-5)
    assert losses["z1x2"]["loss"].item() == pytest.approx(
        (p["loss"] + p["kl_z1"]).item(), rel=1e-5)
    assert losses["z1x2_val"]["loss"].item() == pytest.approx(losses["z1x2"]["loss"].item())
    assert losses["mean4"]["loss"].item() == pytest.approx(
        (p["loss"] + 3.0 * p["z2_spread"]).item(), rel=1e-5)
    m = tiny()  # the spread is the mean part of KL(z2): KL at the prior's variance
    z2m, mu2 = torch.randn(5, 2), torch.randn(5, 2)
    t = fhvae_terms(torch.zeros(5, 4, 3), torch.zeros(5, 4, 3), torch.zeros(5, 4, 3),
                    torch.zeros(5, 2), torch.zeros(5, 2), z2m, torch.full((5, 2), math.log(0.25)),
                    mu2, torch.ones(5), mu2, torch.arange(5))
    assert torch.allclose(t["z2_spread"], t["kl_z2"], atol=1e-6)
    assert torch.allclose(t["z2_spread"], ((z2m - mu2) ** 2).sum(-1) / (2 * 0.25))
    assert losses["warm"]["loss"].item() == pytest.approx(
        (p["loss"] - 0.75 * p["kl_z1"]).item(), rel=1e-5)
    assert losses["warm_val"]["loss"].item() == pytest.approx(p["loss"].item(), rel=1e-5)
    assert losses["z2x3"]["kl_z2"].item() == pytest.approx(p["kl_z2"].item(), rel=1e-6)
    m = tiny(z1_kl_warmup=4)
    m.on_train_epoch_start(9, 10)
    assert m.kl_z1_weight == 1.0
    with pytest.raises(Exception, match="z2_kl_weight"):
        tiny(z2_kl_weight=0.0)
    with pytest.raises(Exception, match="z2_mean_weight"):
        tiny(z2_mean_weight=0.5)


def test_round_rows_are_closed_form_of_current_encoder():
    m = tiny()
    x = torch.randn(7, 4, 3)
    seq = np.array([5, 9, 5, 9, 9, 2, 5])
    m.start_round(np.array([9, 5]), x.numpy(), seq, index=np.array([0, 1, 2, 3, 4, 6]))
    with torch.no_grad():
        z2 = m.q_z2(x)[0]
    assert m.round_seq[:2].tolist() == [5, 9]
    assert torch.allclose(m.mu2_table[0], z2[[0, 2, 6]].sum(0) / 3.25, atol=1e-6)
    assert torch.allclose(m.mu2_table[1], z2[[1, 3, 4]].sum(0) / 3.25, atol=1e-6)
    assert m.round_nseg[:2].tolist() == [3.0, 3.0]


def test_out_of_round_sequences_use_closed_form_from_batch():
    m = tiny(alpha=0.0)
    x = torch.randn(5, 4, 3)
    seq = torch.tensor([0, 0, 8, 8, 8])  # 0 is in the round, 8 is not (e.g. validation)
    m.start_round(np.array([0]), x[:2].numpy(), seq[:2].numpy())
    with torch.no_grad():
        z2m = m.q_z2(x)[0]
        cands, target, n_i = m._mu2_candidates(z2m, seq)
    assert cands.shape == (2, 2)  # one valid table row + one closed-form row
    assert target.tolist() == [0, 0, 1, 1, 1]
    assert n_i.tolist() == [2.0, 2.0, 3.0, 3.0, 3.0]
    assert torch.allclose(cands[1], z2m[2:].sum(0) / 3.25, atol=1e-6)
    # before any round (Lightning's sanity check) everything is closed-form from the batch
    fresh = tiny()
    cands, target, _ = fresh._mu2_candidates(z2m, seq)
    assert cands.shape[0] == 2 and target.tolist() == [0, 0, 1, 1, 1]


def test_sampler_rounds_cover_every_window_and_bound_the_table():
    m = tiny(sequences_per_round=3)
    n_seq, per = 10, 4
    seq = np.repeat(np.arange(100, 100 + n_seq), per)
    x = np.random.default_rng(0).normal(size=(len(seq), 4, 3)).astype(np.float32)
    s = HierarchicalBatchSampler(m, x, seq, batch_size=5, seed=0)
    assert m.mu2_table.shape == (3, 2)  # rows = sequences_per_round, not n_sequences
    n_batches = len(s)
    seen, yielded = [], 0
    for batch in in_order(s):
        yielded += 1
        in_table = set(m.round_seq[m.round_seq < 2 ** 62].tolist())
        assert set(seq[batch]) <= in_table and len(in_table) <= 3
        with torch.no_grad():  # softmax width never exceeds the round
            cands, _, _ = m._mu2_candidates(m.q_z2(torch.as_tensor(x[batch]))[0],
                                            torch.as_tensor(seq[batch]))
        assert cands.shape[0] <= 3
        seen.extend(batch)
    assert sorted(seen) == list(range(len(seq)))
    assert n_batches == yielded == 3 + 3 + 3 + 1  # rounds of 3, 3, 3, 1 sequences x 4 windows
    # rounds change with the epoch, and the same seed replays the same epochs
    r0, r1 = [list(map(list, s._rounds(e))) for e in (0, 1)]
    assert r0 != r1
    s2 = HierarchicalBatchSampler(m, x, seq, batch_size=5, seed=0)
    assert [list(r) for r in s2._rounds(0)] == r0


def test_model_size_does_not_grow_with_training_sequences():
    small = tiny(sequences_per_round=50, n_sequences=100)
    big = tiny(sequences_per_round=50, n_sequences=100_000)
    n = lambda mod: sum(t.numel() for t in [*mod.parameters(), *mod.buffers()])  # noqa: E731
    assert n(small) == n(big)
    assert tiny(sequences_per_round=50, n_sequences=20).mu2_table.shape[0] == 20


def test_bad_inputs_are_user_errors():
    m = tiny()
    with pytest.raises(FactorseqError, match="sequence id"):
        m.loss({"x": torch.randn(2, 4, 3)})
    with pytest.raises(ShapeError, match="features"):
        m.loss({"x": torch.randn(2, 4, 5), "seq_id": torch.zeros(2, dtype=torch.long)})

    class NoIds:
        x = np.zeros((3, 4, 3), np.float32)
        seq_id = None

    with pytest.raises(FactorseqError, match="sequence id"):
        m.make_batch_sampler(NoIds(), 2, 0)
    with pytest.raises(FactorseqError, match="invalid|alpha"):
        from factorseq.config import build
        build(FHVAEConfig, {"alpha": -1})


def test_shapes_sampling_conversion_and_state_round_trip():
    m = tiny()
    x = torch.randn(6, 4, 3)
    codes = m.encode(x)
    z1, z2 = codes["z1"], codes["z2"]
    assert z1.shape == (6, 2) and z2.shape == (6, 2)
    assert codes.specs["z1"].role == "segment" and codes.specs["z2"].role == "sequence"
    assert m.decode(codes).shape == (6, 4, 3)
    assert torch.allclose(m.decode({"z1": z1, "z2": z2}), m.p_x(z1, z2)[0])
    # generation by factor: z2 of a reference sequence is its closed-form mu2, and new
    # segments draw z2 around it
    ids, seq = m.sequence_codes(codes, torch.zeros(6, dtype=torch.long))
    assert torch.allclose(seq["z2"], m.mu2_of(z2, torch.zeros(6, dtype=torch.long))[1])
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    got = m.generate(3, reference=x, keep=["z2"], generator=g())
    mu2 = seq["z2"].expand(3, -1)
    gen = g()  # the draws in generate's order: z2 around mu2, then z1
    z2_new = mu2 + m.config.z2_std * torch.randn(3, 2, generator=gen)
    want = m._decode({"z2": z2_new, "z1": torch.randn(3, 2, generator=gen)})
    assert torch.allclose(got, want, atol=1e-6)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(m.sample(5, generator=g1), m.sample(5, generator=g2))
    # converting to one's own mu2 is plain reconstruction
    mu2 = torch.tensor([0.3, -0.2])
    assert torch.allclose(m.convert(x, mu2, mu2), m.reconstruct(x), atol=1e-6)
    m.start_round(np.array([1, 2]), x.numpy(), np.array([1, 1, 1, 2, 2, 2]))
    m2 = tiny()
    m2.load_state_dict(m.state_dict())
    assert torch.equal(m2.round_seq, m.round_seq) and torch.equal(m2.mu2_table, m.mu2_table)


def test_discriminative_training_separates_sequences():
    """A few Adam steps on two sequences that differ by an offset: log p(i|z2) rises."""
    m = tiny(sequences_per_round=2, alpha=10.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, 3, generator=g) * 0.3
    x[8:] += 2.0
    seq = np.repeat([0, 1], 8)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    s = HierarchicalBatchSampler(m, x.numpy(), seq, batch_size=16, seed=0)
    first = last = None
    for _ in range(15):
        for b in in_order(s):
            out = m.loss({"x": x[b], "seq_id": torch.as_tensor(seq[b])})
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            first = out["log_qy"].item() if first is None else first
            last = out["log_qy"].item()
    assert last > first and last > -0.3


# --- end to end on the bundled fsdd-strings (tiny: few sequences, 1 epoch, tiny LSTMs) -----

TINY = ["--epochs", "1", "--batch-size", "32", "--set", "train.tensorboard=false",
        "--set", "hidden=8", "--set", "layers=1", "--set", "z1_dim=4", "--set", "z2_dim=4"]
EVAL_TINY = ["--repeats", "1", "--set", "probe_iterations=50", "--set", "probe_max_train=400",
             "--set", "feature_probe_max_train=200", "--set", "feature_probe_iterations=5"]


def _wav(path, wave, sr):
    import soundfile as sf
    sf.write(str(path), wave, sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def fsdd_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fhvae")
    run = root / "run"
    assert cli("train", "fhvae", "--data", "fsdd-strings", "--out", run, *TINY,
               "--set", "data.options={n_sequences: 24}", "--sequences-per-round", 10) == 0
    return root, run


def test_train_fills_the_config_from_the_data(fsdd_run):
    import json
    cfg = json.loads((fsdd_run[1] / "config.json").read_text())
    mc = cfg["model_config"]
    assert (mc["seq_len"], mc["n_features"], mc["n_sequences"]) == (20, 80, 24)
    assert mc["sequences_per_round"] == 10 and cfg["scaler"]["kind"] == "standard"
    out = fsdd_run[0] / "s.npz"
    assert cli("sample", fsdd_run[1], "--n", 3, "--out", out) == 0
    assert np.load(out)["data"].shape == (3, 20, 80)


def test_evaluate_writes_every_key(fsdd_run, capsys):
    import json
    root, run = fsdd_run
    out = root / "metrics.json"
    assert cli("evaluate", run, "--out", out, *EVAL_TINY) == 0
    m = json.loads(out.read_text())
    for key in ("speaker_eer", "speaker_acc_z2", "speaker_acc_z1", "content_acc_z1",
                "content_acc_z2", "conversion_speaker_acc", "conversion_content_acc"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["n_test_sequences"] == 48 and m["n_trials"] == 48 * 47 // 2
    assert "unknown" in user_error(capsys, "evaluate", run, "--out", root / "m2.json",
                                   "--set", "nope=1")


def test_encode_tables(fsdd_run, tmp_path, capsys):
    import pandas as pd
    _, run = fsdd_run
    out = tmp_path / "reps.parquet"
    assert cli("encode", run, "--out", out) == 0
    df = pd.read_parquet(out)
    assert set(df["split"]) == {"train", "test"}
    assert {"seq_id", "window", "speaker", "digit", "z1_3", "z2_3", "z2_seq_3"} <= set(df.columns)
    # mu2 is per sequence: constant over the segments of one sequence
    assert df.groupby(["split", "seq_id"])["z2_seq_0"].nunique().max() == 1
    # a folder of WAV files: one sequence per file (a 16 kHz one is resampled)
    import soundfile as sf
    folder = tmp_path / "wavs"
    folder.mkdir()
    rec = Path(__file__).resolve().parents[1] / "data" / "fsdd" / "recordings"
    w, sr = sf.read(str(rec / "3_theo_7.flac"))
    _wav(folder / "a.wav", w, sr)
    _wav(folder / "b.wav", np.repeat(sf.read(str(rec / "5_lucas_9.flac"))[0], 2), 2 * sr)
    _wav(folder / "c_short.wav", w[:400], sr)  # 50 ms: too short for one segment
    capsys.readouterr()
    assert cli("encode", run, "--data", folder, "--out", tmp_path / "w.csv") == 0
    assert "skipped 1 files too short for one window: c_short.wav" in capsys.readouterr().out
    w = pd.read_csv(tmp_path / "w.csv")
    assert sorted(w["seq_id"].unique()) == [0, 1]
    assert sorted(w["source"].unique()) == ["a.wav", "b.wav"]  # the file each row came from
    # unseen feature dimension, missing output format, existing output
    pd.DataFrame({"sid": [0] * 30, "a": np.arange(30.0)}).to_csv(tmp_path / "t.csv", index=False)
    assert "expects" in user_error(capsys, "encode", run, "--data", tmp_path / "t.csv",
                                   "--out", tmp_path / "t.parquet")
    assert "--force" in user_error(capsys, "encode", run, "--out", out)


def test_convert_writes_a_wav(fsdd_run, tmp_path, capsys):
    import soundfile as sf
    _, run = fsdd_run
    rec = Path(__file__).resolve().parents[1] / "data" / "fsdd" / "recordings"
    src = _wav(tmp_path / "src.wav", *sf.read(str(rec / "7_george_3.flac")))
    w, sr = sf.read(str(rec / "2_nicolas_3.flac"))
    tgt = _wav(tmp_path / "tgt16k.wav", np.repeat(w, 2), 2 * sr)  # other rate: resampled
    out = tmp_path / "conv.wav"
    assert cli("convert", run, "--source", src, "--target", tgt, "--out", out,
               "--n-iter", 3) == 0
    wave, rate = sf.read(str(out))
    assert rate == 8000 and len(wave) > 0.1 * rate and np.isfinite(wave).all()
    _wav(tmp_path / "silent.wav", np.zeros(8000), 8000)
    _wav(tmp_path / "short.wav", w[:800], sr)
    assert "silent" in user_error(capsys, "convert", run, "--source", tmp_path / "silent.wav",
                                  "--target", tgt, "--out", tmp_path / "c1.wav")
    assert "too short" in user_error(capsys, "convert", run, "--source", src, "--target",
                                     tmp_path / "short.wav", "--out", tmp_path / "c2.wav")
    assert "not found" in user_error(capsys, "convert", run, "--source", tmp_path / "no.wav",
                                     "--target", tgt, "--out", tmp_path / "c3.wav")


def test_training_without_sequence_ids_is_a_user_error(tmp_path, capsys):
    import pandas as pd
    pd.DataFrame({"a": np.sin(np.arange(200.0)), "b": np.cos(np.arange(200.0))}).to_csv(
        tmp_path / "s.csv", index=False)
    msg = user_error(capsys, "train", "fhvae", "--data", tmp_path / "s.csv", "--window", 10,
                     "--out", tmp_path / "r", *TINY)
    assert "sequence id" in msg


def test_generic_table_with_an_id_column_trains_and_evaluates(tmp_path):
    """Non-speech series: a long table with a sequence-id column and a sequence-level label."""
    import json

    import pandas as pd
    rng = np.random.default_rng(0)
    rows = []
    for s in range(12):
        level = s % 3  # the sequence-level factor (a 'machine')
        t = np.arange(60)
        rows.append(pd.DataFrame({"machine_run": f"r{s}", "machine": level,
                                  "a": np.sin(t / 4) + level,
                                  "b": rng.normal(size=60) + 2 * level}))
    pd.concat(rows).to_csv(tmp_path / "m.csv", index=False)
    run = tmp_path / "run"
    assert cli("train", "fhvae", "--data", tmp_path / "m.csv", "--id-column", "machine_run",
               "--label-column", "machine", "--window", 10, "--stride", 5, "--out", run,
               *TINY) == 0
    assert cli("encode", run, "--out", tmp_path / "r.parquet") == 0
    df = pd.read_parquet(tmp_path / "r.parquet")
    assert df["seq_id"].nunique() == 12 and json.loads(
        (run / "config.json").read_text())["model_config"]["n_sequences"] == 12
    # no test split: a seeded half of the sequences is held out; the machine is the label y
    out = tmp_path / "m.json"
    assert cli("evaluate", run, "--out", out, *EVAL_TINY, "--set", "speaker_key=y",
               "--set", "content_key=none", "--set", "test_fraction=0.5") == 0
    m = json.loads(out.read_text())
    assert m["n_test_sequences"] == 6 and 0 <= m["speaker_eer"] <= 1  # 6 over 3: a pair
    assert "conversion_speaker_acc" in m and "content_acc_z1" not in m


def test_report_figures(fsdd_run):
    from factorseq.checkpoint import load
    from factorseq.metrics.evaluators import get_evaluator
    run = load(fsdd_run[1])
    ev = get_evaluator("fhvae")(run, repeats=1, tsne_points=60)
    figs = ev.figures()
    titles = [t for t, _ in figs]
    assert len(figs) == 2 and "t-SNE" in titles[0] and "converted" in titles[1]
    assert len(figs[0][1].axes) == 4  # z1 and z2, by speaker and by digit


def test_evaluator_helpers_by_hand():
    from factorseq.metrics.fhvae import cosine_trials, equal_error_rate, overlap_average
    # accept if score >= t: at t = 0.7 one of 3 targets is rejected, one of 3 non-targets taken
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert equal_error_rate(scores, np.array([1, 1, 0, 1, 0, 0])) == pytest.approx(1 / 3)
    assert equal_error_rate(np.array([0.9, 0.8, 0.7, 0.1]),
                            np.array([1, 0, 1, 0])) == pytest.approx(0.5)
    assert equal_error_rate(np.array([0.9, 0.8, 0.2]), np.array([1, 1, 0])) == 0.0
    with pytest.raises(FactorseqError):
        equal_error_rate(np.array([0.1, 0.2]), np.array([1, 1]))
    s, same = cosine_trials(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]), np.array([0, 0, 1]))
    assert np.allclose(s, [1.0, 0.0, 0.0]) and same.tolist() == [True, False, False]
    # two 2-frame segments starting at frames 0 and 1: frame 1 is their mean
    out = overlap_average(np.array([[[1.0], [1.0]], [[3.0], [3.0]]]), np.array([0, 1]))
    assert out[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_generate_new_content_in_a_reference_voice(fsdd_run, tmp_path):
    """generation by factor from the command line and from Python: z2 of a WAV, z1 new."""
    import soundfile as sf

    import factorseq as fs
    from factorseq.io import read_windows
    _, run = fsdd_run
    rec = Path(__file__).resolve().parents[1] / "data" / "fsdd" / "recordings"
    w, sr = sf.read(str(rec / "3_theo_7.flac"))
    voice = _wav(tmp_path / "voice.wav", w, sr)
    out = tmp_path / "new.npz"
    assert cli("generate", run, "--reference", voice, "--keep", "z2", "--n", 6,
               "--out", out) == 0
    r = fs.load(run)
    x = read_windows(out)
    assert x.shape == (6, r.model.config.seq_len, r.model.config.n_features)
    ref = r.load_data(voice).x
    assert np.allclose(x, r.generate(6, reference=ref, keep=["z2"]), atol=1e-4)


def test_z1_adversary_adds_the_reversed_sequence_cross_entropy():
    """Weight 0 is the paper's model parameter for parameter; weight w adds CE(c(E[z1]),
    seq_id) whose gradient reaches the encoders times -w and the head times +1; sequences the
    head has no class for (here id 7 of 3 training sequences) add nothing."""
    assert not any(k.startswith("z1_adversary") for k in tiny(n_sequences=3).state_dict())
    m = tiny(n_sequences=3, z1_adversary_weight=2.5)
    x = torch.randn(6, 4, 3)
    seq = torch.tensor([0, 0, 1, 1, 2, 7])
    m.start_round(np.array([0, 1, 2]), x[:5].numpy(), seq[:5].numpy())
    torch.manual_seed(5)
    on = m.loss({"x": x, "seq_id": seq})
    torch.manual_seed(5)
    off = m.loss({"x": x, "seq_id": seq}, adversary=False)
    torch.manual_seed(5)
    z2m, z2lv = m.q_z2(x)
    z1m = m.q_z1(x, z2m + torch.randn(z2m.shape) * (0.5 * z2lv).exp())[0]
    ce = torch.nn.functional.cross_entropy(m.z1_adversary(z1m[:5]), seq[:5])
    assert (on["loss"] - off["loss"]).item() == pytest.approx(ce.item(), rel=1e-5)
    assert on["z1_adv_loss"].item() == pytest.approx(ce.item(), rel=1e-6)
    assert "z1_adv_acc" in on and "z1_adv_loss" in off
    m.zero_grad()
    (on["loss"] - off["loss"]).backward()
    enc = [p.grad.clone() for p in m.z1_lstm.parameters()]
    head = [p.grad.clone() for p in m.z1_adversary.parameters()]
    m.zero_grad()
    ce.backward()
    for g, p in zip(enc, m.z1_lstm.parameters(), strict=True):
        torch.testing.assert_close(g, -2.5 * p.grad, rtol=1e-4, atol=1e-5)
    for g, p in zip(head, m.z1_adversary.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="n_sequences"):
        tiny(z1_adversary_weight=1.0)
