"""The bundled ``sprites`` set: composition against Pillow by hand, labels, split, cache."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from factorseq.data import DataConfig, load_data
from factorseq.data import sprites as S
from factorseq.data.paths import data_dir
from factorseq.errors import FactorseqError

LAYERS = data_dir() / "sprites" / "layers"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORSEQ_CACHE", str(tmp_path / "cache"))


def load(**options):
    return load_data(DataConfig(source="sprites", options={"size": 16, "characters": 12,
                                                           **options}))


def sheet(skin, pants, top, hair):
    """The character's whole sheet, composed with Pillow as the DSVAE generator does."""
    img = Image.new("RGBA", (832, 1344), "black")
    for kind, v in (("body", skin), ("bottomwear", pants), ("topwear", top), ("hair", hair),
                    ("shoes", 1)):
        img = Image.alpha_composite(img, Image.open(LAYERS / kind / f"{v}.png").convert("RGBA"))
    return np.asarray(img)[..., :3]


def cell(img, row, col, size=64):
    """Cell (row, col) as (3, size, size): the mean of k x k blocks rounded half up."""
    c = img[row * 64:(row + 1) * 64, col * 64:(col + 1) * 64].astype(np.float64)
    k = 64 // size
    c = c.reshape(size, k, size, k, 3).mean(axis=(1, 3))
    return np.floor(c + 0.5).astype(np.uint8).transpose(2, 0, 1)


def test_character_composed_by_hand():
    # skin 2, top 3, pants 1, hair 4 -> character 2*216 + 1*36 + 3*6 + 4
    img = sheet(skin=2, pants=1, top=3, hair=4)
    out = S.generate(np.array([2 * 216 + 36 + 18 + 4]), 64)[0]  # (9, 8, 3, 64, 64)
    # walk = rows 8-11 (back, left, front, right); front walk starts at column 8
    assert np.array_equal(out[0 * 3 + 1, 0], cell(img, 10, 8))
    assert np.array_equal(out[0 * 3 + 1, 3], cell(img, 10, 3))
    # spellcast right (row 3): frame 6 repeats column 4, frame 7 is column 6
    assert np.array_equal(out[1 * 3 + 2, 6], cell(img, 3, 4))
    assert np.array_equal(out[1 * 3 + 2, 7], cell(img, 3, 6))
    # slash left (row 13): frame 7 returns to column 0
    assert np.array_equal(out[2 * 3 + 0, 7], cell(img, 13, 0))
    assert out[0, 0].max() > 0 and out[0, 0, :, 0, 0].sum() == 0  # a figure on black


def test_labels_match_the_composed_parts():
    data = load()
    x = data.x.reshape(len(data.x), 8, 3, 16, 16)
    e = data.extras
    for i in (0, 13, len(x) - 1):
        img = sheet(e["skin"][i], e["pants"][i], e["top"][i], e["hair"][i])
        row = {0: 8, 1: 0, 2: 12}[int(e["action"][i])] + 1 + int(e["direction"][i])
        col = {0: 8, 1: 0, 2: 0}[int(e["action"][i])]  # frame 0 of walk / spellcast / slash
        assert np.array_equal(np.round(x[i, 0] * 255).astype(np.uint8), cell(img, row, col, 16))
    t = data.test.extras
    img = sheet(t["skin"][5], t["pants"][5], t["top"][5], t["hair"][5])
    xt = data.test.x.reshape(-1, 8, 3, 16, 16)
    row = {0: 8, 1: 0, 2: 12}[int(t["action"][5])] + 1 + int(t["direction"][5])
    assert np.array_equal(np.round(xt[5, 1] * 255).astype(np.uint8), cell(img, row, 1, 16))


def test_annotations_and_meta():
    data = load(size=32)
    n = len(data.x)
    assert data.x.dtype == np.float32 and data.x.shape == (n, 8, 3 * 32 * 32)
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0 and data.x.max() > 0.5
    assert data.meta["frame_shape"] == [3, 32, 32] and data.meta["n_classes"] == 9
    assert data.meta["factors"] == {"static": ["skin", "top", "pants", "hair"],
                                    "dynamic": ["motion"]}
    assert data.meta["factor_classes"]["motion"] == 9 and data.meta["scaler"] == "none"
    e = data.extras
    assert np.array_equal(data.y, e["action"] * 3 + e["direction"])
    assert np.array_equal(data.y, e["motion"]) and data.y_mask.all()
    assert np.array_equal(data.seq_id, e["character"])
    assert np.array_equal(e["character"], e["skin"] * 216 + e["pants"] * 36 + e["top"] * 6
                          + e["hair"])
    assert all(v.dtype == np.int64 and len(v) == n for v in e.values())
    # each character has its 9 motions
    assert np.array_equal(np.bincount(data.seq_id)[np.unique(data.seq_id)], np.full(n // 9, 9))


def test_split_by_character():
    train, test = S.split_characters()
    assert (len(train), len(test)) == (1000, 296) and not set(train) & set(test)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(1296))
    other, _ = S.split_characters(seed=1)
    assert not np.array_equal(train, other)
    data = load(characters=40)  # 31 training and 9 test characters of the same split
    a, b = set(data.seq_id), set(data.test.seq_id)
    assert (len(a), len(b)) == (31, 9) and not a & b
    assert a <= set(train.tolist()) and b <= set(test.tolist())
    assert (len(data.x), len(data.test.x)) == (31 * 9, 9 * 9)


def test_validation_characters_come_from_the_training_ones():
    """Settings are chosen on training characters held out; no test character is loaded."""
    full = load(characters=40)
    val = load(characters=40, validation=6)
    train, held = set(val.seq_id), set(val.test.seq_id)
    assert (len(train), len(held)) == (25, 6) and not train & held
    assert train | held == set(full.seq_id) and not held & set(full.test.seq_id)
    assert val.test.meta["split"] == "validation"
    np.testing.assert_array_equal(val.test.x, full.x[-6 * 9:])


def test_full_counts(monkeypatch):
    # the frames are blank here (composition is checked above): counts and split only
    monkeypatch.setattr(S, "generate", lambda chars, size, folder: np.zeros(
        (len(chars), 9, 8, 3, size, size), np.uint8))
    data = load(characters=1296)
    assert (len(data.x), len(data.test.x)) == (9000, 2664)
    assert len(set(data.seq_id)) == 1000 and not set(data.seq_id) & set(data.test.seq_id)


def test_same_options_same_bytes(tmp_path, monkeypatch):
    first = load()
    assert len(list((tmp_path / "cache").glob("sprites-*.npz"))) == 1

    def fail(*a, **k):
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(S, "generate", fail)
    cached = load()
    monkeypatch.undo()
    monkeypatch.setenv("FACTORSEQ_CACHE", str(tmp_path / "fresh"))
    fresh = load()
    for d in (cached, fresh):
        assert d.x.tobytes() == first.x.tobytes()
        assert d.test.x.tobytes() == first.test.x.tobytes()
        assert np.array_equal(d.seq_id, first.seq_id)
    assert load(split_seed=3).seq_id.tolist() != first.seq_id.tolist()


def test_compositing_is_pillows():
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    dst = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ref = Image.alpha_composite(Image.fromarray(np.dstack([dst, np.full((64, 64), 255,
                                                                        np.uint8)])),
                                Image.fromarray(src))
    assert np.array_equal(S.over(dst, src), np.asarray(ref)[..., :3])


def test_downsample_is_a_block_mean():
    f = np.zeros((64, 64, 3), np.uint8)
    f[0, 0], f[0, 1], f[1, 1] = 255, 1, 2  # block (0, 0): (255 + 1 + 2 + 0) / 4 = 64.5 -> 65
    f[2, 2] = 3  # block (1, 1) at 32: 3 / 4 = 0.75 -> 1; at 16 in block (0, 0): 261 / 16
    assert S.downsample(f, 32)[0, 0, 0] == 65 and S.downsample(f, 32)[1, 1, 0] == 1
    assert S.downsample(f, 16)[0, 0, 0] == 16 and S.downsample(f, 64) is f


@pytest.mark.parametrize("damage", ["missing", "broken"])
def test_bad_layer_file_is_named(tmp_path, monkeypatch, damage):
    copy = tmp_path / "data"
    shutil.copytree(LAYERS, copy / "sprites" / "layers")
    monkeypatch.setenv("FACTORSEQ_DATA_DIR", str(copy))
    bad = copy / "sprites" / "layers" / "hair" / "3.png"
    if damage == "missing":
        bad.unlink()
    else:
        bad.write_bytes(bad.read_bytes()[:200])  # a truncated PNG
    with pytest.raises(FactorseqError, match="hair/3.png"):
        load()


@pytest.mark.parametrize("options", [{"size": 24}, {"characters": 1}, {"characters": 2000},
                                     {"split_seed": -1}, {"size": "big"},
                                     {"validation": 31}, {"validation": -2}])
def test_bad_options(options):
    with pytest.raises(FactorseqError, match="data option"):
        load(**options)
