"""Scaling laws as plain numpy functions: each has a value and an analytic gradient.

Two forms of every law live here.

* The *natural* form, with the parameters papers print
  (``E, A, alpha`` ...). ``<law>(inputs, *params)`` returns the loss and
  ``<law>_grad(inputs, *params)`` returns d loss / d params, shape (P, n).
* The *log-space* form used for fitting, batched over S parameter vectors at
  once (one per optimiser start). ``<law>_log(theta, ...)`` takes theta of
  shape (S, P) and returns ``(log_loss, vjp)``: the predicted log-loss, shape
  (S, n), and a function mapping an upstream gradient d obj / d log_loss,
  shape (S, n), to d obj / d theta, shape (S, P). Returning a vector-Jacobian
  product instead of the (S, n, P) Jacobian keeps memory at O(S n).

Laws:
  power law       L(x)   = E + A x^-alpha                       (L(N), L(D), L(C))
  Chinchilla      L(N,D) = E + A N^-alpha + B D^-beta           Hoffmann et al. 2022, eq. (2)
  Kaplan          L(N,D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D
                                                                Kaplan et al. 2020, eq. (1.5)

Log-space parameters: a power law is fitted as theta = (e, a, alpha) with
E = exp(e), A = exp(a), so log L = LSE(a - alpha log x, e); Chinchilla as
(e, a, b, alpha, beta), log L = LSE(a - alpha log N, b - beta log D, e)
(the recipe of Hoffmann et al. 2022, App. D.2); Kaplan as
(log N_c, log D_c, alpha_N, alpha_D).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Vjp = Callable[[np.ndarray], np.ndarray]

# Parameter names, in the order every function below uses.
POWER_PARAMS = ("E", "A", "alpha")
CHINCHILLA_PARAMS = ("E", "A", "B", "alpha", "beta")
KAPLAN_PARAMS = ("N_c", "D_c", "alpha_N", "alpha_D")


# ---------------------------------------------------------------- natural form

def power_law(x, E, A, alpha):
    """L(x) = E + A x^-alpha."""
    return E + A * np.power(x, -alpha)


def power_law_grad(x, E, A, alpha):
    """d L / d (E, A, alpha), shape (3, n)."""
    x = np.asarray(x, dtype=float)
    t = np.power(x, -alpha)
    return np.stack([np.ones_like(t), t, -A * t * np.log(x)])


def chinchilla(N, D, E, A, B, alpha, beta):
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2)."""
    return E + A * np.power(N, -alpha) + B * np.power(D, -beta)


def chinchilla_grad(N, D, E, A, B, alpha, beta):
    """d L / d (E, A, B, alpha, beta), shape (5, n)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    tn, td = np.power(N, -alpha), np.power(D, -beta)
    return np.stack([np.ones_like(tn), tn, td, -A * tn * np.log(N), -B * td * np.log(D)])


def kaplan(N, D, N_c, D_c, alpha_N, alpha_D):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, eq. 1.5)."""
    inner = np.power(N_c / np.asarray(N, dtype=float), alpha_N / alpha_D) + D_c / np.asarray(D, dtype=float)
    return np.power(inner, alpha_D)


def kaplan_grad(N, D, N_c, D_c, alpha_N, alpha_D):
    """d L / d (N_c, D_c, alpha_N, alpha_D), shape (4, n)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    r = alpha_N / alpha_D
    tn = np.power(N_c / N, r)                  # (N_c/N)^r
    inner = tn + D_c / D
    L = np.power(inner, alpha_D)
    dL_dinner = alpha_D * L / inner
    log_ratio = np.log(N_c / N)
    return np.stack([
        dL_dinner * tn * r / N_c,
        dL_dinner / D,
        dL_dinner * tn * log_ratio / alpha_D,
        L * np.log(inner) - dL_dinner * tn * log_ratio * r / alpha_D,
    ])


# -------------------------------------------------------- log-space, batched
#
# Each log-sum-exp is computed directly (exp of each term, sum, log): two
# transcendentals per point instead of four. Rows where that overflows or
# underflows are recomputed with the max subtracted, so results match the
# stable formula everywhere. The VJPs use w_i = p_i / s, the softmax weights,
# which are the same whichever way p and s were scaled.

def _col(theta: np.ndarray, j: int) -> np.ndarray:
    return theta[:, j:j + 1]                   # (S, 1), broadcasts against (1, n)


def _lse_terms(terms: list[np.ndarray]):
    """p_i = exp(t_i) (rescaled per row if needed), s = sum p_i, log s; terms are (S, n) or (S, 1)."""
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        ps = [np.exp(t) for t in terms]
        s = ps[0] + ps[1]
        for p in ps[2:]:
            s += p
        log_s = np.log(s)
        total = log_s.sum()
    if not np.isfinite(total):
        bad = ~np.isfinite(log_s).all(axis=1)
        full = [np.broadcast_to(t, log_s.shape)[bad] for t in terms]
        m = np.maximum.reduce(full)
        m = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            sub = [np.exp(t - m) for t in full]
            for p, q in zip(ps, sub):
                if p.shape == log_s.shape:
                    p[bad] = q
            s[bad] = sum(sub)
            log_s[bad] = m + np.log(s[bad])
        ps = [p if p.shape == log_s.shape else np.broadcast_to(p, log_s.shape) for p in ps]
    return ps, s, log_s


def _affine(intercept: np.ndarray, slope: np.ndarray, log_x: np.ndarray) -> np.ndarray:
    """intercept - slope * log_x for every row, as one (S, 2) @ (2, n) product."""
    return np.column_stack([intercept, -slope]) @ np.vstack([np.ones_like(log_x), log_x])


def _weighted_sums(gw: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum_j gw_ij, sum_j gw_ij log_x_j) for every row, as one (S, n) @ (n, 2) product."""
    both = gw @ np.column_stack([np.ones_like(log_x), log_x])
    return both[:, 0], both[:, 1]


def power_law_log(theta: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, Vjp]:
    """log L = LSE(a - alpha log x, e) for theta rows (e, a, alpha); returns (S, n) and a VJP."""
    theta = np.atleast_2d(theta)
    (p, _), s, log_l = _lse_terms([_affine(theta[:, 1], theta[:, 2], log_x), _col(theta, 0)])

    def vjp(g: np.ndarray) -> np.ndarray:
        s1, s1x = _weighted_sums((g / s) * p, log_x)      # g * share of the A x^-alpha term
        return np.stack([g.sum(1) - s1, s1, -s1x], axis=1)

    return log_l, vjp


def chinchilla_log(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> tuple[np.ndarray, Vjp]:
    """log L = LSE(a - alpha log N, b - beta log D, e) for theta rows (e, a, b, alpha, beta)."""
    theta = np.atleast_2d(theta)
    (p1, p2, _), s, log_l = _lse_terms([_affine(theta[:, 1], theta[:, 3], log_n),
                                        _affine(theta[:, 2], theta[:, 4], log_d), _col(theta, 0)])

    def vjp(g: np.ndarray) -> np.ndarray:
        q = g / s                              # times p_i: g * softmax weight of term i
        s1, s1n = _weighted_sums(q * p1, log_n)
        s2, s2d = _weighted_sums(q * p2, log_d)
        return np.stack([g.sum(1) - s1 - s2, s1, s2, -s1n, -s2d], axis=1)

    return log_l, vjp


def kaplan_log(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> tuple[np.ndarray, Vjp]:
    """log L = alpha_D LSE(r (log N_c - log N), log D_c - log D), r = alpha_N/alpha_D.

    theta rows are (log N_c, log D_c, alpha_N, alpha_D).
    """
    theta = np.atleast_2d(theta)
    nc, a_n, a_d = _col(theta, 0), _col(theta, 2), _col(theta, 3)
    r = a_n / a_d
    u1 = _affine((r * nc)[:, 0], r[:, 0], log_n)        # r (log N_c - log N)
    (p1, _), s, lse = _lse_terms([u1, _affine(theta[:, 1], np.ones(theta.shape[0]), log_d)])
    log_l = a_d * lse

    def vjp(g: np.ndarray) -> np.ndarray:
        g1 = (g / s) * p1                      # g * share of the (N_c/N)^r term in the bracket
        s1, s1n = _weighted_sums(g1, log_n)
        sg = g.sum(1)
        gap_sum = s1 * nc[:, 0] - s1n           # sum g1 (log N_c - log N)
        return np.stack([s1 * a_n[:, 0], (sg - s1) * a_d[:, 0], gap_sum,
                         np.einsum("ij,ij->i", g, lse) - gap_sum * r[:, 0]], axis=1)

    return log_l, vjp


# ------------------------------------------------------- data-constrained law
#
# Muennighoff et al. 2023, "Scaling Data-Constrained Language Models"
# (arXiv:2305.16264), Sec. 3, eqs. (5)-(7): Chinchilla's form with repeated
# tokens and excess parameters discounted,
#   L = E + A / N'^alpha + B / D'^beta,
#   D' = U_D + U_D R*_D (1 - exp(-R_D / R*_D)),   R_D = D / U_D - 1,
#   N' = U_N + U_N R*_N (1 - exp(-R_N / R*_N)),   R_N = N / U_N - 1.
# U_D is the number of unique tokens (here min(U, D): a run cannot see more
# unique tokens than it trains on). U_N is the paper's "base" parameter
# count, the compute-optimal size for U_D unique tokens: U_N = min(N_opt(U_D), N)
# with N_opt(D) = G (G D)^(beta/alpha), G = (alpha A / (beta B))^(1/(alpha+beta)),
# i.e. Chinchilla's eq. (4) solved for N at D_opt = D, under the law's own
# A, B, alpha, beta (as in the paper's released fitting code, huggingface/datablations).
# So U_N moves with the parameters, and the gradient follows it.

DATA_CONSTRAINED_PARAMS = ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star")


def _repetition_gain(log_total: np.ndarray, log_unique: np.ndarray, log_star: np.ndarray):
    """log f and its slopes for f = 1 + R* (1 - exp(-R/R*)), R = total/unique - 1 (so X' = unique f).

    Returns (log f, d log f / d log R*, d log f / d log unique at fixed total).
    """
    star = np.exp(log_star)
    r = np.expm1(log_total - log_unique)              # repetitions beyond the first pass, >= 0
    x = r / star
    decay = np.exp(-x)
    kept = -np.expm1(-x)                             # 1 - exp(-R/R*), accurate for small R
    f = 1.0 + star * kept
    return np.log(f), star * (kept - x * decay) / f, -decay * (r + 1.0) / f


def _data_constrained_parts(theta: np.ndarray, log_n, log_d, log_u):
    """log L and d log L / d theta (7 arrays, (S, n)) for theta rows (e, a, b, alpha, beta, log R*_D, log R*_N)."""
    theta = np.atleast_2d(theta)
    e, a, b, al, be, rd, rn = (_col(theta, j) for j in range(7))
    log_n, log_d = np.asarray(log_n, float), np.asarray(log_d, float)
    log_ud = np.minimum(np.asarray(log_u, float), log_d)
    s, k = al + be, be / al
    log_g = (np.log(al) + a - np.log(be) - b) / s
    log_nopt = (1.0 + k) * log_g + k * log_ud          # log N_opt(U_D)
    capped = log_nopt < log_n                          # U_N = N_opt(U_D) < N: some parameters are excess
    log_un = np.where(capped, log_nopt, log_n)
    lf_n, dn_star, dn_unique = _repetition_gain(log_n, log_un, rn)
    lf_d, dd_star, _ = _repetition_gain(log_d, log_ud, rd)
    log_np, log_dp = log_un + lf_n, log_ud + lf_d      # log N', log D'
    (p1, p2, p3), tot, log_l = _lse_terms([a - al * log_np, b - be * log_dp, e])
    w1, w2, w3 = p1 / tot, p2 / tot, p3 / tot
    # d log N' / d (a, b, alpha, beta) through U_N = N_opt(U_D), on the capped points only.
    through = np.where(capped, 1.0 + dn_unique, 0.0)
    dnopt = [(1.0 + k) / s, -(1.0 + k) / s,
             (1.0 + k) * (1.0 / al - log_g) / s - be / al ** 2 * (log_g + log_ud),
             (1.0 + k) * (-1.0 / be - log_g) / s + (log_g + log_ud) / al]
    dnp = [through * d for d in dnopt]
    jac = [
        np.broadcast_to(w3, log_l.shape),
        w1 * (1.0 - al * dnp[0]),
        w2 - w1 * al * dnp[1],
        -w1 * (log_np + al * dnp[2]),
        -w1 * al * dnp[3] - w2 * log_dp,
        -w2 * be * dd_star,
        -w1 * al * dn_star,
    ]
    return log_l, jac


def data_constrained(N, D, U, E, A, B, alpha, beta, R_D_star, R_N_star):
    """Muennighoff et al. 2023's loss L(N, D, U_D) with repeated data and excess parameters discounted."""
    theta = np.array([[np.log(E), np.log(A), np.log(B), alpha, beta, np.log(R_D_star), np.log(R_N_star)]])
    with np.errstate(over="ignore", under="ignore"):
        log_l, _ = _data_constrained_parts(theta, np.log(N), np.log(D), np.log(U))
    return np.exp(log_l[0])


def data_constrained_grad(N, D, U, E, A, B, alpha, beta, R_D_star, R_N_star):
    """d L / d (E, A, B, alpha, beta, R_D_star, R_N_star), shape (7, n)."""
    p = np.array([E, A, B, alpha, beta, R_D_star, R_N_star], dtype=float)
    theta = np.array([[np.log(E), np.log(A), np.log(B), alpha, beta, np.log(R_D_star), np.log(R_N_star)]])
    log_l, jac = _data_constrained_parts(theta, np.log(N), np.log(D), np.log(U))
    per_log_param = np.array([1.0 / p[0], 1.0 / p[1], 1.0 / p[2], 1.0, 1.0, 1.0 / p[5], 1.0 / p[6]])
    return np.exp(log_l[0]) * np.stack([j[0] for j in jac]) * per_log_param[:, None]


def data_constrained_log(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray,
                         log_u: np.ndarray) -> tuple[np.ndarray, Vjp]:
    """Batched log L for theta rows (e, a, b, alpha, beta, log R*_D, log R*_N) and its VJP.

    ``log_u`` (unique tokens) must be in the same units as ``log_d``: only their
    difference and the D-units of N_opt(U_D) enter the law.
    """
    log_l, jac = _data_constrained_parts(theta, log_n, log_d, log_u)

    def vjp(g: np.ndarray) -> np.ndarray:
        return np.stack([np.einsum("ij,ij->i", g, np.broadcast_to(j, g.shape)) for j in jac], axis=1)

    return log_l, vjp


# ------------------------------------------------------ broken power law
#
# Caballero et al. 2022 ("Broken Neural Scaling Laws", eq. 1) with one break:
#   L(x) = E + A x^-alpha (1 + (x/x_b)^(1/f))^(-c f)
# Below the break x_b the exponent is alpha, above it alpha + c; f > 0 sets
# how sharp the bend is (in natural-log units of x). With z = (log x - log x_b)/f,
# (1 + (x/x_b)^(1/f))^(-c f) = exp(-c f softplus(z)), so in log space
#   log L = LSE(e, a - alpha log x - c f softplus(z)),
# fitted as theta = (e, a, log x_b, log f, alpha, c).

BROKEN_POWER_PARAMS = ("E", "A", "x_b", "f", "alpha", "c")


def broken_power_law(x, E, A, x_b, f, alpha, c):
    """L(x) = E + A x^-alpha (1 + (x/x_b)^(1/f))^(-c f) (Caballero et al. 2022, eq. 1, one break)."""
    x = np.asarray(x, dtype=float)
    z = (np.log(x) - np.log(x_b)) / f
    return E + A * np.exp(-alpha * np.log(x) - c * f * np.logaddexp(0.0, z))


def broken_power_law_grad(x, E, A, x_b, f, alpha, c):
    """d L / d (E, A, x_b, f, alpha, c), shape (6, n)."""
    x = np.asarray(x, dtype=float)
    lx = np.log(x)
    z = (lx - np.log(x_b)) / f
    sp, sig = np.logaddexp(0.0, z), 0.5 * (1.0 + np.tanh(0.5 * z))   # softplus and logistic, overflow-free
    g = np.exp(-alpha * lx - c * f * sp)
    T = A * g
    return np.stack([np.ones_like(T), g, T * c * sig / x_b, -T * c * (sp - z * sig), -T * lx, -T * f * sp])


def broken_power_law_log(theta: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, Vjp]:
    """log L = LSE(e, a - alpha log x - c f softplus((log x - log x_b)/f)); theta rows (e, a, log x_b, log f, alpha, c)."""
    theta = np.atleast_2d(theta)
    a, lxb, f = _col(theta, 1), _col(theta, 2), np.exp(_col(theta, 3))
    alpha, c = _col(theta, 4), _col(theta, 5)
    with np.errstate(over="ignore", invalid="ignore"):
        z = (log_x - lxb) / f
        sp, sig = np.logaddexp(0.0, z), 0.5 * (1.0 + np.tanh(0.5 * z))
        t = a - alpha * log_x - c * f * sp
    (p, _), s, log_l = _lse_terms([t, _col(theta, 0)])

    def vjp(g: np.ndarray) -> np.ndarray:
        q = (g / s) * p                        # g * share of the power-law term
        sq = q.sum(1)
        return np.stack([g.sum(1) - sq, sq, (q * (c * sig)).sum(1), -(q * (c * f * (sp - z * sig))).sum(1),
                         -(q @ log_x), -(q * (f * sp)).sum(1)], axis=1)

    return log_l, vjp
