"""Semi-supervised disentangling VAE (Siddharth et al., NIPS 2017, "Learning Disentangled
Representations with Semi-Supervised Deep Generative Models").

Generative model: ``p(y) = Cat(1/K)``, ``p(z) = N(0, I)``, ``p(x | y, z)`` (Gaussian with a
learned per-feature variance, or Bernoulli for data in [0, 1]); ``x`` is (batch, time,
features). Inference is either ``q(y | x) q(z | x, y)`` ("y_then_z") or ``q(z | x) q(y | z, x)``
("z_then_y", which makes the importance weights of the labelled term non-trivial).

Objective (maximised, per row; the loss is its negative batch mean):
- unlabelled rows: the ELBO of ``log p(x)`` with ``y`` summed out exactly over the K classes
  (``y_estimator="enumerate"``) or replaced by a Gumbel-softmax relaxation ("relaxed");
- labelled rows (``gamma`` x): ``E_{q(z|x,y)}[log p(x,y,z) / q(y,z|x)] + (1 + alpha) log q(y|x)``
  estimated with S samples ``z_s`` from a proposal ``r(z)`` and self-normalised weights
  ``w_s = q(y, z_s | x) / r(z_s)``: ``sum_s wbar_s log(p(x,y,z_s) / q(y,z_s|x))
  + (1 + alpha) log(mean_s w_s)``. With "z_then_y" ``r = q(z|x)`` so ``w_s = q(y | z_s, x)``;
  with "y_then_z" ``r = q(z|x,y)`` so the weights are uniform and ``mean_s w_s = q(y|x)``.
``objective="classifier"`` trains only q(y|x) by cross-entropy on the labelled rows (the
evaluation baseline: the same encoder as a plain classifier). Its style head, prior and decoder
are never trained, so such a run declares no style code and does not generate or decode
(``has``, ``code_specs``): it classifies and encodes its class only.

``style_adversary_weight`` > 0 adds the library's adversarial invariance term
(``nn/invariance.py``) on labelled rows: a head predicts y from the style through a gradient
reversal layer, so the encoder is pushed to keep the label out of z (the paper's model has no
such term: 0, the default). The style of a labelled window is the mean of q(z|x, y) at its
own class (z_then_y: of q(z|x)), the code ``encode`` reports once q(y|x) is right. (Reading it
at every class k instead let the encoder write k itself into z, which hides y only when
k != y and leaked the predicted class more on validation folds: BENCHMARKS.md.)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..batching import LabelledShare
from ..config import require
from ..errors import FactorseqError, ShapeError
from ..nn.densities import categorical_kl_uniform, log_gauss, log_normal
from ..nn.invariance import AdversarialInvariance, adversary_lambda, check_adversary
from ..nn.masking import batch_mask, masked_sum
from ..registry import register
from .base import (
    CLASSIFIES,
    CONDITIONAL,
    DECODES,
    ENCODES,
    FACTORS,
    GENERATES,
    ModelConfig,
    SequenceModel,
)
from .outputs import CodeSpec, Factor


@dataclasses.dataclass
class SSVAEConfig(ModelConfig):
    """``n_classes`` is filled from the data's meta. ``samples`` is S (z samples per row).

    ``supervision_rate`` (the paper's supervision rate): fraction of every training batch drawn
    from the fixed labelled subset (cycled; None = plain shuffled batches, where a few labels
    are lost among thousands of rows). ``min_logvar`` floors the learned per-feature
    log-variance of the Gaussian likelihood.
    """

    n_classes: int = 10
    z_dim: int = 8
    hidden: int = 128
    backbone: str = "gru"  # gru | conv over (time, features), mlp for flat vectors
    inference: str = "y_then_z"  # q(y|x) q(z|x,y) | "z_then_y": q(z|x) q(y|z,x)
    y_estimator: str = "enumerate"  # exact sum over classes | "relaxed" (Gumbel-softmax)
    alpha: float = 0.1  # extra weight of log q(y|x) on labelled rows (paper: 0.1; kept by
    # K-fold validation on the N labels of digits, see benchmarks/SSVAE_RESULTS.md)
    gamma: float = 1.0  # weight of the labelled term against the unlabelled one
    samples: int = 1
    temperature: float = 0.67  # Concrete temperature for y_estimator="relaxed"
    likelihood: str = "gaussian"  # gaussian | bernoulli (data in [0, 1])
    min_logvar: float = -6.0
    supervision_rate: float | None = 0.25
    objective: str = "semi"  # semi | classifier
    # reversal weight of the style's label adversary on labelled rows (nn/invariance.py);
    # 0 = off (the paper's model); schedule constant | dann (Ganin et al.'s ramp over epochs)
    style_adversary_weight: float = 0.0
    style_adversary_schedule: str = "constant"
    style_adversary_mode: str = "reverse"  # or confusion (nn/invariance.py)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n_classes >= 2, f"n_classes must be >= 2, got {self.n_classes}")
        require(self.z_dim >= 1, f"z_dim must be >= 1, got {self.z_dim}")
        require(self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}")
        require(self.backbone in ("gru", "conv", "mlp"),
                f"backbone must be gru, conv or mlp, got {self.backbone!r}")
        require(self.backbone != "conv" or self.seq_len >= 4,
                f"backbone conv needs seq_len >= 4, got {self.seq_len}")
        require(self.inference in ("y_then_z", "z_then_y"),
                f"inference must be y_then_z or z_then_y, got {self.inference!r}")
        require(self.y_estimator in ("enumerate", "relaxed"),
                f"y_estimator must be enumerate or relaxed, got {self.y_estimator!r}")
        require(self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        require(self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}")
        require(self.samples >= 1, f"samples must be >= 1, got {self.samples}")
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        require(self.likelihood in ("gaussian", "bernoulli"),
                f"likelihood must be gaussian or bernoulli, got {self.likelihood!r}")
        require(self.supervision_rate is None or 0 < self.supervision_rate < 1,
                "supervision_rate must be in (0, 1) or null")
        require(self.objective in ("semi", "classifier"),
                f"objective must be semi or classifier, got {self.objective!r}")
        check_adversary(self.style_adversary_weight, self.style_adversary_schedule,
                        "style_adversary", self.style_adversary_mode)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def _flat(fn, v: torch.Tensor, keep: int) -> torch.Tensor:
    """Apply ``fn`` to ``v`` with all but its last ``keep`` dims folded into one batch dim."""
    lead = v.shape[: v.dim() - keep]
    out = fn(v.reshape(-1, *v.shape[v.dim() - keep:]))
    return out.reshape(*lead, *out.shape[1:])


class _Encoder(nn.Module):
    """Features ``h`` (batch, hidden) of ``x`` (batch, time, features)."""

    def __init__(self, cfg: SSVAEConfig) -> None:
        super().__init__()
        self.kind, T, D, H = cfg.backbone, cfg.seq_len, cfg.n_features, cfg.hidden
        if self.kind == "mlp":
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(T * D, H), nn.ReLU(),
                                     nn.Linear(H, H), nn.ReLU())
        elif self.kind == "gru":
            self.rnn = nn.GRU(D, H, batch_first=True, bidirectional=True)
            self.out = nn.Sequential(nn.Linear(2 * H, H), nn.ReLU())
        else:  # two stride-2 convolutions over time (features as channels), then flatten
            self.conv = nn.Sequential(nn.Conv1d(D, H, 5, padding=2), nn.ReLU(),
                                      nn.Conv1d(H, H, 4, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv1d(H, H, 4, stride=2, padding=1), nn.ReLU())
            self.out = nn.Sequential(nn.Linear(H * (T // 4), H), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            return self.net(x)
        if self.kind == "gru":
            _, h = self.rnn(x)  # (2, batch, H): last forward and backward states
            return self.out(torch.cat([h[0], h[1]], -1))
        return self.out(self.conv(x.transpose(1, 2)).flatten(1))


class _Decoder(nn.Module):
    """Parameters of p(x | y, z): ``code`` (batch, z_dim + K) -> (batch, time, features)."""

    def __init__(self, cfg: SSVAEConfig) -> None:
        super().__init__()
        self.kind, self.T, D, H = cfg.backbone, cfg.seq_len, cfg.n_features, cfg.hidden
        self.D, n_in = D, cfg.z_dim + cfg.n_classes
        if self.kind == "mlp":
            self.net = nn.Sequential(nn.Linear(n_in, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(),
                                     nn.Linear(H, self.T * D))
        elif self.kind == "gru":  # code sets the initial state and drives every step
            self.h0 = nn.Linear(n_in, H)
            self.inp = nn.Linear(n_in, H)
            self.rnn = nn.GRU(H, H, batch_first=True)
            self.out = nn.Linear(H, D)
        else:  # mirror of the conv encoder: upsample 4x by transposed convolutions, crop to T;
            # the code (z, y) is appended to every layer's input channels so that the class
            # reaches all resolutions directly (a decoder that can ignore y will)
            self.T0 = -(-self.T // 4)
            self.lin = nn.Sequential(nn.Linear(n_in, H * self.T0), nn.ReLU())
            self.ups = nn.ModuleList([nn.ConvTranspose1d(H + n_in, H, 4, stride=2, padding=1),
                                      nn.ConvTranspose1d(H + n_in, H, 4, stride=2, padding=1)])
            self.out = nn.Conv1d(H + n_in, D, 5, padding=2)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            return self.net(code).reshape(-1, self.T, self.D)
        if self.kind == "gru":
            h0 = torch.tanh(self.h0(code)).unsqueeze(0)
            steps = self.inp(code).unsqueeze(1).expand(-1, self.T, -1)
            out, _ = self.rnn(steps.contiguous(), h0)
            return self.out(out)
        h = self.lin(code).reshape(code.shape[0], -1, self.T0)
        with_code = lambda v: torch.cat([v, code[:, :, None].expand(-1, -1, v.shape[-1])], 1)  # noqa: E731
        for up in self.ups:
            h = torch.relu(up(with_code(h)))
        return self.out(with_code(h))[..., : self.T].transpose(1, 2)


def _lift(m: torch.Tensor | None, dim: int) -> torch.Tensor | None:
    """``m.unsqueeze(dim)`` (the x_mask follows x's broadcasting), None stays None."""
    return None if m is None else m.unsqueeze(dim)


def _rows(m: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    return None if m is None else m[rows]


def labelled_term(log_pxyz: torch.Tensor, log_qyz: torch.Tensor, log_proposal: torch.Tensor,
                  alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's supervised objective from S samples (dim 0) of ``z_s ~ r(z)``.

    ``log w_s = log q(y, z_s | x) - log r(z_s)``; ``E_{q(z|x,y)}[f]`` is estimated with the
    self-normalised weights and ``q(y|x)`` by ``mean_s w_s`` (exact when the weights are
    uniform). Returns (term, log q(y|x) estimate), each (batch,).
    """
    log_w = log_qyz - log_proposal
    wbar = torch.softmax(log_w, 0)
    log_qy = torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
    return (wbar * (log_pxyz - log_qyz)).sum(0) + (1.0 + alpha) * log_qy, log_qy


@register("ssvae")
class SSVAE(SequenceModel):
    """Semi-supervised VAE with a discrete label y and a continuous style z.

    Batches: ``x`` (batch, time, features), ``y`` (batch,) int64 and ``y_mask`` (batch,) bool;
    rows with ``y_mask`` False (or a batch without ``y``) use the unlabelled term.
    """

    capabilities = frozenset({GENERATES, CONDITIONAL, ENCODES, DECODES, FACTORS, CLASSIFIES})
    handles_missing = True  # log p(x | y, z) sums over observed entries only

    Config = SSVAEConfig
    evaluator = "ssvae"
    scaler = "standard"  # per-feature standardising suits the Gaussian p(x|y,z) (bernoulli:
    # --set train.scaler=minmax)

    def __init__(self, config: SSVAEConfig) -> None:
        super().__init__(config)
        c = config
        self.K, H, Z = c.n_classes, c.hidden, c.z_dim
        self.encoder = _Encoder(c)
        if c.inference == "y_then_z":
            self.y_head = _mlp(H, H, self.K)
            self.z_head = _mlp(H + self.K, H, 2 * Z)
        else:
            self.z_head = _mlp(H, H, 2 * Z)
            self.y_head = _mlp(H + Z, H, self.K)
        self.decoder = _Decoder(c)
        self.obs_logvar = nn.Parameter(torch.zeros(c.n_features))  # Gaussian p(x|y,z) only
        # built last and only when on: weight 0 is the paper's model, parameter for parameter
        self.style_adversary = (AdversarialInvariance(Z, self.K, H, mode=c.style_adversary_mode)
                                if c.style_adversary_weight > 0 else None)
        self.adversary_progress = 0.0  # training progress in [0, 1] for the dann schedule

    def has(self, capability: str) -> bool:
        """A plain classifier (``objective=classifier``) trains q(y|x) alone: no generation,
        decoding or generation by factor from its untrained style and decoder."""
        if self.config.objective == "classifier" and capability in (GENERATES, CONDITIONAL,
                                                                     DECODES, FACTORS):
            return False
        return super().has(capability)

    def on_train_epoch_start(self, epoch: int, max_epochs: int) -> None:
        self.adversary_progress = epoch / max(max_epochs, 1)

    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The model's objective; the adversary's terms are logged, not added."""
        return self.loss(batch, adversary=False)

    # --- the building blocks (each works on any leading dims) ----------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def y_logits(self, h: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of q(y | x) (y_then_z) or q(y | z, x) (z_then_y)."""
        return self.y_head(h if z is None else torch.cat([h, z], -1))

    def z_params(self, h: torch.Tensor, y: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of q(z | x, y) (``y`` one-hot/relaxed) or of q(z | x)."""
        out = self.z_head(h if y is None else torch.cat([h, y], -1))
        mean, logvar = out.chunk(2, -1)
        return mean, logvar.clamp(-10.0, 10.0)

    def rsample(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Reparameterised draw from N(mean, e^logvar), same shape."""
        return mean + torch.randn_like(mean) * (0.5 * logvar).exp()

    def decoder_params(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean (Gaussian) or logits (Bernoulli) of p(x|y,z): (..., time, features)."""
        return _flat(self.decoder, torch.cat([z, y], -1), 1)

    def log_px(self, x: torch.Tensor, params: torch.Tensor,
               x_mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | y, z) summed over (time, features); ``x`` broadcasts against params, and
        ``x_mask`` (shaped like x, 1 = observed) keeps the observed entries only."""
        if self.config.likelihood == "bernoulli":
            ll = -F.binary_cross_entropy_with_logits(params, x.expand_as(params),
                                                     reduction="none")
        else:
            lv = self.obs_logvar.clamp(min=self.config.min_logvar)
            ll = log_gauss(x, params, lv)
        return masked_sum(ll, x_mask, (-2, -1))

    def onehot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.K).to(torch.get_default_dtype())

    # --- the two terms ---------------------------------------------------------------------
    def unlabelled_term(self, x: torch.Tensor, h: torch.Tensor,
                        x_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ELBO of log p(x) with y summed out (or relaxed); ``x`` (B, T, D) -> (B,); ``x_mask``
        (B, T, D), 1 = observed, limits log p(x|y,z) to the observed entries."""
        c, K, S = self.config, self.K, self.config.samples
        log_py = -math.log(K)
        xs, ms = x.unsqueeze(0), _lift(x_mask, 0)  # broadcast over samples
        if c.inference == "y_then_z":
            log_q = F.log_softmax(self.y_logits(h), -1)  # (B, K)
            if c.y_estimator == "enumerate":
                eye = torch.eye(K, dtype=h.dtype, device=h.device).expand(h.shape[0], K, K)
                mean, lv = self.z_params(h.unsqueeze(1).expand(-1, K, -1), eye)  # (B, K, Z)
                z = self.rsample(mean.expand(S, *mean.shape), lv.expand(S, *lv.shape))
                dec = self.decoder_params(z, eye.expand(S, -1, -1, -1))  # (S, B, K, T, D)
                rec = self.log_px(xs.unsqueeze(2), dec, _lift(ms, 2))
                inner = (rec + log_normal(z) - log_normal(z, mean, lv)).mean(0)  # (B, K)
                return (log_q.exp() * (inner + log_py - log_q)).sum(-1)
            yt = self.relaxed(log_q.expand(S, *log_q.shape))  # (S, B, K)
            mean, lv = self.z_params(h.expand(S, *h.shape), yt)
            z = self.rsample(mean, lv)
            rec = self.log_px(xs, self.decoder_params(z, yt), ms)
            inner = rec + log_normal(z) - log_normal(z, mean, lv)
            return inner.mean(0) - categorical_kl_uniform(log_q)
        # z_then_y: z_s ~ q(z|x), then y given (z_s, x)
        mean, lv = self.z_params(h)
        z = self.rsample(mean.expand(S, *mean.shape), lv.expand(S, *lv.shape))  # (S, B, Z)
        log_q = F.log_softmax(self.y_logits(h.expand(S, *h.shape), z), -1)  # (S, B, K)
        z_term = log_normal(z) - log_normal(z, mean, lv)  # (S, B)
        if c.y_estimator == "enumerate":
            eye = torch.eye(K, dtype=h.dtype, device=h.device).expand(S, h.shape[0], K, K)
            rec = self.log_px(xs.unsqueeze(2),
                              self.decoder_params(z.unsqueeze(2).expand(-1, -1, K, -1), eye),
                              _lift(ms, 2))
            y_term = (log_q.exp() * (rec + log_py - log_q)).sum(-1)
            return (y_term + z_term).mean(0)
        yt = self.relaxed(log_q)
        rec = self.log_px(xs, self.decoder_params(z, yt), ms)
        return (rec + z_term - categorical_kl_uniform(log_q)).mean(0)

    def relaxed(self, log_q: torch.Tensor) -> torch.Tensor:
        """Gumbel-softmax (Concrete) sample of y with the config's temperature."""
        u = torch.rand_like(log_q).clamp(1e-10, 1.0 - 1e-7)
        return torch.softmax((log_q - torch.log(-torch.log(u))) / self.config.temperature, -1)

    def supervised_term(self, x: torch.Tensor, h: torch.Tensor, y: torch.Tensor,
                        x_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(labelled objective, log q(y|x) estimate), each (B,), for rows with known ``y``;
        ``x_mask`` as in :meth:`unlabelled_term`."""
        c, S = self.config, self.config.samples
        y1 = self.onehot(y).expand(S, -1, -1)
        if c.inference == "y_then_z":  # proposal q(z|x,y): w_s = q(y|x), uniform
            log_qy = F.log_softmax(self.y_logits(h), -1).gather(-1, y[:, None])[:, 0]
            mean, lv = self.z_params(h, y1[0])
            z = self.rsample(mean.expand(S, *mean.shape), lv.expand(S, *lv.shape))
            log_r = log_normal(z, mean, lv)  # (S, B)
            log_qyz = log_qy + log_r
        else:  # proposal q(z|x): w_s = q(y | z_s, x)
            mean, lv = self.z_params(h)
            z = self.rsample(mean.expand(S, *mean.shape), lv.expand(S, *lv.shape))
            log_r = log_normal(z, mean, lv)
            logits = self.y_logits(h.expand(S, *h.shape), z)
            log_qy_z = F.log_softmax(logits, -1).gather(-1, y.expand(S, -1)[..., None])[..., 0]
            log_qyz = log_r + log_qy_z
        log_pxyz = (self.log_px(x.unsqueeze(0), self.decoder_params(z, y1), _lift(x_mask, 0))
                    - math.log(self.K) + log_normal(z))
        return labelled_term(log_pxyz, log_qyz, log_r, c.alpha)

    # --- the contract ----------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], adversary: bool = True
             ) -> dict[str, torch.Tensor]:
        """Negative batch mean of [unlabelled ELBO where y_mask is False, gamma x the labelled
        objective where True]; ``x`` (batch, time, features). With a style adversary its
        cross-entropy on the labelled rows is added (``adversary``) and logged."""
        x = batch["x"]
        self.check_input(x)
        if self.config.likelihood == "bernoulli" and ((x < 0) | (x > 1)).any():
            raise FactorseqError("likelihood=bernoulli needs data in [0, 1]; use "
                                 "--set train.scaler=minmax")
        y, mask = self._labels(batch, x)
        xm = batch_mask(batch, x)  # gaps: 1 = observed (None: complete)
        h = self.features(x)
        n = x.shape[0]
        if self.config.objective == "classifier":
            logits = self.class_logits(h[mask]) if mask.any() else None
            if logits is None:  # keep a graph so that an all-unlabelled batch is harmless
                zero = h.sum() * 0.0
                return {"loss": zero, "ce": zero.detach(), "n_labelled": zero.detach()}
            ce = F.cross_entropy(logits, y[mask])
            acc = (logits.argmax(-1) == y[mask]).float().mean()
            return {"loss": ce, "ce": ce.detach(), "acc": acc,
                    "n_labelled": torch.tensor(float(mask.sum()))}
        total = h.sum() * 0.0
        terms: dict[str, torch.Tensor] = {}
        if (~mask).any():
            u = self.unlabelled_term(x[~mask], h[~mask], _rows(xm, ~mask))
            total = total + u.sum()
            terms["unlabelled_elbo"] = u.mean().detach()
        if mask.any():
            sup, log_qy = self.supervised_term(x[mask], h[mask], y[mask], _rows(xm, mask))
            total = total + self.config.gamma * sup.sum()
            terms["labelled_term"] = sup.mean().detach()
            terms["log_qy"] = log_qy.mean().detach()
        terms["n_labelled"] = torch.tensor(float(mask.sum()))
        loss = -total / n
        if self.style_adversary is not None:
            c = self.config
            lambd = adversary_lambda(c.style_adversary_weight, c.style_adversary_schedule,
                                     self.adversary_progress)
            adv = self.style_adversary.term(self.style_mean(h, y), y, mask, lambd)
            terms.update(adv.logged("style_adv"))
            loss = loss + adv.loss if adversary else loss
        return {"loss": loss, **terms}

    def _labels(self, batch: dict[str, torch.Tensor], x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        if "y" not in batch:
            return (torch.zeros(n, dtype=torch.long, device=x.device),
                    torch.zeros(n, dtype=torch.bool, device=x.device))
        y = batch["y"].long().reshape(-1)
        mask = batch.get("y_mask")
        mask = torch.ones_like(y, dtype=torch.bool) if mask is None else mask.bool().reshape(-1)
        if y.shape[0] != n or mask.shape[0] != n:
            raise ShapeError(f"y has shape {tuple(batch['y'].shape)} but x has {n} rows")
        mask = mask & (y >= 0) & (y < self.K)  # out-of-range values count as unlabelled
        return torch.where(mask, y, torch.zeros_like(y)), mask

    def class_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of q(y|x) from features; z_then_y evaluates q(y | z, x) at the mean of q(z|x)."""
        if self.config.inference == "y_then_z":
            return self.y_logits(h)
        return self.y_logits(h, self.z_params(h)[0])

    def style_mean(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The style code (batch, z_dim): the mean of q(z | x, y) for classes ``y`` (batch,)
        (y_then_z) or of q(z | x) (z_then_y), from features ``h``."""
        if self.config.inference == "y_then_z":
            return self.z_params(h, self.onehot(y))[0]
        return self.z_params(h)[0]

    def _predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """q(y | x): (batch, n_classes) for ``x`` (batch, time, features)."""
        return torch.softmax(self.class_logits(self.features(x)), -1)

    def code_specs(self) -> list[CodeSpec]:
        """z (style), y (class), probs (q(y|x)); a plain classifier has no trained style."""
        style = [CodeSpec("z", self.config.z_dim, "latent", description="style: the code "
                          "besides the class (mean of q(z|x,y) at the most probable class)")]
        return [*(style if self.config.objective != "classifier" else []),
                CodeSpec("y", self.K, "label", description="most probable class"),
                CodeSpec("probs", self.K, "probs", decoded=False, description="q(y|x)")]

    def factors(self) -> list[Factor]:
        return [Factor("y", "label", "label", "the class"),
                Factor("z", "code", "latent", "the style, free of the class")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Codes of ``x`` (batch, time, features): ``z`` the mean of q(z|x,y) at the most
        probable class (y_then_z) or of q(z|x); ``y`` (batch,) that class; ``probs`` q(y|x)."""
        h = self.features(x)
        probs = torch.softmax(self.class_logits(h), -1)
        y = probs.argmax(-1)
        if self.config.objective == "classifier":  # no trained style to report
            return {"y": y, "probs": probs}
        return {"z": self.style_mean(h, y), "y": y, "probs": probs}

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of p(x | y, z) as (batch, time, features) from z (batch, z_dim) and class
        indices y (batch,)."""
        out = self.decoder_params(codes["z"], self.onehot(codes["y"].long()))
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    def _sample_codes(self, n: int, given: dict[str, torch.Tensor],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """z ~ N(0, I) and y uniform over the classes, each unless given."""
        dev = self.device
        z = given["z"] if "z" in given else torch.randn(n, self.config.z_dim,
                                                        generator=generator, device=dev)
        y = given["y"] if "y" in given else torch.randint(0, self.K, (n,), generator=generator,
                                                          device=dev)
        return {"z": z, "y": y}

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """``n`` windows (n, time, features) from p(x|y,z), z ~ N(0, I), for labels ``y``
        (n,) or classes drawn uniformly."""
        return self._decode(self._sample_codes(n, {} if y is None else {"y": y}, generator))

    def make_batch_sampler(self, data: Any, batch_size: int, seed: int) -> Any:
        """Fixed labelled subset: classifier mode batches the labelled rows only; with
        ``supervision_rate`` every batch holds that fraction of labelled rows (cycled)."""
        mask = getattr(data, "y_mask", None)
        if mask is None or getattr(data, "y", None) is None:
            if self.config.objective == "classifier":
                raise FactorseqError("objective=classifier needs labelled data (a label column)")
            return None
        lab = np.flatnonzero(mask)
        if self.config.objective == "classifier":
            if len(lab) == 0:
                raise FactorseqError("objective=classifier needs at least one labelled window")
            return LabelledShare(lab, np.array([], dtype=np.int64), batch_size, None, seed)
        if self.config.supervision_rate is None or len(lab) == 0:
            return None
        return LabelledShare(lab, np.flatnonzero(~np.asarray(mask)), batch_size,
                        self.config.supervision_rate, seed)
