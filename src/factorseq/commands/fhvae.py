"""FHVAE command: ``convert`` (voice conversion of a WAV to another speaker; the codes of a data
set come from the generic ``encode`` command).

Segments are (segments, time, features) log-mel windows; a WAV becomes frames (frames, n_mels)
with the run's own front end, cut into ``seq_len``-frame segments every ``segment_hop`` frames.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from ..cli import Flag, app
from ..errors import FactorseqError

Opt = typer.Option
TRIM_DB = 30.0  # the bundled FSDD sets trim leading/trailing silence at 30 dB; so does convert


def _fhvae_run(run_dir: Path):
    from ..checkpoint import load
    from ..models.fhvae import FHVAE

    run = load(run_dir)
    if not isinstance(run.model, FHVAE):
        raise FactorseqError(f"{run_dir} holds a {run.config['model']} run; this command needs "
                             "an fhvae run")
    return run


def _front_end(run):
    """The log-mel front end the run's data was made with (from its schema's meta)."""
    from ..data.speech import front_end_from_meta

    meta = run.schema.get("meta", {})
    if "n_mels" not in meta or "sample_rate" not in meta:
        raise FactorseqError("this run was not trained on log-mel speech features (its data "
                             "schema has no front end); convert needs a speech run")
    fe = front_end_from_meta(meta)
    if fe.n_mels != run.model.config.n_features:
        raise FactorseqError(f"front end has {fe.n_mels} mels but the model expects "
                             f"{run.model.config.n_features} features")
    return fe


def wav_segments(path: Path, run, fe) -> tuple[np.ndarray, np.ndarray]:
    """A WAV as scaled segments (n, seq_len, n_mels) and their first frames (n,); the last
    segment is aligned to the end so that every frame is covered."""
    from ..data.speech import log_mel, read_wav, trim_silence

    seq_len = run.model.config.seq_len
    hop = int(run.schema.get("meta", {}).get("segment_hop", seq_len))
    wave, sr = read_wav(path, expected_sr=fe.sample_rate)  # resamples other rates
    feats = log_mel(trim_silence(wave, sr, TRIM_DB), sr, fe)
    if len(feats) < seq_len:
        raise FactorseqError(f"{path} is too short: {len(feats)} frames after trimming "
                             f"silence, fewer than one segment of {seq_len} frames "
                             f"({seq_len * fe.hop_ms / 1000:g} s)")
    starts = list(range(0, len(feats) - seq_len + 1, hop))
    if starts[-1] != len(feats) - seq_len:
        starts.append(len(feats) - seq_len)
    segs = np.stack([feats[s:s + seq_len] for s in starts])
    return run.scaler.transform(segs), np.asarray(starts)


@app.command("convert")
def convert(
    run: Annotated[Path, typer.Argument(help="fhvae run directory")],
    source: Annotated[Path, Opt("--source", help="WAV whose content is kept")],
    target: Annotated[Path, Opt("--target", help="WAV of the speaker to convert to")],
    out: Annotated[Path, Opt("--out", help="converted WAV to write")],
    n_iter: Annotated[int, Opt("--n-iter", help="Griffin-Lim iterations")] = 60,
    seed: Annotated[int, Opt()] = 0,
    force: Annotated[bool, Flag("--force", help="overwrite an existing output")] = False,
) -> None:
    """Say SOURCE's words in TARGET's voice: z2 -> z2 - mu2(source) + mu2(target), decode the
    log-mel segments, overlap-average them and vocode with Griffin-Lim."""
    from ..data.speech import griffin_lim, write_wav
    from ..io import atomic_output, check_output
    from ..metrics.fhvae import convert, overlap_average, sequence_means

    out = check_output(out, force, formats=(".wav", ".flac"))
    if n_iter < 1:
        raise FactorseqError(f"--n-iter must be >= 1, got {n_iter}")
    r = _fhvae_run(run)
    fe = _front_end(r)
    model = r.model
    src, starts = wav_segments(source, r, fe)
    tgt, _ = wav_segments(target, r, fe)
    mu2 = {}  # each WAV is one sequence: its closed-form mu2 (the contract's sequence_codes)
    for name, segs in (("source", src), ("target", tgt)):
        mu2[name] = torch.as_tensor(sequence_means(model, model.encode(segs),
                                                   np.zeros(len(segs), dtype=np.int64))[0][0])
    conv = convert(model, src, mu2["target"] - mu2["source"]).numpy()
    frames = overlap_average(r.scaler.inverse_transform(conv), starts)
    wave = griffin_lim(frames, cfg=fe, n_iter=n_iter, seed=seed)
    peak = float(np.abs(wave).max())
    if peak > 0.99:  # Griffin-Lim's level follows the decoded energy: keep it unclipped
        wave = wave * (0.99 / peak)
    with atomic_output(out) as tmp:
        write_wav(tmp, wave, fe.sample_rate)
    print(f"wrote {out} ({len(wave) / fe.sample_rate:.2f} s, {len(frames)} frames, "
          f"{len(src)} segments; |mu2 shift| = "
          f"{float(torch.linalg.norm(mu2['target'] - mu2['source'])):.2f})")
