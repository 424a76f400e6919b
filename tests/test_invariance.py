"""The adversarial invariance term (nn/invariance.py) against hand computation: its value is
the head's cross-entropy, the code receives -lambda times that loss's gradient while the head
receives +, masked labels add nothing, and the head is a working probe (chance on codes
independent of the label, ~1 on codes that copy it)."""
from __future__ import annotations

import math

import pytest
import torch

from factorseq.errors import FactorseqError
from factorseq.nn.invariance import (
    AdversarialInvariance,
    adversary_lambda,
    check_adversary,
    reversal_lambda,
)


def head(dim: int = 3, k: int = 4, seed: int = 0) -> AdversarialInvariance:
    torch.manual_seed(seed)
    return AdversarialInvariance(dim, k, hidden=5, layers=1)


def codes(n: int = 6, dim: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_value_is_the_cross_entropy_on_known_rows_by_hand():
    c, h = codes(), head()
    y = torch.tensor([0, 3, 1, 2, 2, 0])
    mask = torch.tensor([True, False, True, True, False, True])
    t = h.term(c, y, mask, lambd=0.7)
    logits = h(c).detach()
    rows = [i for i in range(6) if mask[i]]
    # CE = mean over known rows of log sum_k exp(l_k) - l_y
    want = sum(math.log(sum(math.exp(float(v)) for v in logits[i])) - float(logits[i, y[i]])
               for i in rows) / len(rows)
    assert math.isclose(float(t.loss.detach()), want, rel_tol=1e-6)
    acc = sum(int(logits[i].argmax() == y[i]) for i in rows) / len(rows)
    assert math.isclose(float(t.accuracy), acc) and t.known == 4


def test_two_classes_use_one_logit_and_the_binary_cross_entropy():
    c, h = codes(), head(k=2)
    assert h[-1].out_features == 1
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    t = h.term(c, y)
    l_ = h(c).detach().squeeze(-1)
    # -log sigmoid(l) for y = 1, -log(1 - sigmoid(l)) for y = 0
    want = sum(math.log1p(math.exp(-float(v))) if yi else math.log1p(math.exp(float(v)))
               for v, yi in zip(l_, y, strict=True)) / 6
    assert math.isclose(float(t.loss.detach()), want, rel_tol=1e-6)
    assert math.isclose(float(t.accuracy), float(((l_ > 0).long() == y).float().mean()))


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("lambd", [0.0, 0.5, 3.0])
def test_code_gets_minus_lambda_the_gradient_and_the_head_gets_plus(k, lambd):
    h = head(k=k)
    y = torch.tensor([0, 1, 1, 0, 1, 0]) if k == 2 else torch.tensor([0, 3, 1, 2, 2, 0])
    c = codes().requires_grad_(True)
    h.term(c, y, lambd=lambd).loss.backward()
    g_code, g_head = c.grad.clone(), [p.grad.clone() for p in h.parameters()]
    # reference: the same loss with no reversal
    c2 = codes().requires_grad_(True)
    h.zero_grad()
    logits = h(c2)
    ref = (torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(-1), y.float())
           if k == 2 else torch.nn.functional.cross_entropy(logits, y))
    ref.backward()
    assert c2.grad.abs().sum() > 0
    torch.testing.assert_close(g_code, -lambd * c2.grad)
    for a, b in zip(g_head, h.parameters(), strict=True):
        torch.testing.assert_close(a, b.grad)


@pytest.mark.parametrize("k", [2, 4])
def test_confusion_mode_by_hand(k):
    """The head's gradient is that of its cross-entropy on the stopped code; the code's is
    lambda times that of -1/K sum_k log p_k (BCE against 1/2 for two classes), the head held
    fixed; the value is their sum."""
    lambd = 0.7
    h = head(k=k)
    h.mode = "confusion"
    y = torch.tensor([0, 1, 1, 0, 1, 0]) if k == 2 else torch.tensor([0, 3, 1, 2, 2, 0])
    c = codes().requires_grad_(True)
    t = h.term(c, y, lambd=lambd)
    t.loss.backward()
    g_code, g_head = c.grad.clone(), [p.grad.clone() for p in h.parameters()]
    h.zero_grad()
    c2 = codes().requires_grad_(True)
    logits = h(c2)
    if k == 2:
        p1 = torch.sigmoid(logits.squeeze(-1))
        ce = -(y * p1.log() + (1 - y) * (1 - p1).log()).mean()
        uniform = -(0.5 * p1.log() + 0.5 * (1 - p1).log()).mean()
    else:
        logp = torch.log_softmax(logits, -1)
        ce = -logp[torch.arange(6), y].mean()
        uniform = -logp.mean()
    assert math.isclose(t.loss.item(), (ce + lambd * uniform).item(), rel_tol=1e-5)
    (g_ref,) = torch.autograd.grad(lambd * uniform, c2, retain_graph=True)
    torch.testing.assert_close(g_code, g_ref)
    ce.backward()
    for a, b in zip(g_head, h.parameters(), strict=True):
        torch.testing.assert_close(a, b.grad)


def test_confusion_is_smallest_when_the_head_cannot_tell_and_a_flip_does_not_help():
    """A head that reads the label off a code: the flipped code (label kept, but inverted)
    costs as much confusion as the right one, while the reversed cross-entropy rewards it."""
    h = AdversarialInvariance(2, 2, hidden=4, layers=1, mode="confusion")
    with torch.no_grad():  # a head whose logit (class 1) is 5 * (code[1] - code[0])
        for p in h.parameters():
            p.zero_()
        h[0].weight[0] = torch.tensor([-1.0, 1.0])
        h[0].bias[0] = 0.0
        h[2].weight[0, 0] = 5.0
    y = torch.tensor([0, 1, 0, 1])
    right = torch.nn.functional.one_hot(y, 2).float()
    flipped, blank = 1 - right, torch.full((4, 2), 0.5)
    conf = {n: float(h._confusion(c)) for n, c in
            [("right", right), ("flipped", flipped), ("blank", blank)]}
    ce = {n: float(h._cross_entropy(h(c), y)) for n, c in [("right", right), ("flipped", flipped)]}
    assert math.isclose(conf["right"], conf["flipped"], rel_tol=1e-6)
    assert math.isclose(conf["blank"], math.log(2), rel_tol=1e-6) and conf["right"] > 1.0
    assert ce["flipped"] > ce["right"] + 2.5  # the reversed gradient prefers the flip


def test_masked_rows_contribute_nothing():
    h = head()
    mask = torch.tensor([True, False, True, False, True, True])
    y1 = torch.tensor([0, 3, 1, 2, 2, 0])
    y2 = torch.where(mask, y1, torch.tensor(99))  # unknown labels may hold any value
    c1 = codes().requires_grad_(True)
    c2 = torch.where(mask[:, None], codes(), codes(seed=9)).detach().requires_grad_(True)
    t1, t2 = h.term(c1, y1, mask), h.term(c2, y2, mask)
    assert float(t1.loss) == float(t2.loss) and float(t1.accuracy) == float(t2.accuracy)
    t1.loss.backward()
    t2.loss.backward()
    torch.testing.assert_close(c1.grad, c2.grad)
    assert float(c1.grad[~mask].abs().sum()) == 0.0
    # every label unknown: a zero loss that still back-propagates, no accuracy
    c = codes().requires_grad_(True)
    t = h.term(c, y1, torch.zeros(6, dtype=torch.bool))
    t.loss.backward()
    assert float(t.loss) == 0.0 and t.accuracy is None and t.known == 0
    assert t.logged("adv") == {}
    assert set(t1.logged("adv")) == {"adv_loss", "adv_acc"}


def _held_out_accuracy(copy_label: bool) -> float:
    """Train the head alone on 600 codes, score it on 600 others (4 balanced classes)."""
    g = torch.Generator().manual_seed(3)
    y = torch.arange(1200) % 4
    noise = torch.randn(1200, 4, generator=g)
    c = torch.nn.functional.one_hot(y, 4).float() + 0.1 * noise if copy_label else noise
    h = head(dim=4, k=4)
    opt = torch.optim.Adam(h.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        h.term(c[:600], y[:600]).loss.backward()
        opt.step()
    with torch.no_grad():
        return float(h.term(c[600:], y[600:]).accuracy)


def test_the_head_estimates_chance_on_independent_codes_and_one_on_copies():
    assert abs(_held_out_accuracy(False) - 0.25) < 0.07  # chance: 4 balanced classes
    assert _held_out_accuracy(True) > 0.98


def test_schedule_and_checks():
    assert reversal_lambda(0.0) == 0.0 and reversal_lambda(2.0) == reversal_lambda(1.0)
    assert math.isclose(reversal_lambda(0.3, 5.0, 2.0), 2.0 * (2 / (1 + math.exp(-1.5)) - 1))
    assert adversary_lambda(0.8, "constant", 0.1) == 0.8
    with pytest.raises(ValueError, match="x_mode must be one of"):
        check_adversary(1.0, "constant", "x", "flip")
    with pytest.raises(FactorseqError, match="invariance mode"):
        AdversarialInvariance(2, 3, mode="flip")
    assert math.isclose(adversary_lambda(0.8, "dann", 0.1), reversal_lambda(0.1, 10.0, 0.8))
    from factorseq.models import dann
    assert dann.reversal_lambda is reversal_lambda  # one schedule, in nn/
    check_adversary(0.0, "dann", "z1_adversary")
    with pytest.raises(ValueError, match="z1_adversary_weight"):
        check_adversary(-1.0, "constant", "z1_adversary")
    with pytest.raises(ValueError, match="z1_adversary_schedule"):
        check_adversary(1.0, "linear", "z1_adversary")
    with pytest.raises(FactorseqError, match="outside"):
        head().term(codes(), torch.tensor([0, 1, 2, 3, 4, 0]))
    with pytest.raises(FactorseqError, match="2 classes"):
        AdversarialInvariance(3, 1)
