"""PassUntil by sampling from a model's answer distributions (numpy only: the test suite runs it without torch)."""

from __future__ import annotations

import numpy as np


def pass_until_prefix(dists: np.ndarray, targets: np.ndarray, k: int, budget: int, rng: np.random.Generator,
                      first_chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Sample-until-k with a prefix cache: (successes, trials) per item, censored at ``budget`` samples.

    Every sample draws its answer token by token from the model's softmax. A sample that draws a
    wrong token can no longer pass, so it stops there; the samples still alive all carry the
    correct prefix, hence share the model's distribution ``dists[item, j]`` at answer position j
    (computed once, :func:`tiny_models.train.answer_distributions`). The pass/fail sequence is therefore exactly
    that of sampling whole answers one after another; counting stops at the k-th pass.
    """
    m, n_pos, vocab = dists.shape
    cdf = np.cumsum(dists, axis=-1)
    # a draw u picks token searchsorted(cdf, u * cdf[-1], "right"), or the last token if u * cdf[-1] rounds up to
    # cdf[-1]: the target t exactly when cdf[t - 1] <= u * cdf[-1] < cdf[t], no lower bound for the first token
    # and no upper bound for the last
    t_idx = targets[..., None].astype(np.int64)
    lo = np.where(targets > 0, np.take_along_axis(cdf, np.maximum(t_idx - 1, 0), -1)[..., 0], -np.inf)
    hi = np.where(targets < vocab - 1, np.take_along_axis(cdf, t_idx, -1)[..., 0], np.inf)
    succ = np.zeros(m, np.int64)
    trials = np.zeros(m, np.int64)
    for i in range(m):
        chunk = first_chunk
        while succ[i] < k and trials[i] < budget:
            n = int(min(chunk, budget - trials[i]))
            alive = np.arange(n)
            for j in range(n_pos):
                x = rng.random(alive.size) * cdf[i, j, -1]
                alive = alive[(x >= lo[i, j]) & (x < hi[i, j])]
                if alive.size == 0:
                    break
            need = k - succ[i]
            if alive.size >= need:
                trials[i] += int(alive[need - 1]) + 1
                succ[i] = k
            else:
                trials[i] += n
                succ[i] += alive.size
            chunk = min(chunk * 8, 1 << 22)
    return succ, trials
