"""The Diffusion-TS denoiser (Yuan & Qiao, ICLR 2024, Sec. 3): a transformer encoder-decoder
that maps a noisy window x_t (batch, time, features) and its step t to a prediction of x0,
written as interpretable parts.

- Input: a width-3 convolution over time embeds the features (``width`` channels); encoder and
  decoder add their own learnable position embeddings.
- Step conditioning: a sinusoidal embedding of t sets the scale and shift of every
  attention block's layer norm (AdaLayerNorm, ``LN(h) * (1 + s(t)) + b(t)``).
- Encoder blocks: self-attention (ada-norm) + MLP (pre-norm), residual.
- Decoder blocks: self-attention and cross-attention to the encoder (both ada-norm); then a
  linear map over time splits the state into two (time, width) halves: one feeds a
  polynomial **trend** head, the other a **seasonal** head (inverse DFT of its top-k
  frequencies); an MLP updates the state, whose time mean is taken out as a **level**.
- Conditioning (``n_cond`` > 0): a vector c (batch, n_cond) plus a flag "no condition"
  (classifier-free guidance) is embedded by a small MLP and added to the step embedding, so it
  sets every ada-norm's scale and shift along with t.
- Output: level (weighted sum over blocks of a linear read-out of each block's mean, plus the
  mean of the read-out) + trend (sum over blocks) + seasonal (sum over blocks, projected to
  the features) + **residual** (the zero-mean read-out of the last state). The parts sum to
  the x0 prediction.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def step_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding of steps t (batch,) -> (batch, width): sin and cos of t / 10000^(i/h)
    for i < h = width / 2 (the transformer position code applied to the diffusion step)."""
    half = width // 2
    freq = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / max(half - 1, 1)))
    arg = t.float()[:, None] * freq[None, :]
    emb = torch.cat([arg.sin(), arg.cos()], dim=-1)
    return F.pad(emb, (0, width - 2 * half))


def cond_input(c: torch.Tensor | None, n: int, width: int, like: torch.Tensor,
               keep: torch.Tensor | None = None) -> torch.Tensor:
    """The conditioning input (n, width + 1): [c * keep, 1 - keep] with keep (n,) in {0, 1}
    (0 = dropped: zeros and the null flag set; classifier-free guidance); ``c`` None = all
    dropped."""
    if c is None:
        c, keep = like.new_zeros(n, width), like.new_zeros(n)
    keep = c.new_ones(n) if keep is None else keep.to(c.dtype)
    return torch.cat([c * keep[:, None], (1.0 - keep)[:, None]], dim=1)


class AdaLayerNorm(nn.Module):
    """LayerNorm without its own affine, scaled and shifted by the step: LN(h)(1 + s) + b with
    (s, b) = Linear(SiLU(embedding of t))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(width, 2 * width)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(F.silu(temb)).unsqueeze(1).chunk(2, dim=-1)
        return self.norm(h) * (1 + scale) + shift


class Attention(nn.Module):
    """Multi-head attention of ``h`` (batch, time, width) over ``context`` (itself by default),
    through torch's fused scaled_dot_product_attention."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = h if context is None else context
        b, t, w = h.shape
        q = self.q(h).view(b, t, self.heads, -1).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.out(y.transpose(1, 2).reshape(b, t, w)))


def mlp(width: int, mult: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, mult * width), nn.GELU(),
                         nn.Linear(mult * width, width), nn.Dropout(dropout))


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.attn = AdaLayerNorm(width), Attention(width, heads, dropout)
        self.norm2, self.mlp = nn.LayerNorm(width), mlp(width, mult, dropout)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.norm1(h, temb))
        return h + self.mlp(self.norm2(h))


class TrendHead(nn.Module):
    """State (batch, time, width) -> polynomial trend (batch, time, features):
    ``trend[t, d] = sum_{p=1..P} a[p, d] u_t^p`` with u_t = (t + 1) / (T + 1) and coefficients
    a (batch, P, features) read from the state (a map over time to P slots, GELU, a map over
    width to the features). No constant term: that is the level."""

    def __init__(self, seq_len: int, width: int, n_features: int, degree: int) -> None:
        super().__init__()
        self.to_slots = nn.Linear(seq_len, degree)
        self.to_features = nn.Linear(width, n_features)
        u = torch.arange(1, seq_len + 1, dtype=torch.float32) / (seq_len + 1)
        self.register_buffer("basis", torch.stack([u ** p for p in range(1, degree + 1)], 1),
                             persistent=False)  # (T, P)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.to_features(F.gelu(self.to_slots(h.transpose(1, 2)).transpose(1, 2)))
        return self.basis @ a  # (T, P) @ (B, P, D) -> (B, T, D)


def top_k_frequencies(h: torch.Tensor, k: int) -> torch.Tensor:
    """Keep, per window and channel, the ``k`` frequencies of largest amplitude of the real DFT
    of ``h`` (batch, time, width) over time, excluding the mean (0) and the Nyquist bin (even
    T), and return their inverse DFT: sum_k |X_k| (2 / T) cos(2 pi f_k t + phase_k), the
    least-squares projection of h onto those sinusoids."""
    t = h.shape[1]
    spec = torch.fft.rfft(h, dim=1)
    hi = spec.shape[1] - 1 if t % 2 == 0 else spec.shape[1]
    band = spec[:, 1:hi]
    if band.shape[1] == 0:
        return torch.zeros_like(h)
    idx = band.abs().topk(min(k, band.shape[1]), dim=1).indices
    keep = torch.zeros(band.shape, dtype=h.dtype, device=h.device).scatter_(1, idx, 1.0)
    kept = torch.zeros_like(spec)
    kept[:, 1:hi] = band * keep
    return torch.fft.irfft(kept, n=t, dim=1)


class DecoderBlock(nn.Module):
    """Self- and cross-attention, then the trend / seasonal heads on a split of the state."""

    def __init__(self, seq_len: int, width: int, n_features: int, heads: int, mult: int,
                 dropout: float, trend_degree: int, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.norm1, self.self_attn = AdaLayerNorm(width), Attention(width, heads, dropout)
        self.norm2, self.cross_attn = AdaLayerNorm(width), Attention(width, heads, dropout)
        self.split = nn.Linear(seq_len, 2 * seq_len)  # over time: two (time, width) halves
        self.trend = TrendHead(seq_len, width, n_features, trend_degree)
        self.norm3, self.mlp = nn.LayerNorm(width), mlp(width, mult, dropout)
        self.level = nn.Linear(width, n_features)

    def forward(self, h: torch.Tensor, enc: torch.Tensor, temb: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (zero-mean state, level (B, 1, D), trend (B, T, D), seasonal state (B, T, W))."""
        h = h + self.self_attn(self.norm1(h, temb))
        h = h + self.cross_attn(self.norm2(h, temb), enc)
        h_trend, h_season = self.split(h.transpose(1, 2)).transpose(1, 2).chunk(2, dim=1)
        trend = self.trend(h_trend)
        season = top_k_frequencies(h_season, self.top_k)
        h = h + self.mlp(self.norm3(h))
        mean = h.mean(dim=1, keepdim=True)
        return h - mean, self.level(mean), trend, season


class DiffusionTSDenoiser(nn.Module):
    """(x_t (batch, time, features), t (batch,)) -> parts of the x0 prediction; see module doc."""

    def __init__(self, seq_len: int, n_features: int, width: int, enc_layers: int,
                 dec_layers: int, heads: int, mult: int = 4, dropout: float = 0.0,
                 trend_degree: int = 3, top_k: int | None = None, n_cond: int = 0) -> None:
        super().__init__()
        self.width, self.n_cond = width, n_cond
        # (c, null flag) -> a step-embedding-sized shift; no module without conditioning
        self.cond = (nn.Sequential(nn.Linear(n_cond + 1, width), nn.SiLU(),
                                   nn.Linear(width, width)) if n_cond else None)
        n_band = max(seq_len // 2 - (1 if seq_len % 2 == 0 else 0), 1)
        # the reference keeps int(log(#frequencies)) of them (2 of 11 for 24 steps)
        self.top_k = top_k or max(1, int(math.log(n_band)))
        self.embed = nn.Conv1d(n_features, width, 3, padding=1)
        self.pos_enc = nn.Parameter(torch.empty(1, seq_len, width).uniform_(-0.02, 0.02))
        self.pos_dec = nn.Parameter(torch.empty(1, seq_len, width).uniform_(-0.02, 0.02))
        self.encoder = nn.ModuleList(EncoderBlock(width, heads, mult, dropout)
                                     for _ in range(enc_layers))
        self.decoder = nn.ModuleList(
            DecoderBlock(seq_len, width, n_features, heads, mult, dropout, trend_degree,
                         self.top_k) for _ in range(dec_layers))
        self.readout = nn.Conv1d(width, n_features, 3, padding=1)
        self.season_out = nn.Linear(width, n_features, bias=False)
        self.level_mix = nn.Parameter(torch.full((dec_layers,), 1.0 / dec_layers))
        self.drop = nn.Dropout(dropout)

    def parts(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None
              ) -> dict[str, torch.Tensor]:
        """``level`` (B, 1, D), ``trend``, ``seasonal``, ``residual`` (B, T, D); x0 = their sum
        (the level broadcast over time). ``cond`` (B, n_cond + 1): the condition and its null
        flag (:func:`cond_input`); None = no condition."""
        temb = step_embedding(t, self.width)
        if self.cond is not None:
            temb = temb + self.cond(cond_input(None, x_t.shape[0], self.n_cond, x_t)
                                    if cond is None else cond)
        emb = self.embed(x_t.transpose(1, 2)).transpose(1, 2)
        enc = self.drop(emb + self.pos_enc)
        for block in self.encoder:
            enc = block(enc, temb)
        h = self.drop(emb + self.pos_dec)
        trend = season = 0.0
        levels = []
        for block in self.decoder:
            h, level, tr, se = block(h, enc, temb)
            trend, season = trend + tr, season + se
            levels.append(level)
        res = self.readout(h.transpose(1, 2)).transpose(1, 2)
        res_mean = res.mean(dim=1, keepdim=True)
        level = torch.einsum("l,lbtd->btd", self.level_mix, torch.stack(levels)) + res_mean
        return {"level": level, "trend": trend, "seasonal": self.season_out(season),
                "residual": res - res_mean}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None
                ) -> torch.Tensor:
        p = self.parts(x_t, t, cond)
        return p["level"] + p["trend"] + p["seasonal"] + p["residual"]
