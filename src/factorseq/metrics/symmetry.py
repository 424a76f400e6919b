"""Symmetry-based disentanglement (Higgins et al. 2018, "Towards a definition of disentangled
representations") of a sequence code, measured by acting on the data.

The world's symmetries factor as G = G_sequence x G_segment: an element of G_sequence changes
a sequence-level factor of a whole sequence (its amplitude, say), one of G_segment changes a
segment-level factor of one segment (its regime), everything else (other factors, noise)
fixed. A code Z = (z_seq, z_seg) is disentangled with respect to that decomposition when each
subgroup moves only its own part: g in G_sequence moves z_seq and leaves z_seg alone, and the
other way round.

Measurement (``symmetry``): for ``actions`` randomly chosen sequences of the data and each
kind of action, draw one factor of that kind and a new value for it, re-generate the windows
it changes (all segments of the sequence for a sequence-level factor, one random segment for
a segment-level one) and encode them. For each role r (the code parts whose role is
``sequence``, ``segment`` or ``latent``, concatenated):

    move_r(action) = mean over changed windows of || z_r(g x) - z_r(x) ||_2
    spread_r       = mean of || z_r(x_a) - z_r(x_b) || over random pairs of windows a, b of
                     different sequences (how far unrelated windows lie apart)
    a_r            = mean over actions of move_r / spread_r

so a_r = 0 when the part ignores the action and about 1 when the action moves it as far as
swapping in an unrelated window. ``ratio`` = a_own / (a_other + 1e-6) where own is the role
of the action (``sequence`` for G_sequence) and other the opposite one: >> 1 means
disentangled in Higgins et al.'s sense, ~1 means both parts move together. Per-factor values
of a_r tell which factor leaks.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import FactorseqError

KINDS = ("sequence", "segment")
EPS = 1e-6  # keeps the ratio finite when the other part does not move at all

# encode(windows (n, T, D)) -> {part name: (n, dims)}
Encoder = Callable[[np.ndarray], dict[str, np.ndarray]]
# act(seq, factor, rng, segment) -> (rows changed, their new windows (len(rows), T, D))
Actor = Callable[[int, str, np.random.Generator, "int | None"], tuple[np.ndarray, np.ndarray]]


def by_role(codes: dict[str, np.ndarray], roles: dict[str, str]) -> dict[str, np.ndarray]:
    """The parts of ``codes`` concatenated per role (sequence, segment, latent), (n, dims)."""
    out: dict[str, list[np.ndarray]] = {}
    for name, z in codes.items():
        role = roles.get(name)
        if role in (*KINDS, "latent"):
            out.setdefault(role, []).append(np.asarray(z, dtype=np.float64).reshape(len(z), -1))
    return {r: np.concatenate(v, axis=1) for r, v in out.items()}


def spread(codes: dict[str, np.ndarray], seq_id: np.ndarray, rng: np.random.Generator,
           pairs: int = 5000) -> dict[str, float]:
    """Mean distance of each role's code between random windows of different sequences."""
    n = len(seq_id)
    a, b = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    keep = seq_id[a] != seq_id[b]
    if not keep.any():
        raise FactorseqError("symmetry needs windows of at least two sequences")
    a, b = a[keep], b[keep]
    return {r: float(np.linalg.norm(z[a] - z[b], axis=1).mean()) for r, z in codes.items()}


def symmetry(encode: Encoder, act: Actor, codes: dict[str, np.ndarray], seq_id: np.ndarray,
             segment_index: np.ndarray, factor_roles: dict[str, str],
             part_roles: dict[str, str], *, actions: int = 100, seed: int = 0,
             pairs: int = 5000) -> dict[str, object]:
    """Symmetry scores (module docstring) of the code ``encode``: ``codes`` = encode(windows)
    of the unchanged windows, whose ``seq_id`` (n,) and ``segment_index`` (n,) are given;
    ``act`` changes them. ``factor_roles`` maps each factor the actor can change to
    ``sequence``/``segment``; ``part_roles`` maps each code part to its role.

    Returns ``{"sequence_action": {...}, "segment_action": {...}}``, each with the normalised
    movement of every role present (``z_seq``, ``z_seg``, ``z_latent``), ``ratio`` (own over
    other; None unless both parts exist), ``per_factor`` and ``n_actions``."""
    rng = np.random.default_rng(seed)
    base = by_role(codes, part_roles)
    if not base:
        raise FactorseqError("the code has no sequence, segment or latent part to measure")
    scale = spread(base, np.asarray(seq_id), rng, pairs)
    ids = np.unique(seq_id)
    chosen = rng.choice(ids, size=min(actions, len(ids)), replace=False)
    out: dict[str, object] = {}
    for kind in KINDS:
        names = [f for f, r in factor_roles.items() if r == kind]
        if not names:
            continue
        moves: dict[str, list[tuple[str, float]]] = {r: [] for r in base}
        for seq in chosen:
            factor = names[int(rng.integers(len(names)))]
            segment = None
            if kind == "segment":
                segs = segment_index[seq_id == seq]
                segment = int(segs[int(rng.integers(len(segs)))])
            rows, x_new = act(int(seq), factor, rng, segment)
            new = by_role(encode(x_new), part_roles)
            for r, z in new.items():
                d = np.linalg.norm(z - base[r][rows], axis=1).mean()
                moves[r].append((factor, float(d / scale[r]) if scale[r] > 0 else 0.0))
        out[f"{kind}_action"] = _summary(kind, moves, names)
    return out


def _summary(kind: str, moves: dict[str, list[tuple[str, float]]], names: list[str]
             ) -> dict[str, object]:
    key = {"sequence": "z_seq", "segment": "z_seg", "latent": "z_latent"}
    res: dict[str, object] = {key[r]: float(np.mean([v for _, v in m])) for r, m in moves.items()}
    other = "segment" if kind == "sequence" else "sequence"
    res["ratio"] = (res[key[kind]] / (res[key[other]] + EPS)
                    if kind in moves and other in moves else None)
    res["per_factor"] = {f: {key[r]: float(np.mean([v for g, v in m if g == f]))
                             for r, m in moves.items() if any(g == f for g, _ in m)}
                         for f in names}
    res["n_actions"] = len(next(iter(moves.values())))
    return res
