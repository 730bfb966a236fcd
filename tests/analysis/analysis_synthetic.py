"""Synthetic data with known exponents for the data-power-law tests."""

import numpy as np


def prescribed_matrix(n: int, d: int, exponent: float, seed: int = 0) -> np.ndarray:
    """U diag(r^-exponent) V^T with random orthonormal U (n x d) and V (d x d): singular values exactly r^-exponent."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, d)))
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (u * np.arange(1, d + 1) ** -exponent) @ v.T


def power_law_samples(n: int, d: int, exponent: float, seed: int = 0) -> np.ndarray:
    """n Gaussian rows whose population singular values (covariance square roots) fall as r^-exponent."""
    rng = np.random.default_rng(seed)
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (rng.standard_normal((n, d)) * np.arange(1, d + 1) ** -exponent) @ v.T


def zipf_text(n_tokens: int, n_types: int, s: float, seed: int = 0) -> str:
    """A 'text' of pseudo-words drawn with P(rank r) ~ r^-s, 12 words per line."""
    rng = np.random.default_rng(seed)
    p = np.arange(1, n_types + 1, dtype=float) ** -s
    ranks = rng.choice(n_types, size=n_tokens, p=p / p.sum())
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = []
    for r in range(n_types):  # bijective base-26 names: a, b, ..., z, aa, ab, ...
        name, k = "", r + 1
        while k:
            k, m = divmod(k - 1, 26)
            name = letters[m] + name
        words.append(name)
    toks = [words[r] for r in ranks]
    return "\n".join(" ".join(toks[i:i + 12]) for i in range(0, len(toks), 12)) + "\n"
