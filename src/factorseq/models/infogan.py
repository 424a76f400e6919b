"""``infogan``: InfoGAN for sequences (Chen et al., NIPS 2016) on RCGAN's recurrent players.

The generator is :class:`~factorseq.models.gan.GAN`'s: a recurrent StepNet fed at every step
the noise z_t ~ N(0, I) and the window's codes, repeated over time: a categorical code
``c_cat ~ Cat(1/K)`` (one-hot) and continuous codes ``c_cont ~ U(-1, 1)^C``. The
discriminator is GAN's per-step recurrent StepNet; the Q network shares its body (as in the
paper) and reads the body's summary of the window (the last step's top-layer state; the time
mean for the conv backbone) through a small head: categorical logits, and for each continuous
code a Gaussian mean (unit variance as in the reference code, or a learned log-variance with
``q_variance=learned``).

Objective (Chen et al. eq. 6): ``min_{G,Q} max_D V(D, G) - lambda L_I(G, Q)`` with the
variational lower bound of the mutual information ``L_I = E_{c, x=G(z,c)}[log Q(c|x)] + H(c)``.
As in the reference implementation, ``lambda L_I`` is subtracted from both players' losses: the
discriminator step updates D's body, its real/fake head and Q's head (D's optimiser holds all
three), the generator step updates G; the real/fake head receives no gradient from L_I. Each
code type has its own lambda (the paper: 1 for discrete codes, smaller for continuous ones):
``-lambda L_I = lambda_cat CE(c_cat) + lambda_cont NLL(c_cont) - const``. Updates alternate as
in GAN (``d_steps`` D batches, then ``g_steps`` G batches).

``encode`` gives Q's inferred codes of real windows (``c_cat`` class probabilities, ``c_cont``
Gaussian means); ``generate`` holds or sets the codes (``c_cat`` as a category index or a row
over the categories, read as its most likely category; ``c_cont`` as (n, C) values in [-1, 1]).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..config import require
from ..errors import FactorseqError, ShapeError
from ..nn.adversarial import discriminator_loss, generator_loss
from ..nn.backbones import RECURRENT, mlp
from ..registry import register
from .base import ENCODES, FACTORS, GENERATES, SequenceModel
from .gan import GAN, GANConfig
from .outputs import CodeSpec, Factor


@dataclasses.dataclass
class InfoGANConfig(GANConfig):
    """GAN's settings (backbone, hidden, layers, latent_dim = per-step noise size, output,
    d_steps/g_steps, learning rates, beta1) plus the codes:

    - ``n_categories``: K of the categorical code (0 = none, else >= 2).
    - ``n_continuous``: C, the number of continuous codes (0 = none).
    - ``lambda_cat`` / ``lambda_cont``: weights of the information term per code type (1, 0.1).
    - ``q_variance``: ``fixed`` (unit variance, the reference code) or ``learned``.
    - ``q_hidden``: units of Q's hidden layer (the paper: 128).
    - ``window_noise``: size W of a noise vector drawn once per window and repeated at every
      step beside the codes (0 = none: only the per-step noise). The paper's z is one vector
      per image; without a window-level noise the codes are the generator's only source of
      window-constant variation, so they must carry every window-level factor at once.
    ``conditional`` must stay false: InfoGAN is unsupervised (its categorical code takes the
    place of a label).
    """

    n_categories: int = 10
    n_continuous: int = 2
    lambda_cat: float = 1.0
    lambda_cont: float = 0.1
    q_variance: str = "fixed"
    q_hidden: int = 128
    window_noise: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(not self.conditional, "infogan is unsupervised: conditional must be false (its "
                "categorical code takes the place of a label)")
        require(self.n_categories == 0 or self.n_categories >= 2,
                f"n_categories must be 0 or >= 2, got {self.n_categories}")
        require(self.n_continuous >= 0, f"n_continuous must be >= 0, got {self.n_continuous}")
        require(self.n_categories + self.n_continuous >= 1,
                "infogan needs at least one code (n_categories or n_continuous)")
        require(self.lambda_cat >= 0 and self.lambda_cont >= 0,
                "lambda_cat and lambda_cont must be >= 0")
        require(self.q_variance in ("fixed", "learned"),
                f"q_variance must be fixed or learned, got {self.q_variance!r}")
        require(self.q_hidden >= 1, f"q_hidden must be >= 1, got {self.q_hidden}")
        require(self.window_noise >= 0, f"window_noise must be >= 0, got {self.window_noise}")


def information_terms(q_out: torch.Tensor, c_cat: torch.Tensor | None,
                      c_cont: torch.Tensor | None, n_categories: int, n_continuous: int,
                      learned_variance: bool) -> dict[str, torch.Tensor]:
    """Batch means of ``-log Q(c|x)`` per code type from Q's raw output ``q_out`` (batch,
    K + C [+ C]) laid out as [categorical logits | continuous means | log-variances]:
    ``cat_ce`` the cross-entropy of the category indices ``c_cat`` (batch,), ``cont_nll`` the
    Gaussian negative log-likelihood of ``c_cont`` (batch, C) summed over the C codes (unit
    variance unless ``learned_variance``). Missing code types give 0."""
    zero = q_out.new_zeros(())
    k, c = n_categories, n_continuous
    ce = F.cross_entropy(q_out[:, :k], c_cat) if k else zero
    nll = zero
    if c:
        mean = q_out[:, k:k + c]
        var = q_out[:, k + c:k + 2 * c].exp() if learned_variance else torch.ones_like(mean)
        nll = F.gaussian_nll_loss(mean, c_cont, var, full=True, reduction="none").sum(1).mean()
    return {"cat_ce": ce, "cont_nll": nll}


@register("infogan")
class InfoGAN(GAN):
    """InfoGAN with RCGAN's recurrent generator and per-step discriminator; Q shares D's body."""

    Config = InfoGANConfig
    capabilities = frozenset({GENERATES, ENCODES, FACTORS})
    legacy_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: InfoGANConfig) -> None:
        super().__init__(config)
        c = config
        out = c.n_categories + c.n_continuous * (2 if c.q_variance == "learned" else 1)
        self.q_head = mlp(c.hidden, c.q_hidden, out, layers=1)

    def code_dim(self) -> int:
        """What the generator reads at every step besides the per-step noise: the codes and
        the window-level noise."""
        c = self.config
        return c.n_categories + c.n_continuous + c.window_noise

    def has(self, capability: str) -> bool:
        # unlike GAN (factors only through a label), every InfoGAN has its codes as factors
        return SequenceModel.has(self, capability)

    # --- the players ----------------------------------------------------------------------
    def judge(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass of D's body over windows x (batch, time, features): per-step real/fake
        logits (batch, time, 1) and Q's raw output (batch, K + C [+ C]) from the body's
        summary of the window."""
        h = self.discriminator.features(x)
        summary = h[:, -1] if self.discriminator.cell in RECURRENT else h.mean(1)
        return self.discriminator.head(h), self.q_head(summary)

    def prior_codes(self, n: int, generator: torch.Generator | None = None
                    ) -> dict[str, torch.Tensor]:
        """Noise (n, time, latent_dim), one-hot c_cat (n, K), c_cont ~ U(-1, 1) (n, C) and the
        window-level noise (n, W) ~ N(0, I)."""
        c, g = self.config, dict(generator=generator, device=self.device)
        idx = torch.randint(0, max(c.n_categories, 1), (n,), **g)
        return {"noise": self.noise(n, generator), "c_cat": self._one_hot(idx),
                "c_cont": 2.0 * torch.rand(n, c.n_continuous, **g) - 1.0,
                "window": torch.randn(n, c.window_noise, **g)}

    def _one_hot(self, idx: torch.Tensor) -> torch.Tensor:
        return F.one_hot(idx.long(), self.config.n_categories).float() \
            if self.config.n_categories else idx.new_zeros(len(idx), 0, dtype=torch.float32)

    def information_loss(self, q_out: torch.Tensor, codes: dict[str, torch.Tensor]
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``-lambda L_I`` up to the constant H(c), and the terms: ``cat_ce``, ``cont_nll``
        and the mutual-information lower bound ``mi`` = H(c) - CE - NLL (nats)."""
        c = self.config
        t = information_terms(q_out, codes["c_cat"].argmax(1) if c.n_categories else None,
                              codes["c_cont"], c.n_categories, c.n_continuous,
                              c.q_variance == "learned")
        # H(c): log K for the uniform category, log 2 per U(-1, 1) code
        entropy = (math.log(c.n_categories) if c.n_categories else 0.0) \
            + c.n_continuous * math.log(2.0)
        t["mi"] = entropy - t["cat_ce"] - t["cont_nll"]
        return c.lambda_cat * t["cat_ce"] + c.lambda_cont * t["cont_nll"], t

    def _d_loss(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """D's cross-entropy plus lambda * (-L_I) on its fakes (updates D's body and Q)."""
        with torch.no_grad():  # D's step does not need G's graph
            codes = self.prior_codes(len(x))
            fake = self._decode(codes)
        real_logits, _ = self.judge(x)
        fake_logits, q = self.judge(fake)
        return discriminator_loss(real_logits, fake_logits) + self.information_loss(q, codes)[0]

    def _g_loss(self, n: int, c: torch.Tensor | None = None) -> torch.Tensor:
        """G's non-saturating loss plus lambda * (-L_I) of its own samples."""
        codes = self.prior_codes(n)
        fake_logits, q = self.judge(self._decode(codes))
        return generator_loss(fake_logits) + self.information_loss(q, codes)[0]

    def optimizer_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """G alone; D's body, its real/fake head and Q's head together (Q shares D's body)."""
        return {"gen": list(self.generator.parameters()),
                "disc": [*self.discriminator.parameters(), *self.q_head.parameters()]}

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation: ``loss`` is G's total loss; D's loss and the information terms beside."""
        x = batch["x"]
        self.check_input(x)
        codes = self.prior_codes(len(x))
        fake_logits, q = self.judge(self._decode(codes))
        info, terms = self.information_loss(q, codes)
        g = generator_loss(fake_logits)
        real_logits, _ = self.judge(x)
        d = discriminator_loss(real_logits, fake_logits)
        return {"loss": g + info, "g_loss": g, "d_loss": d + info, **terms}

    # --- the contract ---------------------------------------------------------------------
    def code_specs(self) -> list[CodeSpec]:
        c, specs = self.config, []
        if c.n_categories:
            specs.append(CodeSpec("c_cat", c.n_categories, "probs", decoded=False,
                                  description="Q's probabilities of the categorical code"))
        if c.n_continuous:
            specs.append(CodeSpec("c_cont", c.n_continuous, "latent", decoded=False,
                                  description="Q's means of the continuous codes"))
        return specs

    def factors(self) -> list[Factor]:
        c, out = self.config, []
        if c.n_categories:
            out.append(Factor("c_cat", "code", "latent", f"categorical code: an index 0.."
                              f"{c.n_categories - 1} or a row over the categories"))
        if c.n_continuous:
            out.append(Factor("c_cont", "code", "latent", f"{c.n_continuous} continuous codes "
                              "in [-1, 1] (rows of n_continuous values)"))
        return out

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Q's codes of windows x (batch, time, features): c_cat probabilities (batch, K),
        c_cont means (batch, C)."""
        _, q = self.judge(x)
        k, c = self.config.n_categories, self.config.n_continuous
        out = {}
        if k:
            out["c_cat"] = q[:, :k].softmax(-1)
        if c:
            out["c_cont"] = q[:, k:k + c]
        return out

    def _given_category(self, v: torch.Tensor, n: int) -> torch.Tensor:
        """A given c_cat as one-hot rows (n, K): indices (n,) or rows over the categories."""
        k = self.config.n_categories
        if v.dim() == 2 and v.shape[1] == k:
            return self._one_hot(v.argmax(1))
        if v.dim() != 1:
            raise ShapeError(f"c_cat must be category indices ({n},) or rows ({n}, {k}), got "
                             f"shape {tuple(v.shape)}")
        if not torch.equal(v, v.round()) or int(v.min()) < 0 or int(v.max()) >= k:
            raise FactorseqError(f"c_cat must be a category in 0..{k - 1}, got "
                                 f"{sorted(set(v.tolist()))[:5]}")
        return self._one_hot(v)

    def _sample_codes(self, n: int, given: dict[str, torch.Tensor],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Prior codes of n windows; a given c_cat / c_cont replaces the drawn one."""
        codes = self.prior_codes(n, generator)
        if "c_cat" in given:
            codes["c_cat"] = self._given_category(given["c_cat"], n)
        if "c_cont" in given:
            v, want = given["c_cont"], (n, self.config.n_continuous)
            v = v.reshape(n, 1) if v.dim() == 1 and want[1] == 1 else v
            if tuple(v.shape) != want:
                raise ShapeError(f"c_cont must have shape {want}, got shape {tuple(v.shape)}")
            codes["c_cont"] = v
        return codes

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Noise (batch, time, latent_dim), the codes and the window noise, the last two
        repeated over time -> windows (batch, time, features)."""
        return self.fake(codes["noise"], torch.cat([codes["c_cat"], codes["c_cont"],
                                                    codes["window"]], -1))

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        return self._decode(self.prior_codes(n, generator))
