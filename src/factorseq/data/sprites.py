"""Bundled ``sprites``: the Sprites video benchmark of sequential disentanglement (Li & Mandt,
"Disentangled Sequential Autoencoder", ICML 2018), generated here from the layered
Liberated Pixel Cup sheets in ``data/sprites/layers`` (provenance: ``data/sprites/README.md``).

Characters. 1,296 = skin (``body/0-5``) x pants (``bottomwear/0-5``) x top (``topwear/0-5``) x
hair (``hair/0-5``); character index = skin*216 + pants*36 + top*6 + hair (the order of the
DSVAE authors' generator). A character is the layers body, bottomwear, topwear, hair and
``shoes/1`` alpha-composited in that order over opaque black; each step is Pillow's
``alpha_composite`` onto an opaque canvas, out = round((src*a + dst*(255 - a)) / 255) per
channel in integers (identical to Pillow for every (src, a, dst) byte triple, checked).

Motions. Sheets are 13 x 21 cells of 64 x 64; each action is a block of 4 rows facing back,
left, front, right. 9 motions = action (walk, spellcast, slash) x direction (left, front,
right); y = motion = action*3 + direction. The 8 frames are the sheet columns
    walk      8 1 2 3 4 5 6 7   (the 8-cell walk loop; the standing cell 0 is not used)
    spellcast 0 1 2 3 4 5 4 6   (7 cells: cell 4 shown again before the last cell)
    slash     0 1 2 3 4 5 4 0   (6 cells: cell 4 again, then back to the first pose)
i.e. the frames of the DSVAE authors' public generator, so that the sequences are the
benchmark's: a shorter action repeats a mid-swing pose and (slash) returns to its start
rather than freezing on one frame.

Sizes. ``options.size`` 64 (default), 32 or 16: area-averaged downsampling of the composed
64 x 64 frames (mean of each 2x2 / 4x4 block, rounded half up to uint8). Frames are
flattened channel first: ``x.reshape(N, 8, 3, H, W)``; ``x`` = uint8 / 255 in [0, 1].

Split. By character: ``RandomState(options.split_seed).permutation(1296)`` (default seed 0),
the first 1,000 characters train (9,000 sequences), the other 296 test (2,664, ``.test``);
``split_seed=423`` gives the DSVAE authors' split. Within a split, sequences are ordered by
character, then motion. ``options.characters`` = N < 1296 (quick tests, smoke runs) keeps the
first round(N * 1000 / 1296) training and the rest test characters of that same split.
``options.validation`` = V > 0 holds the last V of the training characters out as the ``.test``
split (named ``validation``) and trains on the others: settings are chosen on those
characters; the test characters are then not loaded at all.

Cache. The uint8 frames of the selected characters are generated once (vectorised: unique
partial characters are composed once and each layer is painted only on the pixels it covers)
and cached in ``<cache>/sprites-v<VERSION>-s<size>-<which>-<layers hash>.npz``
(:func:`~factorseq.data.paths.cache_dir`), keyed on the layer files' content. Full 64 x 64 data
as float32 is 4.6 GB (train 3.5 GB); ``size=32`` (1.1 GB) is the CPU choice.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import FactorseqError
from ..io import atomic_output
from .config import DataConfig, int_option
from .container import SequenceData
from .paths import cache_dir, data_dir
from .registry import dataset

GENERATOR_VERSION = 1  # bump when the frames a character yields change
ACTIONS = ("walk", "spellcast", "slash")
DIRECTIONS = ("left", "front", "right")
# first sheet row of each action's block (rows: back, left, front, right) and its 8 columns
ACTION_ROW = {"walk": 8, "spellcast": 0, "slash": 12}
ACTION_COLUMNS = {"walk": (8, 1, 2, 3, 4, 5, 6, 7), "spellcast": (0, 1, 2, 3, 4, 5, 4, 6),
                  "slash": (0, 1, 2, 3, 4, 5, 4, 0)}
# compositing order: (layer folder, factor name); each has variants 0..5
PARTS = (("body", "skin"), ("bottomwear", "pants"), ("topwear", "top"), ("hair", "hair"))
SHOES = ("shoes", 1)  # one fixed pair, painted last, as the DSVAE generator does
N_VARIANTS = 6
N_CHARACTERS = N_VARIANTS ** 4
N_TRAIN = 1000  # DSVAE's 1,000 training / 296 test characters
FRAME, GRID = 64, (21, 13)  # 64 x 64 cells, 21 rows x 13 columns
SIZES = (64, 32, 16)
T = 8
CITATION = ("Y. Li, S. Mandt, \"Disentangled Sequential Autoencoder\", ICML 2018 (data "
            "generation: github.com/YingzhenLi/Sprites); art: Liberated Pixel Cup "
            "(lpc.opengameart.org) and Universal-LPC-spritesheet artists")
LICENCE = ("art CC BY-SA 3.0 / GNU GPL 3.0 (Liberated Pixel Cup artists; texts in "
           "data/sprites/)")


def motion_cells() -> np.ndarray:
    """(9, 8, 2) sheet (row, column) of each frame of each motion = action*3 + direction."""
    cells = [[(ACTION_ROW[a] + 1 + d, c) for c in ACTION_COLUMNS[a]]
             for a in ACTIONS for d in range(len(DIRECTIONS))]
    return np.array(cells)


def character_factors(character: np.ndarray) -> np.ndarray:
    """(n, 4) factors in compositing order (skin, pants, top, hair) of character indices."""
    c = np.asarray(character, dtype=np.int64)
    return np.stack([c // 216, c // 36 % 6, c // 6 % 6, c % 6], axis=1)


def layer_paths(folder: Path) -> list[Path]:
    return [folder / kind / f"{v}.png" for kind, _ in PARTS for v in range(N_VARIANTS)] + \
        [folder / SHOES[0] / f"{SHOES[1]}.png"]


def _read_layer(path: Path) -> np.ndarray:
    """A sheet as (21*64, 13*64, 4) uint8 RGBA; a FactorseqError naming a bad or missing file."""
    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"))
    except FileNotFoundError:
        raise FactorseqError(f"sprites layer file missing: {path}") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise FactorseqError(f"sprites layer file {path} is not a readable PNG: {e}") from None
    want = (GRID[0] * FRAME, GRID[1] * FRAME, 4)
    if rgba.shape != want:
        raise FactorseqError(f"sprites layer file {path} is {rgba.shape[1]} x {rgba.shape[0]} "
                             f"pixels; want {want[1]} x {want[0]}")
    return rgba


def cut_frames(sheet: np.ndarray) -> np.ndarray:
    """A sheet -> (9*8*64*64, 4): the pixels of the 72 motion frames, flattened."""
    cells = sheet.reshape(GRID[0], FRAME, GRID[1], FRAME, 4).swapaxes(1, 2)
    rc = motion_cells().reshape(-1, 2)
    return cells[rc[:, 0], rc[:, 1]].reshape(-1, 4)


def over(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Pillow's ``alpha_composite`` of RGBA ``src`` (..., 4) onto opaque RGB ``dst`` (..., 3):
    round((src * a + dst * (255 - a)) / 255) in integers; the result stays opaque."""
    a = src[..., 3:].astype(np.int32)
    mix = src[..., :3] * a + dst.astype(np.int32) * (255 - a)
    return ((mix + 127) // 255).astype(np.uint8)


def _paint(base: np.ndarray, variants: np.ndarray, which: np.ndarray) -> np.ndarray:
    """``base`` (m, P, 3) with layer ``variants[which]`` ((m,) of (variants, P, 4))
    composited on, in place, only on the pixels some variant covers (alpha 0 changes
    nothing)."""
    idx = np.flatnonzero(variants[..., 3].any(axis=0))
    base[:, idx] = over(base[:, idx], variants[:, idx][which])
    return base


def compose(layers: dict[str, np.ndarray], factors: np.ndarray) -> np.ndarray:
    """Characters ``factors`` (n, 4) -> their 72 motion frames (n, 9*8*64*64, 3) uint8.

    ``layers[kind]`` is (variants, P, 4) from :func:`cut_frames`. A partial character (skin;
    skin + pants; ...) shared by several characters is composed once: stage j composes the
    unique prefixes factors[:, :j+1] onto their stage j-1 parents.
    """
    canvas = np.zeros((1, layers[PARTS[0][0]].shape[1], 3), np.uint8)  # black
    parent = np.zeros(len(factors), np.int64)
    for j, (kind, _) in enumerate(PARTS):
        key = factors[:, :j + 1] @ (N_VARIANTS ** np.arange(j, -1, -1))
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        canvas = _paint(canvas[parent[first]], layers[kind], factors[first, j])
        parent = inverse.ravel()
    return _paint(canvas[parent], layers[SHOES[0]], np.zeros(len(parent), np.int64))


def downsample(frames: np.ndarray, size: int) -> np.ndarray:
    """(..., 64, 64, 3) uint8 -> (..., size, size, 3): the mean of each k x k block (k = 64 /
    size), rounded half up."""
    k = FRAME // size
    if k == 1:
        return frames
    f = frames.astype(np.uint16)  # a block sums to at most 16 * 255 = 4080
    rows = sum(f[..., i::k, :, :] for i in range(k))  # (..., size, 64, 3): strided adds are
    total = sum(rows[..., j::k, :] for j in range(k))  # far faster than a reduce over axes
    return ((total + k * k // 2) // (k * k)).astype(np.uint8)


def load_layers(folder: Path) -> dict[str, np.ndarray]:
    """Every layer the generator uses, cut to the motion frames: kind -> (variants, P, 4)."""
    out = {kind: np.stack([cut_frames(_read_layer(folder / kind / f"{v}.png"))
                           for v in range(N_VARIANTS)]) for kind, _ in PARTS}
    out[SHOES[0]] = cut_frames(_read_layer(folder / SHOES[0] / f"{SHOES[1]}.png"))[None]
    return out


def generate(characters: np.ndarray, size: int = 64, folder: Path | None = None,
             chunk: int = 216) -> np.ndarray:
    """Frames (n, 9, 8, 3, size, size) uint8 of the ``characters`` (indices 0..1295), motion
    = action*3 + direction, channel first. Composed ``chunk`` characters at a time (memory)."""
    layers = load_layers(folder or data_dir() / "sprites" / "layers")
    characters = np.asarray(characters, dtype=np.int64)
    out = np.empty((len(characters), len(ACTIONS) * len(DIRECTIONS), T, 3, size, size),
                   np.uint8)
    for s in range(0, len(characters), chunk):
        part = compose(layers, character_factors(characters[s:s + chunk]))
        frames = downsample(part.reshape(len(part), 9, T, FRAME, FRAME, 3), size)
        out[s:s + chunk] = frames.transpose(0, 1, 2, 5, 3, 4)
    return out


def split_characters(n: int = N_CHARACTERS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) character indices, each sorted: the first 1000 of a seeded permutation
    train; with n < 1296 the first round(n * 1000 / 1296) of those and n minus that many of
    the test characters (a subset of the full split)."""
    perm = np.random.RandomState(seed).permutation(N_CHARACTERS)
    n_train = min(max(round(n * N_TRAIN / N_CHARACTERS), 1), n - 1)
    return np.sort(perm[:N_TRAIN][:n_train]), np.sort(perm[N_TRAIN:][:n - n_train])


def _fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for p in layer_paths(folder):
        try:
            h.update(p.read_bytes())
        except FileNotFoundError:
            raise FactorseqError(f"sprites layer file missing: {p}") from None
    return h.hexdigest()[:16]


def cached_frames(characters: np.ndarray, size: int, which: str) -> np.ndarray:
    """:func:`generate` of ``characters`` through the on-disk cache (``which`` names the
    selection in the file name: ``all`` or ``n<N>-split<seed>``)."""
    folder = data_dir() / "sprites" / "layers"
    path = cache_dir() / (f"sprites-v{GENERATOR_VERSION}-s{size}-{which}-"
                          f"{_fingerprint(folder)}.npz")
    want = (len(characters), 9, T, 3, size, size)
    try:
        with np.load(path, allow_pickle=False) as z:
            frames, kept = z["frames"], z["characters"]
        if frames.shape == want and np.array_equal(kept, characters):
            return frames
    except (OSError, ValueError, KeyError):
        pass  # no cache yet, or a damaged one: generate again
    frames = generate(characters, size, folder)
    try:  # atomic: parallel runs never read half a file; a read-only home just means no cache
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            np.savez(tmp, frames=frames, characters=characters)
    except OSError:
        pass
    return frames


def _sequences(frames: np.ndarray, chars: np.ndarray, split: str, meta: dict) -> SequenceData:
    """One split: x (n*9, 8, 3*H*W) float32 in [0, 1] with its labels."""
    n, m = frames.shape[:2]
    x = np.empty((n * m, T, int(np.prod(frames.shape[3:]))), np.float32)
    np.divide(frames.reshape(x.shape), np.float32(255), out=x)
    motion = np.tile(np.arange(m), n)
    character = np.repeat(chars, m)
    f = character_factors(character)
    extras = {"skin": f[:, 0], "top": f[:, 2], "pants": f[:, 1], "hair": f[:, 3],
              "action": motion // 3, "direction": motion % 3, "motion": motion,
              "character": character}
    return SequenceData(x=x, y=motion, seq_id=character, extras=extras, name="sprites",
                        meta={**meta, "split": split, "n_characters": n})


@dataset("sprites", description="Sprites videos (DSVAE benchmark): 1,296 characters (skin, "
         "top, pants, hair: 6 each) x 9 motions (walk, spellcast, slash x left, front, right), "
         "8 RGB frames each, x (N, 8, 3*H*W) in [0, 1]; split by character 9,000 / 2,664 "
         "(.test); y = motion; options: size (64, 32, 16: area-averaged), split_seed (0), "
         "characters (1296; fewer for quick tests), validation (0; V = the last V training "
         "characters scored instead of the test ones). Memory: float32 at 64 x 64 is 4.6 GB "
         "(train 3.5 GB), at 32 x 32 1.1 GB: use size=32 on CPU", citation=CITATION,
         licence=LICENCE, scaler="none")
def sprites(cfg: DataConfig) -> SequenceData:
    """The Sprites set (module docstring); ``cfg.window`` is not used (8 frames)."""
    size = int_option(cfg, "size", 64)
    if size not in SIZES:
        raise FactorseqError(f"data option size must be one of {SIZES}, got {size}")
    seed = int_option(cfg, "split_seed", 0, minimum=0)
    n = int_option(cfg, "characters", N_CHARACTERS, minimum=2)
    if n > N_CHARACTERS:
        raise FactorseqError(f"data option characters must be <= {N_CHARACTERS}, got {n}")
    train, test = split_characters(n, seed)
    held = int_option(cfg, "validation", 0, minimum=0)
    if held >= len(train):
        raise FactorseqError(f"data option validation must be < the {len(train)} training "
                             f"characters, got {held}")
    if n == N_CHARACTERS:
        chars, which = np.arange(N_CHARACTERS), "all"  # the split only picks from the cache
    else:
        chars, which = np.sort(np.concatenate([train, test])), f"n{n}-split{seed}"
    frames = cached_frames(chars, size, which)
    meta = {"frame_shape": [3, size, size], "n_classes": 9, "size": size,
            "split_seed": seed, "characters": n, "generator_version": GENERATOR_VERSION,
            "actions": list(ACTIONS), "directions": list(DIRECTIONS),
            "factors": {"static": ["skin", "top", "pants", "hair"], "dynamic": ["motion"]},
            "factor_classes": {"skin": 6, "top": 6, "pants": 6, "hair": 6, "motion": 9}}
    if held:  # validation characters: the last ones of the training split
        train, test, test_name = train[:-held], train[-held:], "validation"
        meta["validation_characters"] = held
    else:
        test_name = "test"
    data = _sequences(frames[np.searchsorted(chars, train)], train, "train", meta)
    data.test = _sequences(frames[np.searchsorted(chars, test)], test, test_name, meta)
    return data
