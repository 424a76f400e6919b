"""Speaker EER and probes on the static and the dynamic codes of any run that encodes, read by
code role (a first measurement for issue #12 until the generic disentanglement evaluator lands).

For the data's held-out split (fsdd-strings: takes 0-4) every test sequence gets one vector per
role: the ``sequence``-role codes through ``model.sequence_codes`` (DSVAE: mean of f over the
sequence's windows; FHVAE: closed-form mu2) and the ``segment``-role codes averaged over the
sequence's windows (DSVAE's z_mean, FHVAE's z1), and the ``steps``-role codes flattened to
(time * dim) per window (DSVAE's z: what a probe of content can read with the order kept).
``eer_<name>``: speaker verification EER over
all pairs of test sequences, cosine scores (the fhvae evaluator's protocol). Probes
(``<task>_acc_<name>``): logistic regression fit on training windows' codes, scored on test
windows. ``features``: the same on the windows' scaled features averaged over time (a
reference point: how easy the task is without a model).

    python benchmarks/static_dynamic_eer.py RUN [RUN ...] [--probe-max-train 20000]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import factorseq as fs
from factorseq.metrics.fhvae import cosine_trials, equal_error_rate, fit_probe


def sequence_means(v: np.ndarray, seq_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of rows ``v`` (n, d) per sequence: (sorted ids (S,), means (S, d))."""
    ids, inv = np.unique(seq_id, return_inverse=True)
    out = np.zeros((len(ids), v.shape[1]))
    np.add.at(out, inv, v)
    return ids, out / np.bincount(inv)[:, None]


def per_sequence_label(labels: np.ndarray, seq_id: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return np.array([np.bincount(labels[seq_id == s]).argmax() for s in ids])


def views(run, d) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (per-window codes (n, dim), per-sequence codes (S, dim)) of data ``d``."""
    codes = run.encode(d.x)
    out = {}
    ids, seq = run.model.sequence_codes({k: torch.as_tensor(v) for k, v in codes.items()},
                                        d.seq_id)
    for name, spec in codes.specs.items():
        if spec.role == "sequence":
            out[name] = (np.asarray(codes[name]), np.asarray(seq[name]))
        elif spec.role in ("segment", "steps"):  # per-step codes flattened (time * dim)
            v = np.asarray(codes[name]).reshape(len(d.x), -1)
            out[name] = (v, sequence_means(v, d.seq_id)[1])
    feats = np.asarray(run.scaler.transform(d.x)).mean(1)
    out["features"] = (feats, sequence_means(feats, d.seq_id)[1])
    return out


def score(run_dir: str, probe_max_train: int) -> dict:
    run = fs.load(run_dir)
    data = run.load_data()
    train, test = data, data.test
    tr, te = views(run, train), views(run, test)
    ids = np.unique(test.seq_id)
    spk_seq = per_sequence_label(test.extras["speaker"], test.seq_id, ids)
    rng = np.random.default_rng(0)
    idx = np.arange(train.n_windows)
    if len(idx) > probe_max_train:
        idx = np.sort(rng.choice(len(idx), probe_max_train, replace=False))
    res = {"run": run_dir, "model": run.model.name,
           "roles": {s.name: s.role for s in run.model.code_specs()}}
    for name in te:
        scores, target = cosine_trials(te[name][1], spk_seq)
        res[f"eer_{name}"] = equal_error_rate(scores, target)
        for task in ("speaker", "digit"):
            probe = fit_probe(tr[name][0][idx], np.asarray(train.extras[task])[idx])
            res[f"{task}_acc_{name}"] = float(np.mean(
                probe.predict(te[name][0]) == np.asarray(test.extras[task])))
    res["n_test_sequences"], res["n_trials"] = len(ids), int(len(ids) * (len(ids) - 1) / 2)
    res["training"] = run.config["training"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--probe-max-train", type=int, default=20000)
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    results = [score(r, a.probe_max_train) for r in a.runs]
    text = json.dumps(results, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
