"""Diffusion-TS (Yuan & Qiao, "Diffusion-TS: Interpretable Diffusion for General Time Series
Generation", ICLR 2024), ``diffusion_ts``; reference: github.com/Y-debug-sys/Diffusion-TS.

A Gaussian diffusion (cosine schedule, ``nn/diffusion.py``) whose denoiser, a transformer
encoder-decoder with trend / seasonal / residual heads (``nn/diffusion_ts_blocks.py``),
predicts x0 directly from (x_t, t). Windows (batch, time, features) arrive [0, 1]-scaled (the
MinMax scaler) and are mapped to [-1, 1] inside the model, as the reference does.

- Loss: re-weighted L1 (``loss``) between the x0 prediction and x0 plus ``fourier_weight``
  times the L1 of the real and imaginary parts of their time FFTs (default weight
  sqrt(T) / 5, the reference's).
- Sampling: the full ancestral reverse process (``sampler=ancestral``, the reference's
  default) or DDIM with ``sampling_steps`` denoiser calls (``sampler=ddim``; ``eta`` = 0
  deterministic, 1 ancestral-like), from an exponential moving average of the weights (EMA,
  kept as frozen parameters, ``ema.*``, so it is saved with the run).
- ``decompose(x)``: the denoiser's parts of its x0 prediction for the clean window x at step
  0: level + trend + seasonal + residual = the reconstruction.
- ``encode``/``decode``: deterministic DDIM inversion x -> x_T and its inverse (eta = 0).
- Attributes (``n_attributes`` > 0, data with ``attribute_columns``): the encoded attribute
  vector conditions the denoiser (added to its step embedding); in training it is dropped
  with probability ``guidance_dropout`` (replaced by a learnt "no condition"), so sampling
  can use classifier-free guidance (Ho & Salimans 2022): x0 = x0(none) + ``guidance_scale``
  (x0(a) - x0(none)); scale 1 = the plain conditional model. Without attributes (encode,
  decode, decompose, sample()) the denoiser runs unconditioned.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import require
from ..errors import FactorseqError
from ..nn.diffusion import GaussianDiffusion, diffusion_ts_loss
from ..nn.diffusion_ts_blocks import DiffusionTSDenoiser, cond_input
from ..nn.masking import batch_mask, interpolate_missing
from ..registry import register
from .base import (
    ATTRIBUTES,
    DECODES,
    DECOMPOSES,
    ENCODES,
    GENERATES,
    ModelConfig,
    SequenceModel,
    _count,
)
from .outputs import CodeSpec, Decomposition

# The reference's per-data-set configs (Config/*.yaml): architecture and diffusion steps;
# they sample with the full ancestral chain. Their trainer (not model config): Adam
# (0.9, 0.96), lr warmed up 1e-5 -> 8e-4 over 500 steps then halved on plateaus, gradient
# norm clipped to 1, EMA 0.995 every 10 steps, 2 accumulated batches of 128 (sines) / 64
# (stocks, energy) per step for 12,000 / 10,000 / 25,000 steps.
PAPER_PRESETS: dict[str, dict[str, Any]] = {
    "sines": {"d_model": 64, "enc_layers": 1, "dec_layers": 2, "heads": 4, "timesteps": 500,
              "skip": False},
    "stocks": {"d_model": 64, "enc_layers": 2, "dec_layers": 2, "heads": 4, "timesteps": 500,
               "skip": False},
    "energy": {"d_model": 96, "enc_layers": 4, "dec_layers": 3, "heads": 4,
               "timesteps": 1000, "skip": False},
}
# our defaults for 2 CPU cores, chosen on energy's validation windows (BENCHMARKS.md,
# benchmarks/diffusion_study.py): the paper's energy size reached the same score (.210 after
# 17k steps vs .199 after 50k) but samples 2.5x slower; skip pre-conditioning scored .233
# after 10.6k steps against .276 after 8.3k without it
CPU_DEFAULTS: dict[str, Any] = {"d_model": 64, "enc_layers": 2, "dec_layers": 2, "heads": 4,
                                "timesteps": 500, "sampler": "ddim", "sampling_steps": 50,
                                "skip": True}


@dataclasses.dataclass
class DiffusionTSConfig(ModelConfig):
    """``diffusion_ts`` config. Fields left ``None`` take the ``preset``'s value, else our CPU
    default (``CPU_DEFAULTS``); a value the user sets always wins.

    - ``preset``: ``sines`` | ``stocks`` | ``energy``: the paper's architecture, diffusion
      steps and full ancestral sampler for that data set (``PAPER_PRESETS``). Slow on CPU.
    - ``d_model``, ``enc_layers``, ``dec_layers``, ``heads``, ``mlp_ratio``, ``dropout``:
      the transformer; ``trend_degree`` (3) the trend polynomial's degree; ``top_k`` seasonal
      frequencies per channel (0 = int(log(#frequencies)), the reference's).
    - ``timesteps``: diffusion steps T; ``schedule``: ``cosine`` (reference) or ``linear``.
    - ``loss``: ``l1`` (reference configs) or ``l2``; ``fourier_weight``: None = sqrt(T)/5.
    - ``sampler``: ``ddim`` or ``ancestral``; ``sampling_steps`` (DDIM denoiser calls),
      ``eta`` (0 = deterministic DDIM), ``spacing`` of the DDIM steps (``linear`` /
      ``quadratic``), ``clip`` the x0 predictions to the data range while sampling.
    - ``skip``: Karras et al.'s pre-conditioning, x0_hat = c_skip(t) x_t / sqrt(abar_t) +
      c_out(t) F(x_t, t) (``sigma_data`` the data scale in [-1, 1] units), the loss weights
      then applied on F's scale (x0 error / c_out(t)): the net learns a correction at low
      noise instead of an identity map. Not in the reference (the presets leave it off); on
      by default.
    - ``missing_fill`` (data with gaps, ``--impute mask``): what the denoiser's *input* holds at
      entries never observed before they are noised; the loss never counts them. ``linear``
      (default): interpolated along time within the window (``nn.masking.interpolate_missing``),
      so the net only ever sees plausible windows; ``zero``: the mid-range 0 (the first
      version, kept to compare; at 30 % missing it learns holes that no sample has).
    - ``ema_decay`` / ``ema_every``: EMA of the weights every ``ema_every`` optimiser steps
      (0.995 / 10, reference); ``use_ema`` samples with it; ``encode_steps``: DDIM steps of
      ``encode``/``decode`` (None = min(50, timesteps)).
    - ``n_attributes``: width of the encoded attribute vector (from the data; 0 = none);
      ``guidance_dropout`` (0.1) and ``guidance_scale`` (1.0): classifier-free guidance.
    """

    preset: str | None = None
    d_model: int | None = None
    enc_layers: int | None = None
    dec_layers: int | None = None
    heads: int | None = None
    mlp_ratio: int = 4
    dropout: float = 0.0
    trend_degree: int = 3
    top_k: int = 0
    timesteps: int | None = None
    schedule: str = "cosine"
    loss: str = "l1"
    fourier_weight: float | None = None
    sampler: str | None = None
    sampling_steps: int | None = None
    eta: float = 0.0
    spacing: str = "linear"
    clip: bool = True
    ema_decay: float = 0.995
    ema_every: int = 10
    use_ema: bool = True
    encode_steps: int | None = None
    skip: bool | None = None
    sigma_data: float = 0.5
    missing_fill: str = "linear"
    n_attributes: int = 0
    guidance_dropout: float = 0.1
    guidance_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.preset is None or self.preset in PAPER_PRESETS,
                f"preset must be one of {', '.join(PAPER_PRESETS)}, got {self.preset!r}")
        chosen = dict(CPU_DEFAULTS)
        if self.preset:  # the paper's model, sampled with the full chain
            chosen.update(PAPER_PRESETS[self.preset], sampler="ancestral")
        steps_given = self.sampling_steps is not None
        for key, value in chosen.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if not steps_given and isinstance(self.timesteps, int):
            # a default never exceeds the chain; the ancestral sampler uses every step
            self.sampling_steps = (self.timesteps if self.sampler == "ancestral"
                                   else min(self.sampling_steps, self.timesteps))
        if self.encode_steps is None and isinstance(self.timesteps, int):
            self.encode_steps = min(50, self.timesteps)
        if self.fourier_weight is None:
            self.fourier_weight = math.sqrt(self.seq_len) / 5  # the reference's default
        for key in ("d_model", "enc_layers", "dec_layers", "heads", "mlp_ratio", "timesteps",
                    "sampling_steps", "ema_every", "encode_steps", "trend_degree"):
            value = getattr(self, key)
            least = 0 if key == "enc_layers" else 1
            require(isinstance(value, int) and value >= least,
                    f"{key} must be an integer >= {least}, got {value!r}")
        require(self.d_model % self.heads == 0,
                f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        require(self.top_k >= 0, f"top_k must be >= 0, got {self.top_k}")
        require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.schedule in ("cosine", "linear"),
                f"schedule must be cosine or linear, got {self.schedule!r}")
        require(self.missing_fill in ("linear", "zero"),
                f"missing_fill must be linear or zero, got {self.missing_fill!r}")
        require(self.loss in ("l1", "l2"), f"loss must be l1 or l2, got {self.loss!r}")
        require(self.fourier_weight >= 0, f"fourier_weight must be >= 0, got "
                                          f"{self.fourier_weight}")
        require(self.sampler in ("ddim", "ancestral"),
                f"sampler must be ddim or ancestral, got {self.sampler!r}")
        require(self.sampling_steps <= self.timesteps and self.encode_steps <= self.timesteps,
                f"sampling_steps ({self.sampling_steps}) and encode_steps "
                f"({self.encode_steps}) must be <= timesteps ({self.timesteps})")
        require(0.0 <= self.eta <= 1.0, f"eta must be in [0, 1], got {self.eta}")
        require(self.spacing in ("linear", "quadratic"),
                f"spacing must be linear or quadratic, got {self.spacing!r}")
        require(self.n_attributes >= 0, f"n_attributes must be >= 0, got {self.n_attributes}")
        require(0.0 <= self.guidance_dropout < 1.0,
                f"guidance_dropout must be in [0, 1), got {self.guidance_dropout}")
        require(self.guidance_scale >= 0, f"guidance_scale must be >= 0, got "
                                          f"{self.guidance_scale}")
        require(self.sigma_data > 0, f"sigma_data must be > 0, got {self.sigma_data}")
        require(0.0 <= self.ema_decay < 1.0, f"ema_decay must be in [0, 1), got "
                                             f"{self.ema_decay}")


@register("diffusion_ts")
class DiffusionTS(SequenceModel):
    """Diffusion-TS: interpretable transformer diffusion (x0-prediction) over windows."""

    Config = DiffusionTSConfig
    capabilities = frozenset({GENERATES, ENCODES, DECODES, DECOMPOSES, ATTRIBUTES})
    scaler = "minmax"
    handles_missing: ClassVar[bool] = True
    # the validation loss of a diffusion model (random steps and noise) keeps falling slowly
    # and says little about sample quality: run the step budget, keep the final (EMA) weights
    monitor_early_stopping = False
    figure_title: ClassVar[str] = ("Diffusion-TS decomposition: original, reconstruction (x0 "
                                   "prediction at step 0) and its parts")
    # a step budget (the reference's energy run: 25k steps of 2 x 64 windows = our 50k of 64)
    # within an hour of one core; whichever ends first
    train_defaults: ClassVar[dict[str, Any]] = {
        "batch_size": 64, "lr": 1e-3, "warmup_steps": 500, "grad_clip": 1.0, "epochs": 1000,
        "max_steps": 50_000, "max_minutes": 55.0,
    }

    def __init__(self, config: DiffusionTSConfig) -> None:
        super().__init__(config)
        c = config
        self.denoiser = DiffusionTSDenoiser(
            c.seq_len, c.n_features, c.d_model, c.enc_layers, c.dec_layers, c.heads,
            c.mlp_ratio, c.dropout, c.trend_degree, c.top_k or None, c.n_attributes)
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self.diffusion = GaussianDiffusion(c.timesteps, c.schedule)

    # --- training -------------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"all": list(self.denoiser.parameters())}  # the EMA copy is not trained

    def optimizer_config(self, name: str) -> dict[str, Any]:
        return {"betas": (0.9, 0.96)}  # the reference's Adam

    def loss(self, batch: dict[str, torch.Tensor],
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Diffusion-TS objective (``nn.diffusion.diffusion_ts_loss``) at one random step per
        window; ``batch["x_mask"]`` (batch, time, features), 1 = observed, restricts it to the
        observed entries. Returns ``loss``, ``reconstruction``, ``fourier``."""
        x = batch["x"]
        self.check_input(x)
        mask = batch_mask(batch, x)  # the one reader of x_mask (nn.masking)
        x0 = 2.0 * x - 1.0  # [0, 1] -> [-1, 1]
        if mask is not None:  # the holes get a finite input value; the loss skips them
            x0 = (interpolate_missing(x0, mask) if self.config.missing_fill == "linear"
                  else torch.where(mask.bool(), x0, torch.zeros_like(x0)))
        t = torch.randint(0, self.config.timesteps, (x.shape[0],), generator=generator,
                          device=x.device)
        noise = torch.randn(x0.shape, generator=generator, device=x.device)
        x_t, cond = self.diffusion.q_sample(x0, t, noise), self._train_condition(batch, generator)
        pred = (self.predict_x0(self.denoiser, x_t, t) if cond is None
                else self.predict_x0(self.denoiser, x_t, t, cond))
        weight = self.diffusion.loss_weight[t]
        if self.config.skip:  # the same weights on the net's own scale: x0 error / c_out
            c_out = self.diffusion.skip_scales(t, self.config.sigma_data)[1].view(-1)
            weight = weight / c_out ** (1 if self.config.loss == "l1" else 2)
        return diffusion_ts_loss(pred, x0, weight, kind=self.config.loss,
                                 fourier_weight=self.config.fourier_weight, mask=mask)

    def _train_condition(self, batch: dict[str, torch.Tensor],
                         generator: torch.Generator | None) -> torch.Tensor | None:
        """The denoiser's condition for a training batch: its attributes, each window's
        dropped with probability ``guidance_dropout`` (classifier-free guidance)."""
        k = self.config.n_attributes
        if not k:
            return None
        a = batch.get("attributes")
        if a is None or a.shape[-1] != k:
            raise FactorseqError(f"this {self.name} model conditions on {k} attribute values; "
                                 "the batch has none (or another number)")
        keep = (torch.rand(a.shape[0], generator=generator, device=a.device)
                >= self.config.guidance_dropout)
        return cond_input(a.float(), a.shape[0], k, a, keep)

    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # fixed steps and noise: the same validation windows give comparable epoch losses
        return self.loss(batch, generator=torch.Generator(device=batch["x"].device)
                         .manual_seed(0))

    def on_optimizer_step(self, step: int) -> None:
        """EMA update every ``ema_every`` optimiser steps: ema <- d ema + (1 - d) w with
        d = min(ema_decay, (1 + n) / (10 + n)) after n updates (a short warm-up, so the EMA
        does not keep the random initial weights for thousands of steps)."""
        if step % self.config.ema_every:
            return
        n = int(self.ema_updates)
        decay = min(self.config.ema_decay, (1.0 + n) / (10.0 + n))
        with torch.no_grad():
            ema, live = list(self.ema.parameters()), list(self.denoiser.parameters())
            torch._foreach_lerp_(ema, live, 1.0 - decay)
        self.ema_updates += 1

    def parts(self, net: nn.Module, x_t: torch.Tensor, t: torch.Tensor
              ) -> dict[str, torch.Tensor]:
        """Additive parts of the x0 prediction of ``net`` at (x_t, t), [-1, 1] space: the
        denoiser's ``level`` (batch, 1, features), ``trend``, ``seasonal``, ``residual``, and
        with ``skip`` the pass-through ``skip`` = c_skip x_t / sqrt(abar_t) (the denoiser's
        parts then scaled by c_out)."""
        p = net.parts(x_t, t)
        if not self.config.skip:
            return p
        c_skip, c_out = self.diffusion.skip_scales(t, self.config.sigma_data)
        return {"skip": c_skip * x_t, **{k: c_out * v for k, v in p.items()}}

    def predict_x0(self, net: nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                   cond: torch.Tensor | None = None) -> torch.Tensor:
        """x0 prediction (batch, time, features) of ``net`` at (x_t, t) (``cond``: the
        denoiser's condition input, None = none): the sum of parts."""
        out = net(x_t, t) if cond is None else net(x_t, t, cond)
        if not self.config.skip:
            return out
        c_skip, c_out = self.diffusion.skip_scales(t, self.config.sigma_data)
        return c_skip * x_t + c_out * out

    def _denoise_fn(self, attributes: torch.Tensor | None = None):
        """(x_t, t) -> x0 prediction; with ``attributes`` (n, n_attributes) guided towards
        them: x0(none) + w (x0(a) - x0(none)), w = ``guidance_scale`` (one pass when 1)."""
        if attributes is None:
            return functools.partial(self.predict_x0, self.net)
        cond = cond_input(attributes, len(attributes), self.config.n_attributes, attributes)
        w = self.config.guidance_scale

        def guided(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x0 = self.predict_x0(self.net, x_t, t, cond)
            return x0 if w == 1.0 else torch.lerp(self.predict_x0(self.net, x_t, t), x0, w)
        return guided

    # --- generation -----------------------------------------------------------------------
    @property
    def net(self) -> nn.Module:
        """The denoiser used to sample: the EMA copy once it has been updated."""
        return self.ema if self.config.use_ema and int(self.ema_updates) > 0 else self.denoiser

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None, *,
             sampler: str | None = None, steps: int | None = None,
             eta: float | None = None, spacing: str | None = None,
             attributes: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` windows (n, time, features), [0, 1]-scaled space, with the configured
        sampler (``sampler``/``steps``/``eta``/``spacing`` override it for this call; the
        contract's :meth:`sample` uses the configured one); ``attributes`` (n, n_attributes)
        encoded vectors to condition on."""
        n = _count(n)  # the contract's own check of a window count
        c = self.config
        sampler = sampler or c.sampler
        if sampler not in ("ddim", "ancestral"):
            raise FactorseqError(f"sampler must be ddim or ancestral, got {sampler!r}")
        x_T = torch.randn((n, c.seq_len, c.n_features), generator=generator,
                          device=generator.device if generator is not None else self.device)
        x_T = x_T.to(self.device)
        clip = 1.0 if c.clip else None
        if sampler == "ancestral":
            x0 = self.diffusion.ancestral(self._denoise_fn(attributes), x_T, clip=clip,
                                          generator=generator)
        else:
            x0 = self.diffusion.ddim(self._denoise_fn(attributes), x_T,
                                     steps or c.sampling_steps,
                                     eta=c.eta if eta is None else eta,
                                     spacing=spacing or c.spacing,
                                     clip=clip, generator=generator)
        return (x0 + 1.0) / 2.0

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        return self.draw(n, generator)

    def _sample_attributes(self, n: int, y: torch.Tensor | None, attributes: torch.Tensor,
                           generator: torch.Generator | None) -> torch.Tensor:
        return self.draw(n, generator, attributes=attributes)

    # --- codes: the deterministic DDIM inversion -----------------------------------------------
    def code_specs(self) -> list[CodeSpec]:
        return [CodeSpec("x_T", self.config.n_features, "steps",
                         description="the window's noise by deterministic DDIM inversion")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Deterministic DDIM inversion of x (batch, time, features) to x_T, same shape."""
        return {"x_T": self.diffusion.ddim_invert(self._denoise_fn(), 2.0 * x - 1.0,
                                                  self.config.encode_steps,
                                                  spacing=self.config.spacing)}

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) from x_T (batch, time, features) to windows."""
        x0 = self.diffusion.ddim(self._denoise_fn(), codes["x_T"], self.config.encode_steps,
                                 eta=0.0, spacing=self.config.spacing, clip=None)
        return (x0 + 1.0) / 2.0

    # --- interpretation -------------------------------------------------------------------
    def parts_at(self, x: torch.Tensor, t: int = 0) -> dict[str, torch.Tensor]:
        """Parts (each (batch, time, features), [0, 1]-scaled space) of the denoiser's x0
        prediction from x_t = x (no noise added) at step ``t``: ``level`` (constant over
        time), ``trend``, ``seasonal``, ``residual`` (and ``skip`` with skip
        pre-conditioning); their sum is the reconstruction."""
        steps = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
        p = self.parts(self.net, 2.0 * x - 1.0, steps)
        # u = 2x - 1 is affine: the constant goes to the level, every part is halved
        out = {k: v.expand_as(x) / 2.0 for k, v in p.items()}
        out["level"] = out["level"] + 0.5
        return out

    def _decompose(self, x: torch.Tensor) -> Decomposition:
        parts = self.parts_at(x, 0)
        return Decomposition(parts, sum(parts.values()))

    def report_figures(self, x: torch.Tensor) -> list[tuple[str, Any]]:
        """For up to 3 real windows (evenly spaced in ``x``, (batch, time, features), scaled
        space) and feature 0: the window, the model's reconstruction and its parts."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        x = torch.as_tensor(x, dtype=torch.float32)
        self.check_input(x)
        idx = torch.linspace(0, x.shape[0] - 1, min(3, x.shape[0])).round().long().unique()
        d = self.decompose(x[idx].to(self.device))
        parts = {k: v.cpu().numpy() for k, v in {**d.parts, "output": d.output}.items()}
        x_np = x[idx].cpu().numpy()
        fig = Figure(figsize=(4.2 * len(idx), 5.5), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, len(idx), squeeze=False, sharex=True)
        t = range(self.config.seq_len)
        for j, i in enumerate(idx.tolist()):
            top, bottom = axes[0, j], axes[1, j]
            top.plot(t, x_np[j, :, 0], "k-", label="original")
            top.plot(t, parts["output"][j, :, 0], "C3--", label="reconstruction")
            top.set_title(f"window {i}, feature 0")
            for name in ("skip", "level", "trend", "seasonal", "residual"):
                if name in parts:
                    bottom.plot(t, parts[name][j, :, 0], label=name)
            bottom.set_xlabel("time step")
        axes[0, 0].legend(fontsize="small")
        axes[1, 0].legend(fontsize="small")
        axes[1, 0].set_ylabel("denoiser parts")
        return [(self.figure_title, fig)]
