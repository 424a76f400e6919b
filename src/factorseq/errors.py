"""Errors a user can cause. The CLI turns them into exit code 2 and one line ``error: ...``."""


class FactorseqError(Exception):
    """A problem with the user's input (path, shape, values, checkpoint, options)."""


class ConfigError(FactorseqError, ValueError):
    """A config value out of its range (``config.require``): a user error, and a ValueError
    for code that catches those."""


class ShapeError(FactorseqError, ValueError):
    """A tensor or array has the wrong shape; the message names it and its shape."""


def check_shape(name: str, x, rank: int | None = None, *, features: int | None = None,
                time: int | None = None) -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``(batch, time, features)``-like as asked.

    ``rank`` is the expected number of dimensions; ``features``/``time`` the expected last and
    second dimensions of a rank-3 array.
    """
    shape = tuple(x.shape)
    if rank is not None and len(shape) != rank:
        raise ShapeError(f"{name} must have {rank} dimensions (batch, time, features), "
                         f"got shape {shape}")
    if features is not None and shape[-1] != features:
        raise ShapeError(f"{name} has {shape[-1]} features but the model expects {features} "
                         f"(shape {shape})")
    if time is not None and len(shape) >= 2 and shape[-2] != time:
        raise ShapeError(f"{name} has {shape[-2]} time steps but the model expects {time} "
                         f"(shape {shape})")
