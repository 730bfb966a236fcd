"""A batched L-BFGS: many independent minimisations advanced together in numpy.

A multi-start fit (4,500 starts for Chinchilla's grid) or a bootstrap (1,000
resamples) is many small problems with the same objective. Instead of one
``scipy.optimize.minimize`` call per problem, every iteration here evaluates
the objective for all still-running problems in one vectorised call, so the
Python overhead is paid once per iteration, not once per problem.

Each row follows plain L-BFGS (Nocedal & Wright 2006, Alg. 7.4/7.5): two-loop
recursion over the last ``memory`` pairs (a ring buffer per row), a
backtracking Armijo line search with quadratic interpolation, curvature-checked
history updates, and trial steps no longer than ``max_step``. Stopping
rules copy scipy's L-BFGS-B defaults so results are comparable: gradient
max-norm <= ``gtol`` (1e-5) or relative decrease <= ``ftol`` (2.22e-9, with
scipy's floor of 1 on |f|; ``ftol=0`` turns that test off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# fun(x (k, P), rows (k,)) -> (f (k,), g (k, P)); ``rows`` says which problems x belongs to.
BatchedObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

RUNNING, GTOL, FTOL, MAX_ITER, LINE_SEARCH, NOT_FINITE = -1, 0, 1, 2, 3, 4
STATUS_MESSAGES = {
    GTOL: "converged: gradient max-norm below gtol",
    FTOL: "converged: relative reduction of the objective below ftol",
    MAX_ITER: "stopped: iteration limit reached",
    LINE_SEARCH: "stopped: line search found no decrease",
    NOT_FINITE: "stopped: objective or gradient is not finite",
}


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Outcome of a batched minimisation; one entry per problem (row)."""

    x: np.ndarray        # (B, P) final points
    fun: np.ndarray      # (B,) objective at x
    grad: np.ndarray     # (B, P) gradient at x
    n_iter: np.ndarray   # (B,) iterations taken
    status: np.ndarray   # (B,) one of the STATUS_MESSAGES keys
    n_fev: int           # total row-evaluations of the objective

    @property
    def converged(self) -> np.ndarray:
        """Rows that met gtol or ftol."""
        return (self.status == GTOL) | (self.status == FTOL)

    def message(self, i: int) -> str:
        return STATUS_MESSAGES[int(self.status[i])]


def _two_loop(g, S, Y, rho, rows, newest, gamma):
    """H_k g by the L-BFGS two-loop recursion for the problems ``rows``.

    History is a ring buffer: slot ``newest[i]`` holds row i's latest pair and
    empty slots have rho = 0, so they change nothing.
    """
    m = S.shape[1]
    order = (newest[:, None] - np.arange(m)) % m       # (k, m) slots, newest -> oldest
    r_idx = rows[:, None]
    s_h, y_h, rho_h = S[r_idx, order], Y[r_idx, order], rho[r_idx, order]   # (k, m, P), (k, m)
    q = g.copy()
    alphas = np.empty((len(rows), m))
    for j in range(m):
        alphas[:, j] = rho_h[:, j] * np.einsum("kp,kp->k", s_h[:, j], q)
        q -= alphas[:, j, None] * y_h[:, j]
    z = gamma[:, None] * q
    for j in range(m - 1, -1, -1):
        b = rho_h[:, j] * np.einsum("kp,kp->k", y_h[:, j], z)
        z += s_h[:, j] * (alphas[:, j] - b)[:, None]
    return z


def lbfgs(
    fun: BatchedObjective,
    x0: np.ndarray,
    *,
    memory: int = 10,
    max_iter: int = 1000,
    gtol: float = 1e-5,
    ftol: float = 2.220446049250313e-09,
    max_line_search: int = 30,
    c1: float = 1e-4,
    max_step: float = np.inf,
) -> BatchResult:
    """Minimise B problems from the B rows of ``x0`` at once; returns a :class:`BatchResult`."""
    with np.errstate(all="ignore"):          # trial points may overflow; such steps are rejected
        return _lbfgs(fun, x0, memory, max_iter, gtol, ftol, max_line_search, c1, max_step)


def _lbfgs(fun, x0, memory, max_iter, gtol, ftol, max_line_search, c1, max_step) -> BatchResult:
    x = np.array(x0, dtype=float, copy=True)
    if x.ndim != 2:
        raise ValueError(f"x0 must be 2-D (problems, parameters), got shape {x.shape}")
    B, P = x.shape
    f, g = fun(x, np.arange(B))
    n_fev = B
    status = np.full(B, RUNNING)
    status[~(np.isfinite(f) & np.isfinite(g).all(1))] = NOT_FINITE
    status[(status == RUNNING) & (np.abs(g).max(1) <= gtol)] = GTOL

    S = np.zeros((B, memory, P))
    Y = np.zeros((B, memory, P))
    rho = np.zeros((B, memory))
    newest = np.full(B, memory - 1)                    # ring-buffer slot of each row's latest pair
    n_hist = np.zeros(B, dtype=int)
    n_iter = np.zeros(B, dtype=int)

    for _ in range(max_iter):
        act = np.flatnonzero(status == RUNNING)
        if act.size == 0:
            break
        xa, fa, ga = x[act], f[act], g[act]
        s_new, y_new = S[act, newest[act]], Y[act, newest[act]]
        sy_new = np.einsum("kp,kp->k", s_new, y_new)
        yy_new = np.einsum("kp,kp->k", y_new, y_new)
        gamma = np.where(n_hist[act] > 0, sy_new / np.where(yy_new > 0, yy_new, 1.0), 1.0)
        d = -_two_loop(ga, S, Y, rho, act, newest[act], gamma)
        gd = np.einsum("kp,kp->k", ga, d)

        bad = ~(gd < 0) | ~np.isfinite(d).all(1)      # not a descent direction: restart
        if bad.any():
            rows = act[bad]
            S[rows] = Y[rows] = 0.0
            rho[rows] = 0.0
            n_hist[rows] = 0
            d[bad] = -ga[bad]
            gd[bad] = -np.einsum("kp,kp->k", ga[bad], ga[bad])
        fresh = n_hist[act] == 0                       # steepest descent: unit-length first step
        norm_d = np.maximum(np.linalg.norm(d, axis=1), 1e-300)
        t = np.where(fresh, 1.0 / norm_d, np.minimum(1.0, max_step / norm_d))

        x_new, f_new, g_new = xa.copy(), fa.copy(), ga.copy()
        accepted = np.zeros(act.size, dtype=bool)
        todo = np.arange(act.size)
        for _ in range(max_line_search):
            xt = xa[todo] + t[todo, None] * d[todo]
            ft, gt = fun(xt, act[todo])
            n_fev += todo.size
            finite = np.isfinite(ft) & np.isfinite(gt).all(1)
            ok = finite & (ft <= fa[todo] + c1 * t[todo] * gd[todo])
            done = todo[ok]
            x_new[done], f_new[done], g_new[done] = xt[ok], ft[ok], gt[ok]
            accepted[done] = True
            todo, ft, finite = todo[~ok], ft[~ok], finite[~ok]
            if todo.size == 0:
                break
            tt, denom = t[todo], 2.0 * (ft - fa[todo] - gd[todo] * t[todo])
            with np.errstate(divide="ignore", invalid="ignore"):
                t_quad = -gd[todo] * tt * tt / denom
            t_quad = np.where(finite & (denom > 0) & np.isfinite(t_quad), t_quad, 0.1 * tt)
            t[todo] = np.clip(t_quad, 0.1 * tt, 0.5 * tt)

        status[act[~accepted]] = LINE_SEARCH
        n_iter[act] += 1
        ok_rows = act[accepted]
        acc = np.flatnonzero(accepted)
        s = x_new[acc] - xa[acc]
        y = g_new[acc] - ga[acc]
        sy = np.einsum("kp,kp->k", s, y)
        keep = sy > 1e-10 * np.einsum("kp,kp->k", y, y)
        upd = ok_rows[keep]
        slot = (newest[upd] + 1) % memory
        S[upd, slot], Y[upd, slot], rho[upd, slot] = s[keep], y[keep], 1.0 / sy[keep]
        newest[upd] = slot
        n_hist[upd] = np.minimum(n_hist[upd] + 1, memory)

        f_old = fa[acc]
        x[ok_rows], f[ok_rows], g[ok_rows] = x_new[acc], f_new[acc], g_new[acc]
        if ftol > 0:
            scale = np.maximum(np.maximum(np.abs(f_old), np.abs(f_new[acc])), 1.0)
            status[ok_rows[(f_old - f_new[acc]) <= ftol * scale]] = FTOL
        status[ok_rows[np.abs(g_new[acc]).max(1) <= gtol]] = GTOL

    status[status == RUNNING] = MAX_ITER
    return BatchResult(x=x, fun=f, grad=g, n_iter=n_iter, status=status, n_fev=n_fev)
