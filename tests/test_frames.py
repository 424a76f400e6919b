"""Per-frame conv networks (nn/frames.py) and DSVAE's ``frame_net: conv``: shapes at 16/32/64,
exact halving, one frame in -> one step out, config validation, meta filling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from factorseq.config import build
from factorseq.data.container import SequenceData
from factorseq.errors import FactorseqError, ShapeError
from factorseq.models.dsvae import DSVAE, DSVAEConfig
from factorseq.nn.frames import FrameDecoder, FrameEncoder, stages
from factorseq.train.fit import model_config


@pytest.mark.parametrize(("shape", "k"), [((3, 64, 64), 4), ((3, 32, 32), 3), ((1, 16, 16), 2),
                                          ((3, 8, 8), 1), ((2, 4, 4), 0), ((1, 28, 12), 2)])
def test_stages_halve_down_to_four_or_an_odd_side(shape, k):
    assert stages(shape[1], shape[2]) == k


@pytest.mark.parametrize("shape", [(3, 64, 64), (3, 32, 32), (1, 16, 16), (2, 4, 4),
                                   (1, 28, 12)])
def test_round_trip_shapes(shape):
    d = int(np.prod(shape))
    enc, dec = FrameEncoder(shape, 10, channels=4), FrameDecoder(shape, 10, channels=4,
                                                                 output="sigmoid")
    x = torch.rand(2, 3, d)
    h = enc(x)
    assert h.shape == (2, 3, 10)
    y = dec(h).detach()
    assert y.shape == (2, 3, d)
    assert float(y.min()) > 0.0 and float(y.max()) < 1.0  # sigmoid read-out


def test_each_step_is_its_own_frame():
    """Changing frame 1 changes step 1's features only (a per-frame net, no mixing in time)."""
    torch.manual_seed(0)
    shape = (3, 16, 16)
    enc, dec = FrameEncoder(shape, 6, channels=4), FrameDecoder(shape, 6, channels=4)
    x = torch.rand(1, 3, 768)
    x2 = x.clone()
    x2[0, 1] = torch.rand(768)
    changed = (enc(x) - enc(x2)).abs().sum(-1)[0]
    assert changed[1] > 0 and changed[0] == 0 and changed[2] == 0
    z = torch.randn(1, 3, 6)
    z2 = z.clone()
    z2[0, 2] += 1.0
    changed = (dec(z) - dec(z2)).abs().sum(-1)[0]
    assert changed[2] > 0 and changed[0] == 0 and changed[1] == 0


def test_frames_must_match_the_frame_shape():
    enc = FrameEncoder((3, 8, 8), 5, channels=2)
    with pytest.raises(ShapeError, match=r"frames x .*\(2, 4, 100\)"):
        enc(torch.zeros(2, 4, 100))
    with pytest.raises(ShapeError, match=r"frame codes .*\(2, 5\)"):
        FrameDecoder((3, 8, 8), 5, channels=2)(torch.zeros(2, 5))


def test_conv_config_needs_a_frame_shape_of_the_feature_count():
    base = dict(seq_len=4, n_features=192, f_dim=2, z_dim=2, hidden=8, frame_net="conv")
    with pytest.raises(FactorseqError, match="needs frame_shape"):
        build(DSVAEConfig, base)
    with pytest.raises(FactorseqError, match=r"frame_shape \[3, 8, 4\] holds 96 .* 192"):
        build(DSVAEConfig, {**base, "frame_shape": [3, 8, 4]})
    with pytest.raises(FactorseqError, match="frame_net must be one of mlp, conv"):
        build(DSVAEConfig, {**base, "frame_net": "cnn"})
    assert build(DSVAEConfig, {**base, "frame_shape": [3, 8, 8]}).frame_shape == (3, 8, 8)


def test_frame_shape_is_filled_from_the_data_meta():
    data = SequenceData(np.zeros((4, 5, 48), np.float32), meta={"frame_shape": [3, 4, 4]})
    cfg = model_config(DSVAE, data, {"frame_net": "conv", "hidden": 8})
    assert cfg.frame_shape == (3, 4, 4) and cfg.n_features == 48 and cfg.seq_len == 5


def test_conv_dsvae_trains_encodes_and_swaps_factors():
    torch.manual_seed(0)
    cfg = build(DSVAEConfig, dict(seq_len=4, n_features=192, f_dim=3, z_dim=2, hidden=16,
                                  frame_net="conv", frame_shape=[3, 8, 8], frame_channels=4))
    model = DSVAE(cfg)
    x = torch.rand(5, 4, 192)
    out = model.loss({"x": x})
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert model.frames.body[0].weight.grad.abs().sum() > 0  # the conv net is trained
    model.eval()
    codes = model.encode(x)
    assert codes["f"].shape == (5, 3) and codes["z"].shape == (5, 4, 2)
    assert model.reconstruct(x).shape == x.shape
    g = model.generate(5, reference=x, keep=["z"], generator=torch.Generator().manual_seed(1))
    assert g.shape == x.shape


def test_conv_dsvae_with_the_contrastive_terms_reads_the_views_frames():
    """The views are of the windows; the encoders must read them through the frame net."""
    torch.manual_seed(0)
    cfg = build(DSVAEConfig, dict(seq_len=4, n_features=192, f_dim=3, z_dim=2, hidden=16,
                                  frame_net="conv", frame_shape=[3, 8, 8], frame_channels=4,
                                  contrastive_weight=1.0, mi_weight=1.0))
    out = DSVAE(cfg).loss({"x": torch.rand(6, 4, 192)})
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["nce_static"] != 0 and out["nce_dynamic"] != 0


def test_colour_view_needs_image_frames():
    with pytest.raises(FactorseqError, match="dynamic_view colour needs image frames"):
        build(DSVAEConfig, dict(seq_len=4, n_features=12, dynamic_view="colour"))
    with pytest.raises(FactorseqError, match="dynamic_view must be"):
        build(DSVAEConfig, dict(seq_len=4, n_features=12, dynamic_view="hue"))
