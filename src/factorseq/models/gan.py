"""``gan``: recurrent (conditional) GAN for sequences, RCGAN (Esteban, Hyland & Ratsch 2017).

Generator: an LSTM fed a fresh noise vector z_t ~ N(0, I) at every step (concatenated with the
one-hot condition c when conditional) and a read-out per step. Discriminator: an LSTM over
(x_t, c) with a logit at every step; its loss is the per-step cross-entropy averaged over time
(the reference's D_loss), the generator's the non-saturating cross-entropy with the label
flipped. Updates alternate ``d_steps`` discriminator batches with ``g_steps`` generator batches.

Defaults differ from the reference (squashed read-out, 5 D rounds per G round) and from our
other models (Adam beta1 0.9) in three places, measured on ``sines`` within the family
benchmark's budget: the squashed read-out drove the generator into the flat tail of its
sigmoid (every sample ~0: a constant sequence is the cheapest way to look smooth to a per-step
discriminator, and there the gradient vanishes), and 5:1 with beta1 0.9 oscillated. A linear
read-out, 1:1 updates and Adam beta1 0.5 (DCGAN's setting) train stably.
``--set output=sigmoid --set d_steps=5 --set beta1=0.9`` gives the reference's schedule back.

Hu et al. (2017): generator p_theta(x|z), no inference network for z, discriminator
q_phi(y|x) with y = real/generated; each player minimises the cross-entropy of y with its own
labels. ``encode`` therefore returns the discriminator's per-step hidden features: the only
inference network the model has.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..config import require
from ..errors import FactorseqError
from ..nn.adversarial import discriminator_loss, generator_loss, optimizer_step
from ..nn.backbones import StepNet, check_backbone, check_output, one_hot_condition, repeat_steps
from ..nn.schedule import ScheduleState
from ..registry import register
from .base import CONDITIONAL, FACTORS, GENERATES, ModelConfig, SequenceModel
from .outputs import CodeSpec, Factor


@dataclasses.dataclass
class GANConfig(ModelConfig):
    """RCGAN hyper-parameters (defaults: the reference's settings).

    - ``backbone``: ``lstm`` (RCGAN), ``gru`` or ``conv``; ``hidden``/``layers`` of both nets.
    - ``latent_dim``: size of the per-step noise z_t (5).
    - ``output``: generator read-out, ``linear`` (default) or ``sigmoid`` (bounded to [0, 1]).
    - ``conditional``: condition G and D on the label y (one-hot, ``n_classes`` from the data).
    - ``d_steps``/``g_steps``: discriminator / generator batches per round (1 / 1).
    - ``gen_lr``/``disc_lr``: per-optimiser learning rates (None = ``train.lr``); ``beta1``:
      Adam's first-moment decay of both players (0.5).
    """

    backbone: str = "lstm"
    hidden: int = 100
    layers: int = 1
    latent_dim: int = 5
    output: str = "linear"
    conditional: bool = False
    n_classes: int = 2
    d_steps: int = 1
    g_steps: int = 1
    gen_lr: float | None = None
    disc_lr: float | None = None
    beta1: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_backbone(self.backbone, self.hidden, self.layers)
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        check_output(self.output)
        require(0.0 <= self.beta1 < 1.0, f"beta1 must be in [0, 1), got {self.beta1}")
        require(self.d_steps >= 1 and self.g_steps >= 1, "d_steps and g_steps must be >= 1")
        require(not self.conditional or self.n_classes >= 2,
                "conditional=true needs labelled data with n_classes >= 2")
        for k in ("gen_lr", "disc_lr"):
            v = getattr(self, k)
            require(v is None or v > 0, f"{k} must be > 0, got {v}")


def adversarial_lrs(cfg: Any, name: str) -> dict[str, Any]:
    """``optimizer_config`` of the family: per-group lr from gen_lr / disc_lr when set, and
    Adam's beta1 when the config has one."""
    lr = cfg.disc_lr if name == "disc" else cfg.gen_lr
    out: dict[str, Any] = {} if lr is None else {"lr": lr}
    if getattr(cfg, "beta1", None) is not None:
        out["betas"] = (cfg.beta1, 0.999)
    return out


@register("gan")
class GAN(SequenceModel):
    """RCGAN: per-step noise -> LSTM generator; per-step LSTM discriminator."""

    Config = GANConfig
    capabilities = frozenset({GENERATES, CONDITIONAL, FACTORS})
    manual_optimization: ClassVar[bool] = True
    monitor_early_stopping: ClassVar[bool] = False
    scaler: ClassVar[str] = "minmax"
    # runs saved before ``output`` existed were trained with the sigmoid read-out
    legacy_config: ClassVar[dict[str, Any]] = {"output": "sigmoid", "d_steps": 5, "beta1": 0.9}

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        c = config
        k = c.n_classes if c.conditional else 0
        self.generator = StepNet(c.latent_dim + k + self.code_dim(), c.hidden, c.n_features,
                                 c.layers, c.backbone, activation=c.output)
        self.discriminator = StepNet(c.n_features + k, c.hidden, 1, c.layers, c.backbone)
        # empirical label frequencies (fitted in on_fit_end) for unconditioned sampling
        self.register_buffer("label_freq", torch.full((max(k, 1),), 1.0 / max(k, 1)))
        self.schedule = ScheduleState(step=0)  # batches trained: D or G (resumes with the run)

    def code_dim(self) -> int:
        """Size of the codes fed to the generator at every step besides noise and label (none
        here; InfoGAN's categorical and continuous codes)."""
        return 0

    # --- the two players -------------------------------------------------------------------
    def _condition(self, batch: dict[str, torch.Tensor], n: int) -> torch.Tensor | None:
        if not self.config.conditional:
            return None
        y = batch.get("y")
        if y is not None and len(y) and int(y.max()) >= self.config.n_classes:
            raise FactorseqError(f"label {int(y.max())} is out of range for "
                                 f"n_classes={self.config.n_classes}")
        return one_hot_condition(batch.get("y"), batch.get("y_mask"), self.config.n_classes,
                                 n, self.device)

    def fake(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Noise (batch, time, latent_dim) [+ one-hot (batch, n_classes)] -> (batch, time,
        features)."""
        if c is not None:
            z = torch.cat([z, repeat_steps(c, z.shape[1])], -1)
        return self.generator(z)

    def discriminate(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Per-step logits of "real", (batch, time, 1)."""
        if c is not None:
            x = torch.cat([x, repeat_steps(c, x.shape[1])], -1)
        return self.discriminator(x)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.config.seq_len, self.config.latent_dim, generator=generator,
                           device=self.device)

    def _d_loss(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():  # D's step does not need G's graph
            fake = self.fake(self.noise(len(x)), c)
        return discriminator_loss(self.discriminate(x, c), self.discriminate(fake, c))

    def _g_loss(self, n: int, c: torch.Tensor | None) -> torch.Tensor:
        return generator_loss(self.discriminate(self.fake(self.noise(n), c), c))

    # --- the contract ----------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"gen": list(self.generator.parameters()),
                "disc": list(self.discriminator.parameters())}

    def optimizer_config(self, name: str) -> dict[str, Any]:
        return adversarial_lrs(self.config, name)

    def training_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, Any],
                      backward: Any, step: int) -> dict[str, Any]:
        """One batch of the round: the first ``d_steps`` batches update D, the next
        ``g_steps`` update G (the reference's D_rounds / G_rounds on consecutive batches)."""
        x = batch["x"]
        self.check_input(x)
        c = self._condition(batch, len(x))
        cfg = self.config
        pos = self.schedule.get("step") % (cfg.d_steps + cfg.g_steps)
        self.schedule.add("step")
        if pos < cfg.d_steps:
            d = self._d_loss(x, c)
            optimizer_step(optimizers["disc"], d, backward)
            return {"d_loss": d.detach()}
        g = self._g_loss(len(x), c)
        optimizer_step(optimizers["gen"], g, backward)
        return {"g_loss": g.detach()}

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation: ``loss`` is the generator's loss; ``d_loss`` the discriminator's."""
        x = batch["x"]
        self.check_input(x)
        c = self._condition(batch, len(x))
        g = self._g_loss(len(x), c)
        return {"loss": g, "g_loss": g, "d_loss": self._d_loss(x, c)}

    def has(self, capability: str) -> bool:
        """Conditioning on a label (and so generation by that factor) needs a conditional
        config."""
        if capability in (CONDITIONAL, FACTORS) and not self.config.conditional:
            return False
        return super().has(capability)

    def code_specs(self) -> list[CodeSpec]:
        specs = [CodeSpec("noise", self.config.latent_dim, "steps",
                          description="the generator's per-step noise")]
        if self.config.conditional:
            specs.append(CodeSpec("y", self.config.n_classes, "label"))
        return specs

    def factors(self) -> list[Factor]:
        return [Factor("y", "label", "label", "the class")] if self.config.conditional else []

    def _sample_codes(self, n: int, given: dict[str, torch.Tensor],
                      generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Per-step noise (n, time, latent_dim); conditional models add labels y (n,), given
        or drawn from the training frequencies."""
        codes = {"noise": given.get("noise", self.noise(n, generator))}
        if self.config.conditional:
            y = given.get("y")
            if y is None:
                y = torch.multinomial(self.label_freq.cpu(), n, replacement=True,
                                      generator=generator).to(self.device)
            codes["y"] = y
        return codes

    def _decode(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Noise (batch, time, latent_dim) [+ labels (batch,)] -> windows (batch, time,
        features)."""
        c = None
        if self.config.conditional:
            c = torch.nn.functional.one_hot(codes["y"].long(), self.config.n_classes).float()
        return self.fake(codes["noise"], c)

    def _sample(self, n: int, y: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """n windows (n, time, features); conditional models for labels y (n,) or labels drawn
        from the training frequencies."""
        return self._decode(self._sample_codes(n, {} if y is None else {"y": y}, generator))

    @torch.no_grad()
    def on_fit_end(self, loader: Any) -> None:
        """Conditional models remember the labels' training frequencies (for unlabelled
        sampling)."""
        if not self.config.conditional:
            return
        counts = torch.zeros(self.config.n_classes, dtype=torch.float64)
        for b in loader:
            if "y" not in b:
                continue
            m = b["y_mask"] if "y_mask" in b else torch.ones(len(b["y"]), dtype=torch.bool)
            counts += torch.bincount(b["y"][m].long().cpu(),
                                     minlength=self.config.n_classes)[:self.config.n_classes]
        if counts.sum() > 0:
            self.label_freq.copy_((counts / counts.sum()).float())
