"""An honest ETA for a sweep scheduled longest-first.

FLOPs alone mislead: the big runs go first and run near the machine's peak,
while the many small runs at the end are dominated by per-step overhead.
So a run's time is modelled as ``a * FLOPs + b * steps + c`` and the three
coefficients are refitted (non-negative least squares) on the runs this
sweep has finished; until three have finished, conservative defaults apply.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

# Defaults for a 2-core laptop running one run per core: 20 GFLOP/s per run,
# 2 ms per optimiser step, half a second per run of setup and evaluation.
DEFAULT_COEFS = np.array([1 / 20e9, 2e-3, 0.5])


class EtaModel:
    def __init__(self, capacity: int = 1):
        self.capacity = max(1, capacity)
        self.coefs = DEFAULT_COEFS.copy()
        self.seen_x: list[np.ndarray] = []
        self.seen_t: list[float] = []

    @staticmethod
    def features(flops: float, steps: float) -> np.ndarray:
        return np.array([flops, steps, 1.0])

    def observe(self, x: np.ndarray, wall_s: float) -> None:
        self.seen_x.append(x)
        self.seen_t.append(wall_s)
        if len(self.seen_t) >= 3:
            X, t = np.array(self.seen_x), np.array(self.seen_t)
            scale = X.max(0)
            scale[scale == 0] = 1.0
            coefs, _ = nnls(X / scale, t)
            self.coefs = coefs / scale

    def seconds(self, x: np.ndarray) -> float:
        return float(x @ self.coefs)

    def remaining(self, pending: list[np.ndarray]) -> float:
        """Seconds until the runs in ``pending`` are done, spread over the workers."""
        if not pending:
            return 0.0
        times = sorted((self.seconds(x) for x in pending), reverse=True)
        # longest-first onto the least-loaded worker: what the engine's queue does
        loads = np.zeros(self.capacity)
        for t in times:
            loads[loads.argmin()] += t
        return float(loads.max())


def format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
