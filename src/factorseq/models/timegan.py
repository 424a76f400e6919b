"""``timegan``: TimeGAN (Yoon, Jarrett & van der Schaar, NeurIPS 2019), as in the reference
implementation (github.com/jsyoon0823/TimeGAN, ``timegan.py``).

Five per-step recurrent networks (GRU, 3 layers, 24 units; each a stack + dense + sigmoid)::

    embedder    H  = e(X)          recovery      X~ = r(H)
    generator   E^ = g(Z)          supervisor    H^ = s(E^)   (num_layers - 1 layers)
    discriminator  Y = d(H)        (dense read-out without sigmoid: logits per step)

with Z ~ U[0, 1)^(T x z_dim), z_dim = features. Losses (reference names; MSE and cross-entropy
are means over all elements, moments are over the batch axis)::

    E_loss_T0 = MSE(X, X~)                   E_loss0 = 10 sqrt(E_loss_T0)
    G_loss_S  = MSE(H[:, 1:], s(H)[:, :-1])  E_loss  = E_loss0 + 0.1 G_loss_S
    G_loss_U  = CE(d(H^), 1)                 G_loss_U_e = CE(d(E^), 1)
    G_loss_V  = mean|sqrt(var X^ + 1e-6) - sqrt(var X + 1e-6)| + mean|mean X^ - mean X|
    G_loss    = G_loss_U + gamma G_loss_U_e + 100 sqrt(G_loss_S) + 100 G_loss_V
    D_loss    = CE(d(H), 1) + CE(d(H^), 0) + gamma CE(d(E^), 0)

with X^ = r(H^) and gamma = 1. Training has the reference's three phases, each with its own
Adam (E0, GS, then G, E, D): (1) embedding: E_loss0 on embedder + recovery; (2) supervised:
G_loss_S on generator + supervisor; (3) joint: every batch one generator step (G_loss) and one
embedder step (E_loss); every second batch one discriminator step, taken only while
D_loss > 0.15. The reference runs 50000 iterations per phase and two generator batches per
joint iteration, so the phases get the epochs in the ratio 1 : 1 : 2 (``embedding_fraction``,
``supervised_fraction``, or exact ``embedding_epochs``/``supervised_epochs``); the phase is set
from the epoch in ``on_train_epoch_start``. Samples are r(s(g(Z))).

Hu et al. (2017): generator g (+ s) in the embedding space; inference network e (with r its
decoder); discriminator d with y = real embedding / generated embedding.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..config import require
from ..errors import FactorseqError
from ..nn.adversarial import discriminator_loss, generator_loss, optimizer_step
from ..nn.backbones import RECURRENT, StepNet, check_backbone
from ..nn.schedule import ScheduleState
from ..registry import register
from .base import DECODES, ENCODES, GENERATES, ModelConfig, SequenceModel
from .outputs import CodeSpec

PHASES = ("embedding", "supervised", "joint")


@dataclasses.dataclass
class TimeGANConfig(ModelConfig):
    """TimeGAN's parameters; defaults are the reference's (``main_timegan.py``/``timegan.py``).

    - ``backbone``: ``gru`` (reference ``module``) or ``lstm``; ``hidden`` 24, ``layers`` 3.
    - ``z_dim``: noise size per step (None = n_features, as in the reference).
    - ``gamma``: weight of the E^ terms (1); ``d_threshold``: D trains only while its loss is
      above this (0.15).
    - ``embedding_fraction``/``supervised_fraction``: share of the epochs of phases 1 and 2
      (0.25 each; joint gets the rest), or exact counts ``embedding_epochs``/
      ``supervised_epochs``.
    - loss weights of the reference: ``recon_weight`` 10, ``embed_supervised_weight`` 0.1,
      ``supervised_weight`` 100, ``moment_weight`` 100.
    """

    backbone: str = "gru"
    hidden: int = 24
    layers: int = 3
    z_dim: int | None = None
    gamma: float = 1.0
    d_threshold: float = 0.15
    embedding_fraction: float = 0.25
    supervised_fraction: float = 0.25
    embedding_epochs: int | None = None
    supervised_epochs: int | None = None
    recon_weight: float = 10.0
    embed_supervised_weight: float = 0.1
    supervised_weight: float = 100.0
    moment_weight: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_backbone(self.backbone, self.hidden, self.layers, allowed=RECURRENT)
        require(self.layers >= 2, "timegan needs layers >= 2 (its supervisor has layers - 1)")
        require(self.z_dim is None or self.z_dim >= 1, f"z_dim must be >= 1, got {self.z_dim}")
        require(self.seq_len >= 2, "timegan needs seq_len >= 2 (one-step-ahead supervision)")
        fr = (self.embedding_fraction, self.supervised_fraction)
        require(all(0 < f < 1 for f in fr) and sum(fr) < 1,
                "embedding_fraction and supervised_fraction must be in (0, 1) with sum < 1")
        for k in ("embedding_epochs", "supervised_epochs"):
            v = getattr(self, k)
            require(v is None or v >= 1, f"{k} must be >= 1, got {v}")
        for k in ("gamma", "d_threshold", "recon_weight", "embed_supervised_weight",
                  "supervised_weight", "moment_weight"):
            require(getattr(self, k) >= 0, f"{k} must be >= 0, got {getattr(self, k)}")


def _sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt with its gradient kept finite at 0 (the reference takes sqrt of MSEs)."""
    return torch.sqrt(v.clamp_min(1e-12))


def moment_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """G_loss_V: mean |std_hat - std| + mean |mean_hat - mean|, moments over the batch axis
    (per time step and feature), population variance as in ``tf.nn.moments``."""
    v1 = (torch.sqrt(x_hat.var(0, unbiased=False) + 1e-6)
          - torch.sqrt(x.var(0, unbiased=False) + 1e-6)).abs().mean()
    v2 = (x_hat.mean(0) - x.mean(0)).abs().mean()
    return v1 + v2


def phase_epochs(cfg: TimeGANConfig, max_epochs: int) -> tuple[int, int]:
    """Epochs of the embedding and supervised phases; the joint phase gets the rest (>= 1)."""
    e = cfg.embedding_epochs or max(1, round(cfg.embedding_fraction * max_epochs))
    s = cfg.supervised_epochs or max(1, round(cfg.supervised_fraction * max_epochs))
    if e + s >= max_epochs:
        raise FactorseqError(f"timegan needs epochs > embedding + supervised epochs ({e} + {s})"
                             f" to leave a joint phase; got {max_epochs} epochs (use >= 3)")
    return e, s


@register("timegan")
class TimeGAN(SequenceModel):
    """Embedder, recovery, generator, supervisor, discriminator; three training phases."""

    Config = TimeGANConfig
    capabilities = frozenset({GENERATES, ENCODES, DECODES})
    manual_optimization: ClassVar[bool] = True
    monitor_early_stopping: ClassVar[bool] = False
    scaler: ClassVar[str] = "minmax"

    def __init__(self, config: TimeGANConfig) -> None:
        super().__init__(config)
        c = config
        h, n, cell = c.hidden, c.layers, c.backbone
        self.z_dim = c.z_dim or c.n_features
        self.embedder = StepNet(c.n_features, h, h, n, cell, activation="sigmoid")
        self.recovery = StepNet(h, h, c.n_features, n, cell, activation="sigmoid")
        self.generator = StepNet(self.z_dim, h, h, n, cell, activation="sigmoid")
        self.supervisor = StepNet(h, h, h, n - 1, cell, activation="sigmoid")
        self.discriminator = StepNet(h, h, 1, n, cell)
        # the phase (index into PHASES) and joint batches so far (resume with the run)
        self.schedule = ScheduleState(phase=0, joint_batches=0)

    # --- phases ------------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        return PHASES[self.schedule.get("phase")]

    def on_train_epoch_start(self, epoch: int, max_epochs: int) -> None:
        e, s = phase_epochs(self.config, max_epochs)
        phase = "embedding" if epoch < e else "supervised" if epoch < e + s else "joint"
        if phase == "joint" and self.phase != "joint":
            self.schedule.set("joint_batches", 0)
        self.schedule.set("phase", PHASES.index(phase))

    # --- networks ----------------------------------------------------------------------------
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Z ~ U[0, 1)^(n, time, z_dim), the reference's ``random_generator``."""
        return torch.rand(n, self.config.seq_len, self.z_dim, generator=generator,
                          device=self.device)

    def code_specs(self) -> list[CodeSpec]:
        return [CodeSpec("h", self.config.hidden, "steps",
                         description="the embedder's per-step latent H")]

    def _encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embeddings H (batch, time, hidden) of windows (batch, time, features)."""
        return {"h": self.embedder(x)}

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Recovery: embeddings (batch, time, hidden) -> windows (batch, time, features)."""
        return self.recovery(codes["h"])

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """n windows (n, time, features): X^ = r(s(g(Z)))."""
        return self.recovery(self.supervisor(self.generator(self.noise(n, generator))))

    # --- losses ------------------------------------------------------------------------------
    def embedding_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """E_loss_T0, E_loss0 and (with the supervisor) G_loss_S, E_loss on real windows."""
        h = self.embedder(x)
        e_t0 = F.mse_loss(self.recovery(h), x)
        g_s = F.mse_loss(h[:, 1:], self.supervisor(h)[:, :-1])
        e0 = self.config.recon_weight * _sqrt(e_t0)
        return {"e_loss_t0": e_t0, "e_loss0": e0, "g_loss_s": g_s,
                "e_loss": e0 + self.config.embed_supervised_weight * g_s}

    def generator_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generator's G_loss and its terms for a batch of real windows x."""
        c = self.config
        e_hat = self.generator(self.noise(len(x)))
        h_hat = self.supervisor(e_hat)
        h = self.embedder(x)
        g_s = F.mse_loss(h[:, 1:], self.supervisor(h)[:, :-1])
        g_u = generator_loss(self.discriminator(h_hat))
        g_u_e = generator_loss(self.discriminator(e_hat))
        g_v = moment_loss(self.recovery(h_hat), x)
        g = (g_u + c.gamma * g_u_e + c.supervised_weight * _sqrt(g_s)
             + c.moment_weight * g_v)
        return {"g_loss": g, "g_loss_u": g_u, "g_loss_u_e": g_u_e, "g_loss_s": g_s,
                "g_loss_v": g_v}

    def discriminator_loss(self, x: torch.Tensor) -> torch.Tensor:
        """D_loss on real embeddings, supervised generated ones and raw generated ones."""
        with torch.no_grad():
            h = self.embedder(x)
            e_hat = self.generator(self.noise(len(x)))
            h_hat = self.supervisor(e_hat)
        d = self.discriminator
        return discriminator_loss(d(h), d(h_hat), d(e_hat), weights=(1.0, self.config.gamma))

    # --- training ----------------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        er = list(self.embedder.parameters()) + list(self.recovery.parameters())
        gs = list(self.generator.parameters()) + list(self.supervisor.parameters())
        # the reference's five solvers: E0, E (embedder+recovery), GS, G (generator+
        # supervisor), D
        return {"embed0": er, "embed": er, "supervised": gs, "gen": gs,
                "disc": list(self.discriminator.parameters())}

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Any, step: int) -> dict[str, Any]:
        """One batch of the current phase (see the module docstring)."""
        x = batch["x"]
        self.check_input(x)
        if self.phase == "embedding":
            t = self.embedding_losses(x)
            optimizer_step(optimizers["embed0"], t["e_loss0"], backward)
            return {"loss": t["e_loss0"].detach(), "e_loss_t0": t["e_loss_t0"].detach()}
        if self.phase == "supervised":
            g_s = F.mse_loss(*self._supervised_pair(x))
            optimizer_step(optimizers["supervised"], g_s, backward)
            return {"loss": g_s.detach(), "g_loss_s": g_s.detach()}
        out: dict[str, Any] = {}
        g = self.generator_losses(x)
        optimizer_step(optimizers["gen"], g["g_loss"], backward)
        e = self.embedding_losses(x)  # after G's update, as the reference's second run
        optimizer_step(optimizers["embed"], e["e_loss"], backward)
        out.update({k: v.detach() for k, v in g.items()})
        out["e_loss_t0"] = e["e_loss_t0"].detach()
        out["loss"] = g["g_loss"].detach()
        self.schedule.add("joint_batches")
        if self.schedule.get("joint_batches") % 2 == 0:  # one D batch per two G batches
            d = self.discriminator_loss(x)
            out["d_loss"] = d.detach()
            if float(d.detach()) > self.config.d_threshold:
                optimizer_step(optimizers["disc"], d, backward)
        return out

    def _supervised_pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embedder(x)
        return h[:, 1:], self.supervisor(h)[:, :-1]

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation: every term; ``loss`` is the current phase's objective (E_loss0, then
        G_loss_S, then G_loss)."""
        x = batch["x"]
        self.check_input(x)
        e = self.embedding_losses(x)
        g = self.generator_losses(x)
        main = {"embedding": e["e_loss0"], "supervised": e["g_loss_s"],
                "joint": g["g_loss"]}[self.phase]
        return {"loss": main, "e_loss_t0": e["e_loss_t0"], **{k: v for k, v in g.items()},
                "d_loss": self.discriminator_loss(x)}
