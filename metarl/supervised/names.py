"""Names of the supervised task families, importable without jax or numpy (spec validation and
the env-name registry read them before anything numerical is loaded)."""

from __future__ import annotations

PREFIX = "supervised/"
FAMILY_NAMES: tuple[str, ...] = ("digits_mlp", "digits_cnn", "mnist1d_mlp", "mnist1d_cnn",
                                 "regression_mlp", "quadratic")


def is_supervised(name: str) -> bool:
    """Whether a task's env name (`supervised/<family>`) names a supervised task."""
    return name.startswith(PREFIX)
