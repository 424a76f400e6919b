"""Rectified flow on the Diffusion-TS backbone, ``flow_ts``, in the spirit of FM-TS (Hu et al.,
"FM-TS: Flow Matching for Time Series Generation", 2024): the same interpretable transformer
(``nn/diffusion_ts_blocks.py``) learns a velocity field instead of a denoiser.

Windows (batch, time, features) arrive [0, 1]-scaled and are mapped to [-1, 1] (as
``diffusion_ts``). With x0 ~ N(0, I) the noise and x1 the data (``nn/flow.py``):

- path x_t = (1 - t) x0 + t x1, t in [0, 1] (``time_sampling``: uniform or logit-normal);
- loss: l2 (or l1) between the predicted velocity and x1 - x0, plus ``fourier_weight`` times
  the same error of their time FFTs (``nn.diffusion.diffusion_ts_loss`` with unit weights);
  with gaps (``--impute mask``) only observed entries count, the holes of x1 filled as
  ``diffusion_ts`` fills them (``missing_fill``);
- ``prediction``: ``velocity`` (FM-TS: the net's output is v) or ``data`` (the net predicts
  x1 and v = (x1_hat - x_t) / max(1 - t, ``min_gap``): its parts are parts of a window);
- sampling: ``sampling_steps`` Euler (or Heun) steps of dx/dt = v from t = 0 to 1 with the
  EMA weights; ``encode``/``decode``: the same ODE run backwards / forwards (deterministic);
- ``decompose(x)``: the parts of the data prediction x1_hat = x_t + (1 - t) v from x_t = x at
  t = ``decompose_t``: ``skip`` (x_t itself, velocity prediction) + level + trend + seasonal +
  residual (the net's parts, times 1 - t for a velocity).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import require
from ..errors import FactorseqError
from ..nn import flow
from ..nn.diffusion import diffusion_ts_loss
from ..nn.diffusion_ts_blocks import DiffusionTSDenoiser
from ..nn.masking import batch_mask, interpolate_missing
from ..registry import register
from .base import DECODES, DECOMPOSES, ENCODES, GENERATES, ModelConfig, SequenceModel, _count
from .diffusion_ts import CPU_DEFAULTS, DiffusionTS
from .outputs import CodeSpec, Decomposition

# t in [0, 1] enters the backbone's sinusoidal step embedding as t * TIME_SCALE: the embedding
# was made for integer diffusion steps 0..~1000, whose frequencies resolve such a range
TIME_SCALE = 1000.0
ARCHITECTURE = ("d_model", "enc_layers", "dec_layers", "heads")


@dataclasses.dataclass
class FlowTSConfig(ModelConfig):
    """``flow_ts`` config; the transformer's fields left ``None`` take ``diffusion_ts``'s CPU
    defaults (d_model 64, 2 + 2 layers, 4 heads).

    - ``d_model``, ``enc_layers``, ``dec_layers``, ``heads``, ``mlp_ratio``, ``dropout``,
      ``trend_degree``, ``top_k``: the Diffusion-TS transformer (see ``diffusion_ts``).
    - ``prediction``: ``velocity`` (net = v) or ``data`` (net = x1, ``min_gap`` floors 1 - t).
    - ``time_sampling``: ``uniform`` or ``logit_normal`` training times.
    - ``loss``: ``l2`` (flow matching's regression) or ``l1``; ``fourier_weight`` (0 = off).
    - ``sampler``: ``euler`` or ``heun``; ``sampling_steps``: ODE steps (velocity calls:
      steps for Euler, 2 x steps for Heun); ``clip`` the samples to the data range.
    - ``encode_steps``: Euler steps of ``encode``/``decode``; ``decompose_t``: the time at
      which ``decompose`` reads the parts.
    - ``ema_decay``/``ema_every``/``use_ema``: the EMA of the weights (as ``diffusion_ts``).
    - ``missing_fill``: ``linear`` or ``zero``, the input at never-observed entries.
    - ``compile``: ``torch.compile`` the trained denoiser (not the EMA copy that samples):
      1.05x training steps/s on energy at equal validation loss, after a 8-70 s compile
      (benchmarks/CPU_RESULTS.md); off by default.
    """

    d_model: int | None = None
    enc_layers: int | None = None
    dec_layers: int | None = None
    heads: int | None = None
    mlp_ratio: int = 4
    dropout: float = 0.0
    trend_degree: int = 3
    top_k: int = 0
    prediction: str = "velocity"
    min_gap: float = 0.05
    time_sampling: str = "uniform"
    loss: str = "l2"
    fourier_weight: float = 0.0
    sampler: str = "euler"
    sampling_steps: int = 20
    clip: bool = True
    encode_steps: int = 20
    decompose_t: float = 0.9
    ema_decay: float = 0.995
    ema_every: int = 10
    use_ema: bool = True
    missing_fill: str = "linear"
    compile: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ARCHITECTURE:
            if getattr(self, key) is None:
                setattr(self, key, CPU_DEFAULTS[key])
        for key in (*ARCHITECTURE, "mlp_ratio", "sampling_steps", "encode_steps", "ema_every",
                    "trend_degree"):
            value, least = getattr(self, key), 0 if key == "enc_layers" else 1
            require(isinstance(value, int) and value >= least,
                    f"{key} must be an integer >= {least}, got {value!r}")
        require(self.d_model % self.heads == 0,
                f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        for key, allowed in (("prediction", ("velocity", "data")),
                             ("time_sampling", ("uniform", "logit_normal")),
                             ("loss", ("l2", "l1")), ("sampler", flow.METHODS),
                             ("missing_fill", ("linear", "zero"))):
            require(getattr(self, key) in allowed,
                    f"{key} must be {' or '.join(allowed)}, got {getattr(self, key)!r}")
        require(self.top_k >= 0, f"top_k must be >= 0, got {self.top_k}")
        require(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        require(0.0 < self.min_gap <= 1.0, f"min_gap must be in (0, 1], got {self.min_gap}")
        require(self.fourier_weight >= 0, f"fourier_weight must be >= 0, got "
                                          f"{self.fourier_weight}")
        require(0.0 <= self.decompose_t < 1.0,
                f"decompose_t must be in [0, 1), got {self.decompose_t}")
        require(0.0 <= self.ema_decay < 1.0, f"ema_decay must be in [0, 1), got "
                                             f"{self.ema_decay}")


@register("flow_ts")
class FlowTS(SequenceModel):
    """Rectified flow (velocity regression, Euler/Heun sampling) on the Diffusion-TS net."""

    Config = FlowTSConfig
    capabilities = frozenset({GENERATES, ENCODES, DECODES, DECOMPOSES})
    scaler = "minmax"
    handles_missing: ClassVar[bool] = True
    # as diffusion_ts: the loss at random times and noise is no stopping signal
    monitor_early_stopping = False
    train_defaults: ClassVar[dict[str, Any]] = dict(DiffusionTS.train_defaults)
    figure_title: ClassVar[str] = ("FM-TS decomposition: original, reconstruction (data "
                                   "prediction at t = decompose_t) and its parts")
    # the same denoiser / ema / ema_updates attributes as diffusion_ts: its training hooks,
    # sampling net and report figure apply as they are
    optimizer_groups = DiffusionTS.optimizer_groups
    optimizer_config = DiffusionTS.optimizer_config
    on_optimizer_step = DiffusionTS.on_optimizer_step
    net = DiffusionTS.net
    report_figures = DiffusionTS.report_figures

    def __init__(self, config: FlowTSConfig) -> None:
        super().__init__(config)
        c = config
        self.denoiser = DiffusionTSDenoiser(
            c.seq_len, c.n_features, c.d_model, c.enc_layers, c.dec_layers, c.heads,
            c.mlp_ratio, c.dropout, c.trend_degree, c.top_k or None)
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        if c.compile:  # in place: the parameters and their state_dict names stay the same
            self.denoiser.compile()

    # --- the velocity field ---------------------------------------------------------------
    def velocity(self, net: nn.Module, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v(x_t, t) of ``net`` for x_t (batch, time, features), t (batch,) in [0, 1]."""
        out = net(x_t, t * TIME_SCALE)
        if self.config.prediction == "velocity":
            return out
        return flow.velocity_from_data(x_t, t, out, self.config.min_gap)

    def _field(self, net: nn.Module):
        return lambda x, t: self.velocity(net, x, t)

    # --- training -------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor],
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Velocity regression at one random time per window; ``batch["x_mask"]`` (1 =
        observed) restricts it to observed entries. Returns ``loss``, ``reconstruction`` (the
        velocity error), ``fourier``."""
        x = batch["x"]
        self.check_input(x)
        mask = batch_mask(batch, x)
        x1 = 2.0 * x - 1.0  # [0, 1] -> [-1, 1]
        if mask is not None:  # the holes get a finite value on the path; the loss skips them
            x1 = (interpolate_missing(x1, mask) if self.config.missing_fill == "linear"
                  else torch.where(mask.bool(), x1, torch.zeros_like(x1)))
        t = flow.sample_times(x.shape[0], self.config.time_sampling, generator, x.device)
        x0 = torch.randn(x1.shape, generator=generator, device=x.device)
        pred = self.velocity(self.denoiser, flow.linear_path(x0, x1, t), t)
        return diffusion_ts_loss(pred, flow.velocity_target(x0, x1), torch.ones_like(t),
                                 kind=self.config.loss,
                                 fourier_weight=self.config.fourier_weight, mask=mask)

    def validation_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # fixed times and noise: the same validation windows give comparable epoch losses
        return self.loss(batch, generator=torch.Generator(device=batch["x"].device)
                         .manual_seed(0))

    # --- generation -----------------------------------------------------------------------
    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None, *,
             sampler: str | None = None, steps: int | None = None) -> torch.Tensor:
        """``n`` windows (n, time, features), [0, 1]-scaled: the ODE from N(0, I) at t = 0 to
        t = 1 (``sampler``/``steps`` override the config for this call)."""
        n, c = _count(n), self.config
        sampler = sampler or c.sampler
        if sampler not in flow.METHODS:
            raise FactorseqError(f"sampler must be {' or '.join(flow.METHODS)}, got "
                                 f"{sampler!r}")
        x0 = torch.randn((n, c.seq_len, c.n_features), generator=generator,
                         device=generator.device if generator is not None else self.device)
        x1 = flow.integrate(self._field(self.net), x0.to(self.device),
                            steps or c.sampling_steps, method=sampler)
        if c.clip:
            x1 = x1.clamp(-1.0, 1.0)
        return (x1 + 1.0) / 2.0

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        return self.draw(n, generator)

    # --- codes: the ODE run backwards -----------------------------------------------------
    def code_specs(self) -> list[CodeSpec]:
        return [CodeSpec("x_0", self.config.n_features, "steps",
                         description="the window's noise by the flow's ODE run backwards")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x_0": flow.integrate(self._field(self.net), 2.0 * x - 1.0,
                                      self.config.encode_steps, start=1.0, end=0.0)}

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        x1 = flow.integrate(self._field(self.net), codes["x_0"], self.config.encode_steps)
        return (x1 + 1.0) / 2.0

    # --- interpretation -------------------------------------------------------------------
    def parts_at(self, x: torch.Tensor, t: float) -> dict[str, torch.Tensor]:
        """Parts (each (batch, time, features), [0, 1]-scaled) of the data prediction
        x1_hat = x_t + (1 - t) v(x_t, t) from x_t = x (scaled to [-1, 1]) at time t: with a
        velocity net ``skip`` = x_t and the net's parts times (1 - t); with a data net its
        parts alone. Their sum is x1_hat."""
        u = 2.0 * x - 1.0
        tt = torch.full((x.shape[0],), float(t), device=x.device)
        p = self.net.parts(u, tt * TIME_SCALE)
        if self.config.prediction == "velocity":
            p = {"skip": u, **{k: (1.0 - t) * v for k, v in p.items()}}
        # u = 2x - 1 is affine: the constant goes to the level, every part is halved
        out = {k: v.expand_as(x) / 2.0 for k, v in p.items()}
        out["level"] = out["level"] + 0.5
        return out

    def _decompose(self, x: torch.Tensor) -> Decomposition:
        parts = self.parts_at(x, self.config.decompose_t)
        return Decomposition(parts, sum(parts.values()))
