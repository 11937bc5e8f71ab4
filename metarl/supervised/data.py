"""Small datasets generated on this machine, never downloaded, as numpy arrays.

Every dataset is `Dataset(x_train, y_train, x_test, y_test)`: inputs are float32; labels are
int32 class indices for classification and float32 `(n, 1)` targets for regression. Each is a
deterministic function of its seed and is cached per `(name, seed)` (the last 32 of each);
the cached arrays are read-only, so no caller can change what the next one gets.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

DATASETS: tuple[str, ...] = ("digits", "mnist1d", "regression")
NUM_CLASSES = {"digits": 10, "mnist1d": 10}


class Dataset(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _frozen(*arrays: np.ndarray) -> Dataset:
    for a in arrays:
        a.flags.writeable = False
    return Dataset(*arrays)


@functools.lru_cache(maxsize=32)
def digits(seed: int = 0, num_test: int = 297) -> Dataset:
    """scikit-learn's bundled copy of the UCI optical digits (1,797 8x8 images; read from the
    package's own data folder, no network), scaled to [0, 1] as `(n, 8, 8, 1)`. The split is a
    permutation drawn from `seed`, so it is fixed for a seed: 1,500 train and 297 test."""
    from sklearn.datasets import load_digits  # heavy import, only when digits are asked for

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x = (x[order] / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    y = y[order].astype(np.int32)
    return _frozen(x[num_test:], y[num_test:], x[:num_test], y[:num_test])


# Ten one-dimensional "digit" shapes of 12 points, drawn for this module (not the published
# templates): each differs from the others in where its mass sits and how it changes sign, so
# the classes stay separable after the distortions below.
_TEMPLATES = np.array([
    [0, 1, 3, 4, 4, 4, 4, 4, 4, 3, 1, 0],            # plateau
    [0, 0, 0, 0, 1, 5, 5, 1, 0, 0, 0, 0],            # spike
    [0, .5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 0],   # rising ramp
    [5, 4.5, 4, 3.5, 3, 2.5, 2, 1.5, 1, .5, 0, 0],   # falling ramp
    [0, 4, 4, 0, 0, 0, 0, 0, 0, 4, 4, 0],            # two spikes
    [3, 3, 2, 1, 0, -3, -3, 0, 1, 2, 3, 3],          # dip
    [0, 2, 4, 2, 0, -2, -4, -2, 0, 2, 4, 2],         # wave
    [0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4],            # step up
    [4, 4, 4, 4, 4, 4, -2, -2, -2, -2, -2, -2],      # step down
    [0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3],            # zigzag
], np.float64) / 5.0


def _smooth(noise: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.convolve(noise, kernel / kernel.sum(), mode="same")


def _mnist1d_example(rng: np.random.Generator, label: int, length: int) -> np.ndarray:
    signal = np.concatenate([_TEMPLATES[label], np.zeros(rng.integers(36, 61))])
    n = len(signal)
    grid = np.arange(n) / n
    # shear: a random global slope, so the baseline is not a cue
    signal = signal + rng.uniform(-0.75, 0.75) * (grid - 0.5)
    # scale (stretch in time about the start) and translation (circular shift of up to 48 of
    # the fine-grid points), applied together by reading the signal at moved coordinates
    stretch = 1.0 + rng.uniform(-0.4, 0.4)
    shift = rng.integers(0, 48) / n
    source = ((grid - shift) % 1.0) / stretch * n
    signal = np.interp(source, np.arange(n), signal, right=0.0)
    signal = signal + 0.25 * _smooth(rng.standard_normal(n), 2.0)  # correlated noise
    out = np.interp(np.arange(length) / length * n, np.arange(n), signal)
    return out + 0.02 * rng.standard_normal(length)  # iid noise


@functools.lru_cache(maxsize=32)
def mnist1d(seed: int = 0, num_train: int = 4000, num_test: int = 1000, length: int = 40
            ) -> Dataset:
    """MNIST-1D after the recipe of Greydanus 2020 ("Scaling down Deep Learning",
    arXiv:2011.14439): one of ten 12-point templates, zero-padded by 36-60 points, sheared,
    stretched, translated, with correlated and iid noise added, interpolated to `length`
    points. Written from the paper's description with our own templates, so the numbers differ
    from the published dataset's; like it, a linear model does poorly and small MLPs and CNNs
    separate the classes. Inputs `(n, length, 1)`, standardised with the train statistics."""
    rng = np.random.default_rng(seed)
    n = num_train + num_test
    y = rng.integers(0, 10, n).astype(np.int32)
    x = np.stack([_mnist1d_example(rng, int(label), length) for label in y])
    mean, std = x[:num_train].mean(), x[:num_train].std()
    x = ((x - mean) / std).astype(np.float32)[..., None]
    return _frozen(x[:num_train], y[:num_train], x[num_train:], y[num_train:])


@functools.lru_cache(maxsize=32)
def regression(seed: int = 0, num_train: int = 4000, num_test: int = 1000, in_dim: int = 8,
               teacher_width: int = 32, noise: float = 0.1) -> Dataset:
    """Student-teacher regression: Gaussian inputs, targets from a random one-hidden-layer tanh
    teacher (LeCun-normal weights) standardised to unit variance, plus Gaussian noise of std
    `noise` (the floor of the test loss is `noise**2`)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_train + num_test, in_dim))
    w1 = rng.standard_normal((in_dim, teacher_width)) / np.sqrt(in_dim)
    w2 = rng.standard_normal((teacher_width, 1)) / np.sqrt(teacher_width)
    y = np.tanh(x @ w1) @ w2
    y = (y - y.mean()) / y.std() + noise * rng.standard_normal(y.shape)
    x, y = x.astype(np.float32), y.astype(np.float32)
    return _frozen(x[:num_train], y[:num_train], x[num_train:], y[num_train:])


class Quadratic(NamedTuple):
    """`0.5 (x - t)^T A (x - t)` averaged over targets `t = x* + noise * e`: a minibatch's
    gradient is `A (x - mean t)`, unbiased for the noiseless problem's, with variance shrinking
    as the batch grows. The expected loss is the noiseless one plus `0.5 noise^2 tr(A)`."""

    a: np.ndarray  # (dim, dim) symmetric positive definite
    data: Dataset  # inputs: targets (n, dim); labels: zeros, unused


@functools.lru_cache(maxsize=32)
def quadratic(dim: int, condition: float, noise: float, seed: int = 0,
              num_train: int = 4096, num_test: int = 1024) -> Quadratic:
    """A random quadratic with eigenvalues log-spaced between `1/condition` and 1 in a random
    orthonormal basis (QR of a Gaussian matrix, done here in numpy: batched QR under jax `vmap`
    can deadlock XLA's CPU pool), optimum `x* ~ N(0, I)`."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    eig = np.logspace(-np.log10(condition), 0.0, dim)
    a = ((q * eig) @ q.T).astype(np.float32)
    a = (a + a.T) / 2  # exact symmetry after rounding to float32
    x_star = rng.standard_normal(dim)
    t = (x_star + noise * rng.standard_normal((num_train + num_test, dim))).astype(np.float32)
    zeros = np.zeros(num_train + num_test, np.float32)
    a.flags.writeable = False
    return Quadratic(a, _frozen(t[:num_train], zeros[:num_train], t[num_train:],
                                zeros[num_train:]))


def load(name: str, seed: int = 0) -> Dataset:
    """The dataset called `name` (one of `DATASETS`) for `seed`."""
    loaders = {"digits": digits, "mnist1d": mnist1d, "regression": regression}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return loaders[name](seed)
