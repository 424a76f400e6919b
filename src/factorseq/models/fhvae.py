"""Factorized Hierarchical VAE (Hsu, Zhang & Glass, NIPS 2017) with hierarchical sampling
(Hsu & Glass, "Scalable FHVAE", Interspeech 2018).

All tensors are ``(batch, time, features)``: a batch is segments of ``seq_len`` frames cut from
longer sequences, ``seq_id`` (batch,) names each segment's sequence.

Generative model of sequence ``i`` with segments ``x^(n)``:
``mu2_i ~ N(0, I)``, ``z2^(n) ~ N(mu2_i, 0.5^2 I)``, ``z1^(n) ~ N(0, I)``,
``x^(n)_t ~ N(f_mu([z1; z2])_t, exp f_logvar([z1; z2])_t)`` with an LSTM decoder fed
``[z1; z2]`` at every step. Inference: ``q(z2|x)`` an LSTM over the segment, ``q(z1|x, z2)`` an
LSTM over ``[x_t; z2]``; ``mu2`` is a point estimate in a trainable table.

Segment objective (maximised): ``E_q[log p(x|z1,z2)] - KL(q(z1|x,z2)||p(z1))
- KL(q(z2|x)||p(z2|mu2_i)) + log p(mu2_i)/N_i + alpha log p(i|z2)`` with the discriminative
``log p(i|z2) = log p(z2|mu2_i) - log sum_j p(z2|mu2_j)`` evaluated at the mean of q(z2|x).

Hierarchical sampling: the mu2 table has only ``sequences_per_round`` rows. Each round
(:class:`HierarchicalBatchSampler`) picks that many sequences, sets their rows to the closed-form
MAP ``mu2 = sum_n E_q[z2^(n)] / (N + sigma_z2^2 / sigma_mu2^2)`` from the current encoder, and
trains on their segments; the row of each sequence is found through the buffer ``round_seq``.
Segments of sequences outside the round (validation windows, test data) get the same closed
form computed from the batch itself. Memory and the softmax width depend on the round size only
(with ``data.store`` the windows themselves stay on disk and only a round's rows are read).

Training options beyond the paper, all off by default (1, 1, 1, 0): ``z1_kl_weight`` and
``z2_kl_weight`` weigh the two KL terms; ``z2_mean_weight`` weighs only the mean part of the z2
KL (how far a segment's z2 mean strays from mu2_i, i.e. what z2 varies within a sequence,
while sequence-level information stays free there: mu2_i absorbs it); ``z1_kl_warmup`` anneals
KL(z1) in over the first epochs. Weights > 1 give a looser bound, as beta > 1 does.
``z1_adversary_weight`` > 0 adds the library's adversarial invariance term (``nn/invariance.py``):
a head predicts each segment's sequence from the mean of q(z1|x, z2) through a gradient
reversal layer, pushing sequence-level factors (the speaker) out of z1.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..batching import NewRound
from ..config import require
from ..data.store import is_lazy
from ..errors import FactorseqError, ShapeError
from ..nn.densities import log_gauss
from ..nn.invariance import AdversarialInvariance, adversary_lambda, check_adversary
from ..nn.masking import batch_mask, masked_sum
from ..registry import register
from .base import (
    DECODES,
    ENCODES,
    FACTORS,
    GENERATES,
    ModelConfig,
    SequenceModel,
    gaussian_kl,
    reparameterize,
)
from .outputs import CodeSpec, Factor

_PAD = torch.iinfo(torch.int64).max  # unused table rows sort after every real sequence id


@dataclasses.dataclass
class FHVAEConfig(ModelConfig):
    """FHVAE hyper-parameters; defaults are the papers' (2x256 LSTMs, 32-d z1 and z2,
    20-frame segments, alpha 10, 2000 sequences per round, sigma_z2 0.5, sigma_mu2 1)."""

    seq_len: int = 20
    n_features: int = 80
    z1_dim: int = 32
    z2_dim: int = 32
    hidden: int = 256  # LSTM units per layer, in both encoders and the decoder
    layers: int = 2
    alpha: float = 10.0  # weight of the discriminative term log p(i | z2)
    z2_std: float = 0.5  # p(z2 | mu2) = N(mu2, z2_std^2 I)
    mu2_std: float = 1.0  # p(mu2) = N(0, mu2_std^2 I)
    sequences_per_round: int = 2000  # rows of the mu2 table = width of the softmax
    n_sequences: int = 0  # training sequences (filled from data.meta; 0 = unknown)
    encode_batch: int = 512  # segments per forward pass when encoding without gradients
    # epochs over which the weight of KL(q(z1)||p(z1)) rises linearly from 0 to z1_kl_weight
    # (KL annealing, Bowman et al. 2016). Training schedule only: validation uses the full
    # weight. 0 = off. (On fsdd-strings it did not keep the digit out of z2; BENCHMARKS.md.)
    z1_kl_warmup: int = 0
    # weight of KL(q(z1|x,z2)||p(z1)) (1 = the paper's bound); > 1 makes information in z1
    # dearer than the same sequence-level information carried precisely by z2 (the speaker)
    z1_kl_weight: float = 1.0
    # weight of KL(q(z2|x)||p(z2|mu2_i)) (1 = the paper's bound); > 1 taxes what z2 varies
    # within a sequence (segment content) but also z2's precision (beta-VAE-style, on z2)
    z2_kl_weight: float = 1.0
    # weight of the mean part of that KL alone, 0.5 ||E_q[z2] - mu2_i||^2 / z2_std^2: how far a
    # segment's z2 mean strays from its sequence's mu2, without taxing z2's precision (1 = the
    # paper; > 1 is a looser bound, like beta > 1)
    z2_mean_weight: float = 1.0
    # reversal weight of z1's sequence adversary (nn/invariance.py): a head over the
    # n_sequences training sequences reads the mean of q(z1|x,z2); 0 = off (the paper's model);
    # schedule constant | dann (Ganin et al.'s ramp over the epochs)
    z1_adversary_weight: float = 0.0
    z1_adversary_schedule: str = "constant"
    z1_adversary_mode: str = "reverse"  # or confusion (nn/invariance.py)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("z1_dim", "z2_dim", "hidden", "layers", "sequences_per_round",
                     "encode_batch"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        require(self.z2_std > 0 and self.mu2_std > 0, "z2_std and mu2_std must be > 0")
        require(self.n_sequences >= 0, f"n_sequences must be >= 0, got {self.n_sequences}")
        require(self.z1_kl_warmup >= 0, f"z1_kl_warmup must be >= 0, got {self.z1_kl_warmup}")
        require(self.z1_kl_weight > 0, f"z1_kl_weight must be > 0, got {self.z1_kl_weight}")
        require(self.z2_kl_weight > 0, f"z2_kl_weight must be > 0, got {self.z2_kl_weight}")
        require(self.z2_mean_weight >= 1, f"z2_mean_weight must be >= 1 (1 = the paper's "
                f"bound), got {self.z2_mean_weight}")
        check_adversary(self.z1_adversary_weight, self.z1_adversary_schedule, "z1_adversary",
                        self.z1_adversary_mode)
        require(self.z1_adversary_weight == 0 or self.n_sequences >= 2,
                "z1_adversary_weight > 0 needs n_sequences >= 2 (filled from the data)")

    @property
    def table_rows(self) -> int:
        """Rows of the mu2 table: one per sequence of a round, never more than exist."""
        if self.n_sequences > 0:
            return min(self.sequences_per_round, self.n_sequences)
        return self.sequences_per_round


def closed_form_mu2(z2_sum: torch.Tensor, n: torch.Tensor | float, z2_var: float = 0.25,
                    mu2_var: float = 1.0) -> torch.Tensor:
    """MAP of mu2 given N segment codes: posterior of N(0, mu2_var) x prod_n N(z2_n; mu2, z2_var)
    has mean ``sum_n z2_n / (N + z2_var / mu2_var)``. ``z2_sum`` (..., z2_dim), ``n`` (...)."""
    n = torch.as_tensor(n, dtype=z2_sum.dtype, device=z2_sum.device)
    return z2_sum / (n + z2_var / mu2_var).unsqueeze(-1)


def sequence_mu2(z2_mean: torch.Tensor, seq_id: torch.Tensor, z2_var: float = 0.25,
                 mu2_var: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form mu2 of every sequence present: ``z2_mean`` (segments, z2_dim), ``seq_id``
    (segments,). Returns ``(ids (S,), mu2 (S, z2_dim), inverse (segments,))`` where
    ``mu2[inverse[n]]`` is the mu2 of segment n's sequence."""
    ids, inverse = torch.unique(seq_id, return_inverse=True)
    z2_sum = torch.zeros(len(ids), z2_mean.shape[-1], dtype=z2_mean.dtype, device=z2_mean.device)
    z2_sum.index_add_(0, inverse, z2_mean)
    counts = torch.bincount(inverse, minlength=len(ids)).to(z2_mean.dtype)
    return ids, closed_form_mu2(z2_sum, counts, z2_var, mu2_var), inverse


def _last_states(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """Final hidden state of every LSTM layer, concatenated: (batch, layers * hidden)."""
    _, (h, _) = lstm(x)
    return h.transpose(0, 1).reshape(x.shape[0], -1)


@register("fhvae")
class FHVAE(SequenceModel):
    """Factorized Hierarchical VAE on segments ``x`` (batch, time, features) of sequences."""

    Config = FHVAEConfig
    capabilities = frozenset({GENERATES, ENCODES, DECODES, FACTORS})
    handles_missing = True  # log p(x | z1, z2) sums over observed entries only
    evaluator = "fhvae"
    scaler = "standard"

    def __init__(self, config: FHVAEConfig) -> None:
        super().__init__(config)
        c = config
        h = c.hidden * c.layers
        self.z2_lstm = nn.LSTM(c.n_features, c.hidden, c.layers, batch_first=True)
        self.z2_gauss = nn.Linear(h, 2 * c.z2_dim)
        self.z1_lstm = nn.LSTM(c.n_features + c.z2_dim, c.hidden, c.layers, batch_first=True)
        self.z1_gauss = nn.Linear(h, 2 * c.z1_dim)
        self.dec_lstm = nn.LSTM(c.z1_dim + c.z2_dim, c.hidden, c.layers, batch_first=True)
        self.dec_gauss = nn.Linear(c.hidden, 2 * c.n_features)
        k = c.table_rows
        # mu2 of the sequences of the current round; rows are set in closed form at round start
        self.mu2_table = nn.Parameter(torch.zeros(k, c.z2_dim))
        # sorted seq ids of the round (padding _PAD), and their numbers of training segments
        self.register_buffer("round_seq", torch.full((k,), _PAD, dtype=torch.int64))
        self.register_buffer("round_nseg", torch.ones(k))
        self.kl_z1_weight = config.z1_kl_weight  # ramps up from 0 during z1_kl_warmup
        # built last and only when on: weight 0 is the paper's model, parameter for parameter
        self.z1_adversary = (AdversarialInvariance(c.z1_dim, c.n_sequences, c.hidden,
                                                   mode=c.z1_adversary_mode)
                             if c.z1_adversary_weight > 0 else None)
        self.adversary_progress = 0.0  # training progress in [0, 1] for the dann schedule

    def on_train_epoch_start(self, epoch: int, max_epochs: int) -> None:
        w = self.config.z1_kl_warmup
        self.kl_z1_weight = self.config.z1_kl_weight * (min(1.0, epoch / w) if w else 1.0)
        self.adversary_progress = epoch / max(max_epochs, 1)

    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The training objective without the warm-up ramp, so early stopping compares like
        with like; z1's adversary is logged (a held-out probe of z1), not added."""
        return self.loss(batch, kl_z1_weight=self.config.z1_kl_weight, adversary=False)

    # --- inference and generation -------------------------------------------------------
    def q_z2(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z2 | x): mean and log-variance (batch, z2_dim) from x (batch, time, features)."""
        mean, logvar = self.z2_gauss(_last_states(self.z2_lstm, x)).chunk(2, -1)
        return mean, logvar

    def q_z1(self, x: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z1 | x, z2): LSTM over [x_t; z2]; x (batch, time, features), z2 (batch, z2_dim)."""
        inp = torch.cat([x, z2.unsqueeze(1).expand(-1, x.shape[1], -1)], -1)
        mean, logvar = self.z1_gauss(_last_states(self.z1_lstm, inp)).chunk(2, -1)
        return mean, logvar

    def p_x(self, z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x | z1, z2): per-frame mean and log-variance, each (batch, time, features)."""
        inp = torch.cat([z1, z2], -1).unsqueeze(1).expand(-1, self.config.seq_len, -1)
        out, _ = self.dec_lstm(inp)
        mean, logvar = self.dec_gauss(out).chunk(2, -1)
        return mean, logvar

    def code_specs(self) -> list[CodeSpec]:
        c = self.config
        return [CodeSpec("z1", c.z1_dim, "segment", description="segment-level latent (content)"),
                CodeSpec("z2", c.z2_dim, "sequence",
                         description="sequence-level latent (speaker, channel)")]

    def factors(self) -> list[Factor]:
        return [Factor("z1", "code", "segment", "content of each segment"),
                Factor("z2", "code", "sequence", "the sequence's factor: given = its mu2, each "
                       "new segment draws z2 ~ N(mu2, z2_std^2 I)")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior means z1, z2 (batch, dim) of segments x (batch, time, features); z1 is
        inferred given the mean of z2."""
        z2, _ = self.q_z2(x)
        z1, _ = self.q_z1(x, z2)
        return {"z1": z1, "z2": z2}

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of p(x | z1, z2), (batch, time, features)."""
        return self.p_x(codes["z1"], codes["z2"])[0]

    def _sample_codes(self, n: int, given: dict[str, torch.Tensor],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Hierarchical prior: mu2 ~ N(0, mu2_std^2 I) per window (or the given ``z2``, read as
        the sequence's mu2), z2 ~ N(mu2, z2_std^2 I), z1 ~ N(0, I) (or given)."""
        c, g = self.config, dict(generator=generator, device=self.device)
        mu2 = given["z2"] if "z2" in given else c.mu2_std * torch.randn(n, c.z2_dim, **g)
        z2 = mu2 + c.z2_std * torch.randn(n, c.z2_dim, **g)
        z1 = given["z1"] if "z1" in given else torch.randn(n, c.z1_dim, **g)
        return {"z1": z1, "z2": z2}

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """Ancestral samples (n, time, features), decoder means."""
        return self._decode(self._sample_codes(n, {}, generator))

    def sequence_codes(self, codes: Any, seq_id: Any
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Closed-form mu2 of each sequence (Hsu et al.'s posterior of mu2 given its z2s)."""
        ids, mu2, _ = self.mu2_of(torch.as_tensor(codes["z2"]), torch.as_tensor(seq_id))
        return ids, {"z2": mu2}

    @torch.no_grad()
    def posterior_means(self, x: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched, gradient-free :meth:`encode` of many segments: z1 (N, z1_dim), z2 (N, z2).
        ``x`` may be windows on disk (``data.store``): read chunk by chunk."""
        if is_lazy(x):
            parts = [self.posterior_means(c) for c in x.iter_chunks()]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        x = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x)
        self.check_input(x)
        outs = [self._encode(x[i:i + self.config.encode_batch].to(self.device))
                for i in range(0, len(x), self.config.encode_batch)]
        return (torch.cat([o["z1"] for o in outs]).cpu(),
                torch.cat([o["z2"] for o in outs]).cpu())

    @torch.no_grad()
    def convert(self, x: torch.Tensor | np.ndarray, mu2_source: torch.Tensor,
                mu2_target: torch.Tensor) -> torch.Tensor:
        """Sequence-factor conversion of segments x (batch, time, features):
        keep z1, move z2 -> z2 - mu2_source + mu2_target, decode (means)."""
        z1, z2 = self.posterior_means(x)
        shift = torch.as_tensor(mu2_target) - torch.as_tensor(mu2_source)
        outs = [self._decode({"z1": z1[i:i + self.config.encode_batch].to(self.device),
                              "z2": (z2[i:i + self.config.encode_batch] + shift).to(self.device)})
                for i in range(0, len(z1), self.config.encode_batch)]
        return torch.cat(outs).cpu()

    def mu2_of(self, z2_mean: torch.Tensor, seq_id: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Closed-form mu2 per sequence (see :func:`sequence_mu2`) with this model's priors."""
        c = self.config
        return sequence_mu2(z2_mean, seq_id, c.z2_std ** 2, c.mu2_std ** 2)

    # --- hierarchical sampling ----------------------------------------------------------
    @torch.no_grad()
    def start_round(self, seq_ids: np.ndarray, x: np.ndarray, window_seq: np.ndarray,
                    index: np.ndarray | None = None) -> None:
        """Make the table hold the sequences ``seq_ids`` (at most ``table_rows``): their rows are
        the closed-form mu2 of their windows ``x[index]`` (windows, time, features) whose
        sequence ids are ``window_seq[index]``; windows are encoded in chunks, no gradient."""
        k, c = len(self.round_seq), self.config
        ids = np.unique(np.asarray(seq_ids, dtype=np.int64))
        if len(ids) > k:
            raise FactorseqError(f"a round holds at most {k} sequences, got {len(ids)}")
        index = np.arange(len(x)) if index is None else np.asarray(index)
        z2_sum = torch.zeros(len(ids), c.z2_dim)
        counts = torch.zeros(len(ids))
        for i in range(0, len(index), c.encode_batch):
            chunk = index[i:i + c.encode_batch]
            xb = torch.as_tensor(np.asarray(x[chunk], dtype=np.float32)).to(self.device)
            rows = torch.as_tensor(np.searchsorted(ids, np.asarray(window_seq)[chunk]))
            z2_sum.index_add_(0, rows, self.q_z2(xb)[0].cpu())
            counts.index_add_(0, rows, torch.ones(len(rows)))
        self.round_seq.fill_(_PAD)
        self.round_seq[:len(ids)] = torch.as_tensor(ids)
        self.round_nseg.fill_(1.0)
        self.round_nseg[:len(ids)] = counts.clamp(min=1)
        self.mu2_table.data.zero_()
        self.mu2_table.data[:len(ids)] = closed_form_mu2(
            z2_sum, counts, c.z2_std ** 2, c.mu2_std ** 2).to(self.mu2_table.device)

    def make_batch_sampler(self, data: Any, batch_size: int, seed: int
                           ) -> HierarchicalBatchSampler:
        if data.seq_id is None:
            raise FactorseqError("fhvae needs a sequence id for every window (a speech set, a "
                                 "folder of WAV files, or a table with --set data.id_column=COL)")
        return HierarchicalBatchSampler(self, data.x, data.seq_id, batch_size, seed)

    def optimizer_config(self, name: str) -> dict[str, Any]:
        """Adam with beta1 = 0.95, as in the reference implementation of Scalable FHVAE."""
        return {"betas": (0.95, 0.999)}

    # --- objective ----------------------------------------------------------------------
    def _mu2_candidates(self, z2_mean: torch.Tensor, seq: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The softmax's candidate mu2s (table rows of the round, then closed-form mu2s of the
        batch's sequences outside the round), each segment's index into them, and its N_i."""
        k = int((self.round_seq != _PAD).sum())
        table_seq = self.round_seq[:k]
        if k:
            pos = torch.searchsorted(table_seq, seq).clamp(max=k - 1)
            in_round = table_seq[pos] == seq
        else:
            pos = torch.zeros_like(seq)
            in_round = torch.zeros_like(seq, dtype=torch.bool)
        out = ~in_round
        cands, target = self.mu2_table[:k], pos.clone()
        n_i = torch.ones(len(seq), dtype=self.round_nseg.dtype, device=seq.device)
        n_i[in_round] = self.round_nseg[:k][pos[in_round]]
        if out.any():
            # Scalable FHVAE's validation: mu2 estimated in closed form, held constant
            _, mu2_out, inv = self.mu2_of(z2_mean[out].detach(), seq[out])
            cands = torch.cat([cands, mu2_out])
            target[out] = k + inv
            n_i[out] = torch.bincount(inv, minlength=len(mu2_out)).to(n_i.dtype)[inv]
        return cands, target, n_i

    def loss(self, batch: dict[str, torch.Tensor], kl_z1_weight: float | None = None,
             adversary: bool = True) -> dict[str, torch.Tensor]:
        """Negative segment bound minus alpha * log p(i | z2), averaged over the batch of
        segments ``x`` (batch, time, features) with their ``seq_id`` (batch,). KL(z1) enters
        with weight ``kl_z1_weight`` (default: ``z1_kl_weight``, times the warm-up ramp), the
        z2 terms with theirs; the returned terms stay unweighted. With a z1 adversary its
        cross-entropy is added (``adversary``) and logged."""
        x = batch["x"]
        self.check_input(x)
        if batch.get("seq_id") is None:
            raise FactorseqError("fhvae needs the sequence id of every segment (batch['seq_id'])")
        seq = batch["seq_id"].to(torch.int64).to(x.device)
        c = self.config
        z2_mean, z2_logvar = self.q_z2(x)
        z2 = reparameterize(z2_mean, z2_logvar)
        z1_mean, z1_logvar = self.q_z1(x, z2)
        z1 = reparameterize(z1_mean, z1_logvar)
        x_mean, x_logvar = self.p_x(z1, z2)
        cands, target, n_i = self._mu2_candidates(z2_mean, seq)
        mu2 = cands[target]
        terms = fhvae_terms(x, x_mean, x_logvar, z1_mean, z1_logvar, z2_mean, z2_logvar, mu2,
                            n_i, cands, target, c.z2_std, c.mu2_std, batch_mask(batch, x))
        w = self.kl_z1_weight if kl_z1_weight is None else kl_z1_weight
        extra = ((1.0 - w) * terms["kl_z1"] - (c.z2_kl_weight - 1.0) * terms["kl_z2"]
                 - (c.z2_mean_weight - 1.0) * terms["z2_spread"])
        loss = -(terms["lb"] + extra + c.alpha * terms["log_qy"]).mean()
        out = {k: v.mean().detach() for k, v in terms.items()}
        if self.z1_adversary is not None:
            lambd = adversary_lambda(c.z1_adversary_weight, c.z1_adversary_schedule,
                                     self.adversary_progress)
            # sequences the head has no class for (not training ones) are unknown labels
            known = (seq >= 0) & (seq < c.n_sequences)
            adv = self.z1_adversary.term(z1_mean, seq.clamp(0, c.n_sequences - 1), known, lambd)
            out.update(adv.logged("z1_adv"))
            loss = loss + adv.loss if adversary else loss
        return {"loss": loss, **out}


def fhvae_terms(x: torch.Tensor, x_mean: torch.Tensor, x_logvar: torch.Tensor,
                z1_mean: torch.Tensor, z1_logvar: torch.Tensor, z2_mean: torch.Tensor,
                z2_logvar: torch.Tensor, mu2: torch.Tensor, n_i: torch.Tensor,
                cands: torch.Tensor, target: torch.Tensor, z2_std: float = 0.5,
                mu2_std: float = 1.0, x_mask: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
    """Per-segment terms of the FHVAE objective, each (batch,).

    x, x_mean, x_logvar: (batch, time, features); z*_mean/logvar: (batch, dim); mu2: (batch,
    z2_dim) the mu2 of each segment's sequence; n_i: (batch,) its number of segments; cands:
    (S, z2_dim) all mu2 of the softmax; target: (batch,) index of each segment's mu2 in cands;
    x_mask: (batch, time, features), 1 = observed: log p(x|z) is then the log-likelihood of
    the observed entries (:mod:`factorseq.nn.masking`).
    """
    log_px_z = masked_sum(log_gauss(x, x_mean, x_logvar), x_mask, (1, 2))
    kl_z1 = gaussian_kl(z1_mean, z1_logvar)
    kl_z2 = gaussian_kl(z2_mean, z2_logvar, mu2, 2.0 * math.log(z2_std))
    z2_spread = 0.5 * ((z2_mean - mu2) ** 2).sum(-1) / z2_std ** 2  # the mean part of kl_z2
    log_pmu2 = log_gauss(mu2, 0.0, 2.0 * math.log(mu2_std)).sum(-1)
    lb = log_px_z - kl_z1 - kl_z2 + log_pmu2 / n_i
    # log p(z2|mu2_j) up to a constant shared by all j: -||z2 - mu2_j||^2 / (2 sigma^2); the
    # expansion ||z||^2 - 2 z.mu + ||mu||^2 keeps memory at (batch, S), not (batch, S, dim)
    sq = (z2_mean ** 2).sum(-1, keepdim=True) - 2.0 * z2_mean @ cands.T + (cands ** 2).sum(-1)
    logits = -sq / (2.0 * z2_std ** 2)
    log_qy = logits.gather(1, target[:, None]).squeeze(1) - torch.logsumexp(logits, -1)
    return {"lb": lb, "log_px_z": log_px_z, "kl_z1": kl_z1, "kl_z2": kl_z2,
            "z2_spread": z2_spread, "log_pmu2": log_pmu2, "log_qy": log_qy}


class HierarchicalBatchSampler:
    """Batches of window indices, round by round (Scalable FHVAE's hierarchical sampling).

    Every epoch the training sequences are shuffled and cut into rounds of at most
    ``model.table_rows`` sequences; each round's windows are yielded in shuffled mini-batches,
    its first batch as a ``NewRound`` whose ``start`` sets the model's mu2 table in closed form
    for the round's sequences (:meth:`FHVAE.start_round`). The trainer calls it right before
    that batch is trained (``batching.in_order`` does the same in one loop); iterating never
    touches the model. Each epoch sees every window once; an epoch is a function of
    (seed, epoch) (``set_epoch``; without it each pass is the next epoch); state is O(windows)
    indices only.
    """

    def __init__(self, model: FHVAE, x: np.ndarray, seq_id: np.ndarray, batch_size: int,
                 seed: int) -> None:
        if len(seq_id) != len(x):
            raise ShapeError(f"seq_id has length {len(seq_id)} but x has {len(x)} windows")
        self.model, self.x, self.batch_size, self.seed = model, x, int(batch_size), seed
        self.seq_id = np.asarray(seq_id, dtype=np.int64)
        # windows grouped by sequence: order sorts windows by id, starts/ends delimit groups
        self.order = np.argsort(self.seq_id, kind="stable")
        self.ids, self.starts, self.counts = np.unique(self.seq_id[self.order],
                                                       return_index=True, return_counts=True)
        self.rows = len(model.round_seq)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rounds(self, epoch: int) -> list[np.ndarray]:
        """Positions (into self.ids) of the sequences of each round of an epoch."""
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.ids))
        return [perm[i:i + self.rows] for i in range(0, len(perm), self.rows)]

    def __len__(self) -> int:
        return sum(math.ceil(int(self.counts[r].sum()) / self.batch_size)
                   for r in self._rounds(self.epoch))

    def __iter__(self) -> Iterator[np.ndarray | NewRound]:
        epoch = self.epoch
        self.epoch += 1
        rng = np.random.default_rng([self.seed, epoch, 1])
        for r in self._rounds(epoch):
            idx = np.concatenate([self.order[s:s + n]
                                  for s, n in zip(self.starts[r], self.counts[r], strict=True)])
            start = functools.partial(self.model.start_round, self.ids[r], self.x, self.seq_id,
                                      idx)
            idx = rng.permutation(idx)
            for i in range(0, len(idx), self.batch_size):
                batch = idx[i:i + self.batch_size]
                yield NewRound(batch, start) if i == 0 else batch
