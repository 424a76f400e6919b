"""Nothing a user has may be lost, and messages lead somewhere (issue #11, parts 1 and 2):
``--force`` replaces only a factorseq run and only after the new one trained; every output is
written all or nothing; output paths are checked before any work; user errors are one line."""
from __future__ import annotations

import numpy as np
import pytest

from clihelp import user_error

FAST = ["--epochs", "1", "--batch-size", "32", "--set", "train.tensorboard=false",
        "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    rng = np.random.default_rng(0)
    t = np.arange(12)
    x = np.sin(t[None, :, None] * rng.uniform(0.2, 0.6, (160, 1, 2))
               + rng.uniform(0, 3, (160, 1, 2)))
    path = root / "w.npz"
    np.savez(path, data=x.astype(np.float32))
    return path


def test_wrong_types_name_the_key_the_value_and_the_type(data, tmp_path, capsys):
    base = ["train", "vae_conv", "--data", data, "--out", tmp_path / "r", *FAST]
    assert user_error(capsys, *base, "--set", "latent_dim=abc") == \
        "error: vae_conv config key latent_dim must be an integer, got 'abc'"
    assert user_error(capsys, *base, "--set", "train.lr=fast") == \
        "error: train config key lr must be a number, got 'fast'"
    assert "window must be an integer, got 'long'" in user_error(capsys, *base, "--set",
                                                                "data.window=long")
    assert "grad_clip must be a number or null" in user_error(capsys, *base, "--set",
                                                             "train.grad_clip=[1]")
