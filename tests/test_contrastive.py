"""nn/contrastive.py (C-DSVAE's estimators and views): InfoNCE and the minibatch stratified
aggregate posterior by hand, the bound's two ends, its gradient, what each view keeps."""
from __future__ import annotations

import math

import pytest
import torch

from factorseq.errors import ShapeError
from factorseq.nn.contrastive import (
    channel_colour,
    feature_affine,
    gaussian_log_table,
    info_nce,
    info_nce_codes,
    log_aggregate,
    mutual_information_mss,
    shuffle_time,
    similarity_table,
)


def lse(*v: float) -> float:
    return math.log(sum(math.exp(u) for u in v))


def test_info_nce_of_a_3x3_table_by_hand():
    s = [[2.0, 0.0, 1.0], [0.5, 1.0, 0.0], [1.0, -1.0, 3.0]]
    rows = sum(s[i][i] - lse(*s[i]) for i in range(3)) / 3
    cols = sum(s[j][j] - lse(*(s[i][j] for i in range(3))) for j in range(3)) / 3
    want = math.log(3) + 0.5 * (rows + cols)
    assert info_nce(torch.tensor(s, dtype=torch.float64)).item() == pytest.approx(want)
    with pytest.raises(ShapeError):
        info_nce(torch.zeros(2, 3))


def test_similarity_table_is_cosine_or_dot_over_temperature():
    a = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    # cos(a0, b0) = 4/5, cos(a0, b1) = -3/5, cos(a1, b0) = 0, cos(a1, b1) = -1; / 0.5
    want = torch.tensor([[1.6, -1.2], [0.0, -2.0]])
    assert torch.allclose(similarity_table(a, b, 0.5), want)
    assert torch.allclose(similarity_table(a, b, 2.0, cosine=False),
                          torch.tensor([[4.0, -1.5], [0.0, -0.5]]))
    with pytest.raises(ShapeError):
        similarity_table(a, b[:1])


def test_bound_is_log_batch_for_matched_codes_and_zero_for_independent():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 64, generator=g)
    matched = info_nce_codes(a, a, temperature=0.05).item()
    assert matched == pytest.approx(math.log(64), abs=0.02)
    assert matched <= math.log(64) + 1e-9
    b = torch.randn(256, 16, generator=g)
    c = torch.randn(256, 16, generator=g)
    assert abs(info_nce_codes(b, c, temperature=1.0).item()) < 0.1


def test_a_gradient_step_on_the_bound_pulls_positives_together():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(8, 4, generator=g, requires_grad=True)
    b = torch.randn(8, 4, generator=g)
    before = similarity_table(a, b).diagonal().detach()
    (-info_nce_codes(a, b)).backward()
    with torch.no_grad():
        after = similarity_table(a - 0.05 * a.grad, b).diagonal()
    assert bool((after > before).all())  # every positive pair's cosine grew


def test_log_aggregate_weights_by_hand():
    t = torch.tensor([[0.0, -1.0, -2.0], [-3.0, 1.0, 0.5], [-1.0, -1.0, 2.0]],
                     dtype=torch.float64)
    n, m = 10, 3
    w_own, w_other = 1 / n, (n - 1) / (n * (m - 1))
    for i in range(3):
        want = math.log(sum((w_own if j == i else w_other) * math.exp(t[i, j].item())
                            for j in range(3)))
        assert log_aggregate(t, n)[i].item() == pytest.approx(want)
        loo = math.log(sum(math.exp(t[i, j].item()) for j in range(3) if j != i) / 2)
        assert log_aggregate(t, None)[i].item() == pytest.approx(loo)


def test_gaussian_log_table_by_hand():
    s = torch.tensor([[0.5], [2.0]])
    m, v = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [math.log(4.0)]])
    t = gaussian_log_table(s, m, v)
    logn = lambda x, mu, var: -0.5 * (math.log(2 * math.pi * var) + (x - mu) ** 2 / var)  # noqa
    assert t[0, 1].item() == pytest.approx(logn(0.5, 1.0, 4.0))
    assert t[1, 0].item() == pytest.approx(logn(2.0, 0.0, 1.0))


def test_mss_mutual_information_sees_dependence():
    g = torch.Generator().manual_seed(2)
    b, tt = 256, 3
    u = torch.randn(b, 1, generator=g)
    small = torch.full((b, 1), math.log(0.05))
    small_z = torch.full((b, tt, 1), math.log(0.05))
    dep = mutual_information_mss(u, u, small, u[:, None].expand(b, tt, 1),
                                 u[:, None].expand(b, tt, 1), small_z)
    w = torch.randn(b, tt, 1, generator=g)
    ind = mutual_information_mss(u, u, small, w, w, small_z)
    assert dep.item() > 1.0 and abs(ind.item()) < 0.3


def test_shuffle_time_keeps_each_features_values_and_breaks_the_order():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 12, 3, generator=g)
    y = shuffle_time(x, generator=g)
    assert torch.equal(y.sort(1).values, x.sort(1).values)  # same multiset per feature
    assert not torch.equal(y, x)
    # the same permutation moves every feature of a step together
    idx = (y[:, :, :1] == x[:, None, :, 0]).float().argmax(2)  # where each step came from
    assert torch.equal(y, x.gather(1, idx.unsqueeze(-1).expand_as(x)))
    z = shuffle_time(x, block=4, generator=g)
    for k in range(3):  # blocks of 4 steps keep their values
        assert torch.equal(z[:, 4 * k:4 * k + 4].sort(1).values,
                           x[:, 4 * k:4 * k + 4].sort(1).values)


def test_feature_affine_keeps_the_time_course():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 10, 3, generator=g, dtype=torch.float64)
    y = feature_affine(x, log_scale=1.0, shift=2.0, generator=g)
    assert torch.equal(y.argsort(1), x.argsort(1))  # order of every feature's values
    assert torch.equal(y.argmax(1), x.argmax(1))
    gain = (y[:, 1:] - y[:, :1]) / (x[:, 1:] - x[:, :1])  # one positive gain per (window, d)
    assert torch.allclose(gain, gain[:, :1].expand_as(gain)) and bool((gain > 0).all())
    assert bool((gain.log().abs() <= 1.0 + 1e-9).all()) and not torch.allclose(y, x)
    noisy = feature_affine(x, log_scale=0.0, noise=0.1, generator=g)
    assert 0.05 < (noisy - x).std().item() < 0.15


def test_channel_colour_permutes_and_rescales_the_channels_of_every_frame_alike():
    """Each pixel keeps its place; channel k of the view is gain_k times one source channel,
    the same permutation and gains in every frame of a window."""
    torch.manual_seed(0)
    x = torch.rand(5, 3, 3 * 4 * 4) + 0.1
    v = channel_colour(x, [3, 4, 4], log_scale=0.5)
    xs, vs = x.reshape(5, 3, 3, 16), v.reshape(5, 3, 3, 16)
    for n in range(5):
        ratio = vs[n, 0, :, None, :] / xs[n, 0, None, :, :]  # (out ch, in ch, pixels)
        src = [int(torch.argmin(ratio[k].std(-1))) for k in range(3)]
        assert sorted(src) == [0, 1, 2]  # a permutation
        gain = torch.stack([ratio[k, src[k]].mean() for k in range(3)])
        assert ((gain > 0.6) & (gain < 1.65)).all()  # exp(+-0.5)
        for t in range(3):  # every frame alike
            torch.testing.assert_close(vs[n, t], gain[:, None] * xs[n, t, src])
    with pytest.raises(ShapeError):
        channel_colour(torch.rand(2, 3, 10), [3, 2, 2])
