"""Train a tiny transformer on a token task (loss on answer tokens only) and measure it on a test set.

A task (:class:`~tiny_models.addition.AdditionTask`, :class:`~tiny_models.recall.RecallTask`)
gives ``vocab``, ``seq_len``, ``answer_positions`` (where the answer tokens sit; everything else
is prompt, fed as given) and ``train_batch(n, rng, exclude)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tiny_models.model import TinyTransformer, cosine_lr, n_params


@dataclass(frozen=True)
class TrainConfig:
    width: int
    depth: int
    steps: int
    batch: int = 128
    lr: float = 3e-3
    warmup: int = 50
    seed: int = 0
    weight_decay: float = 0.01
    #: clip the gradient's global norm to this before each step (None: no clipping)
    clip: float | None = None
    #: the cosine schedule ends at lr * lr_floor (0.1: the first three rounds' recipe)
    lr_floor: float = 0.1
    #: evaluate an exponential moving average of the weights with this decay per step (None: the last weights)
    ema: float | None = None
    #: the data stream's seed (None: seed + 1, the ladder's rule)
    data_seed: int | None = None


@dataclass
class Measurement:
    """Teacher-forced and greedy results of one model on the test set."""

    token_probs: np.ndarray  # (items, answer_len): probability of each correct answer token
    brier: np.ndarray  # (items, answer_len): multi-class Brier score per answer position
    greedy: np.ndarray  # (items, answer_len): greedy-decoded answer tokens
    target: np.ndarray  # (items, answer_len)


# Rows per forward pass when measuring. Each row's result does not depend on the rows beside it (checked bit for
# bit against 4096-row chunks, tests/test_tiny_ladder.py); 256 rows keep the activations in cache, 2x faster than
# 4096 for the widest model on the CPU.
CHUNK = 256


def peak_lr(width: int, base: float = 3e-3) -> float:
    """A width-scaled learning rate (smaller for wider models)."""
    return base * min(1.0, 64 / width) ** 0.5


def _positions(task, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.from_numpy(np.asarray(task.answer_positions, dtype=np.int64)).to(device)


def device_of(model: TinyTransformer) -> torch.device:
    """Where the model's weights are (its inputs go there; results come back to the CPU as numpy)."""
    return next(model.parameters()).device


def resolve_device(spec: str) -> str:
    """``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu`` or ``cuda``; ValueError naming the problem."""
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return spec
    if spec == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: torch sees no CUDA device here (use --device auto or cpu)")
        return spec
    raise ValueError(f"unknown --device {spec!r}: expected auto, cpu or cuda")


def _on(model: TinyTransformer, seqs: np.ndarray) -> torch.Tensor:
    """``seqs`` as a tensor on the model's device."""
    return torch.from_numpy(np.ascontiguousarray(seqs)).to(device_of(model))


def answer_logits(model: TinyTransformer, task, seq: torch.Tensor) -> torch.Tensor:
    """Logits (n, answer_len, vocab) predicting each answer token from the tokens before it."""
    pos = _positions(task, seq.device)
    return model(seq[:, : int(task.answer_positions[-1])])[:, pos - 1]


def train(task, cfg: TrainConfig, exclude, log_every: int = 0,
          curve: list | None = None, device: str = "cpu") -> tuple[TinyTransformer, dict]:
    """Train a fresh model on ``task``'s stream (seed ``cfg.data_seed``, by default ``cfg.seed + 1``; items in
    ``exclude`` dropped).

    Returns the model (its EMA weights when ``cfg.ema`` is set) and facts about the run; ``curve``,
    when given, receives (step, lr, train loss, gradient norm before clipping) for every step. ``device``:
    where the model trains (``cpu`` or ``cuda``); the initial weights and the data stream are the same on
    either (drawn on the CPU), the arithmetic is not bit for bit.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1 if cfg.data_seed is None else cfg.data_seed)
    model = TinyTransformer(task.vocab, task.seq_len, cfg.width, cfg.depth).to(device)
    # foreach: one kernel per step for all tensors (the default on CUDA); on the CPU it gives the bits of the
    # per-tensor loop that trained the recorded rounds, with less per-step overhead for the small widths
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98),
                            foreach=True)
    ema = [p.detach().clone() for p in model.parameters()] if cfg.ema is not None else None
    pos = _positions(task, device)
    t0, c0 = time.perf_counter(), time.process_time()
    tokens_seen = 0
    last = float("nan")
    lr = cfg.lr
    for step in range(cfg.steps):
        lr = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup, cfg.lr_floor)
        for g in opt.param_groups:
            g["lr"] = lr
        seq = torch.from_numpy(task.train_batch(cfg.batch, rng, exclude)).to(device)
        logits = answer_logits(model, task, seq)
        loss = F.cross_entropy(logits.reshape(-1, task.vocab), seq[:, pos].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float("nan")
        if cfg.clip is not None:
            gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip))
        elif curve is not None:
            gnorm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad)
                                                                 for p in model.parameters() if p.grad is not None])))
        opt.step()
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(ema, [p.detach() for p in model.parameters()], 1.0 - cfg.ema)
        tokens_seen += seq.shape[0] * int(pos[-1])
        last = float(loss.detach())
        if curve is not None:
            curve.append((step, lr, last, gnorm))
        if log_every and (step + 1) % log_every == 0:
            print(f"    step {step + 1:5d}  train loss {last:.4f}", flush=True)
    if ema is not None:
        with torch.no_grad():
            for p, e in zip(model.parameters(), ema):
                p.copy_(e)
    info = {"params": n_params(model), "train_seconds": time.perf_counter() - t0,
            "train_cpu_seconds": time.process_time() - c0, "tokens": tokens_seen, "final_train_loss": last,
            "final_lr": lr}
    return model, info


def _target_log_probs(logits: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    return torch.log_softmax(logits, dim=-1).gather(-1, target[..., None])[..., 0].cpu().numpy()


@torch.no_grad()
def answer_log_probs(model: TinyTransformer, task, seqs: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """Teacher-forced log-probabilities (n, answer_len) of the answer tokens in ``seqs``."""
    model.eval()
    out = []
    pos = _positions(task, device_of(model))
    for i in range(0, len(seqs), chunk):
        seq = _on(model, seqs[i : i + chunk])
        out.append(_target_log_probs(answer_logits(model, task, seq).double(), seq[:, pos]))
    model.train()
    return np.concatenate(out)


@torch.no_grad()
def _decode(model: TinyTransformer, task, seq: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Fill the answer positions of ``seq`` token by token: greedy, or sampled at temperature 1 (``generator``
    on the model's device)."""
    gen = seq.clone()
    for p in task.answer_positions:
        logits = model(gen[:, : int(p)])[:, -1]
        if generator is None:
            gen[:, p] = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.double(), dim=-1)
            gen[:, p] = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return gen[:, _positions(task, gen.device)]


@torch.no_grad()
def greedy_answers(model: TinyTransformer, task, seqs: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    model.eval()
    out = [_decode(model, task, _on(model, seqs[i : i + chunk]), None).cpu().numpy()
           for i in range(0, len(seqs), chunk)]
    model.train()
    return np.concatenate(out)


@torch.no_grad()
def greedy_answers_from(model: TinyTransformer, task, seqs: np.ndarray, tf_argmax: np.ndarray,
                        chunk: int = CHUNK) -> np.ndarray:
    """:func:`greedy_answers`, given the teacher-forced argmax ``tf_argmax`` (n, answer_len) of ``seqs``.

    Greedy decoding sees the correct prefix up to and including an item's first wrong argmax, so there
    its tokens are the teacher-forced ones; only the positions after an item's first error are decoded,
    and only for the items that have one (a model that gets most tokens right decodes little).
    """
    seqs = np.asarray(seqs, dtype=np.int64)
    pos = np.asarray(task.answer_positions)
    target = seqs[:, pos]
    wrong = tf_argmax != target
    first = np.where(wrong.any(axis=1), wrong.argmax(axis=1), len(pos))
    gen = seqs.copy()
    for j, p in enumerate(pos):  # up to each item's first error the greedy token is the teacher-forced one
        rows = first >= j
        gen[rows, p] = tf_argmax[rows, j]
    model.eval()
    for j in range(1, len(pos)):
        rows = np.flatnonzero(first < j)  # decoded past an error: the prefix differs from the test item
        for i in range(0, rows.size, chunk):
            r = rows[i : i + chunk]
            logits = model(_on(model, gen[r, : int(pos[j])]))[:, -1]
            gen[r, pos[j]] = logits.argmax(-1).cpu().numpy()
    model.train()
    return gen[:, pos]


@torch.no_grad()
def measure(model: TinyTransformer, task, test_seq: np.ndarray) -> Measurement:
    model.eval()
    seq = _on(model, test_seq)
    pos = _positions(task, seq.device)
    probs = torch.softmax(answer_logits(model, task, seq).double(), dim=-1)
    target = seq[:, pos]
    tok_p = probs.gather(-1, target[..., None])[..., 0]
    onehot = F.one_hot(target, task.vocab).double()
    brier = ((probs - onehot) ** 2).sum(-1)
    greedy = _decode(model, task, seq, None)
    model.train()
    return Measurement(tok_p.cpu().numpy(), brier.cpu().numpy(), greedy.cpu().numpy(), target.cpu().numpy())


@torch.no_grad()
def sample_passes(model: TinyTransformer, task, items: np.ndarray, n: int, generator: torch.Generator) -> np.ndarray:
    """Sample ``n`` answers at temperature 1 for each item of ``items``; (len(items), n), True where right."""
    model.eval()
    seq = _on(model, np.repeat(np.asarray(items, dtype=np.int64), n, axis=0))
    pos = _positions(task, seq.device)
    ok = (_decode(model, task, seq, generator) == seq[:, pos]).all(dim=1)
    model.train()
    return ok.cpu().numpy().reshape(len(items), n)


def sample_successes(model: TinyTransformer, task, item: np.ndarray, n: int, generator: torch.Generator) -> np.ndarray:
    """Sample ``n`` answers at temperature 1 for one test item; True where the answer is exactly right."""
    return sample_passes(model, task, np.asarray(item)[None, :], n, generator)[0]


def pass_until(model: TinyTransformer, task, items: np.ndarray, k: int, budget: int, generator: torch.Generator,
               max_batch: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """Sample every item until its k-th pass or ``budget`` samples: (successes, trials) per item.

    Items are sampled in rounds, in batches across items; within a round an item's samples are
    taken in order and counting stops at its k-th pass, so each count is exactly what sequential
    sample-until-k would give (negative binomial; censored at ``budget``).
    """
    m = len(items)
    succ = np.zeros(m, np.int64)
    trials = np.zeros(m, np.int64)
    chunk = np.full(m, 16, np.int64)
    while True:
        live = np.flatnonzero((succ < k) & (trials < budget))
        if live.size == 0:
            return succ, trials
        n = int(min(chunk[live].max(), max(1, max_batch // live.size)))
        res = sample_passes(model, task, items[live], n, generator)
        for j, i in enumerate(live):
            r = res[j, : int(min(n, budget - trials[i]))]
            cum = np.cumsum(r) + succ[i]
            hit = np.flatnonzero(cum >= k)
            if hit.size:
                trials[i] += hit[0] + 1
                succ[i] = k
            else:
                trials[i] += r.size
                succ[i] = cum[-1] if r.size else succ[i]
            chunk[i] = min(chunk[i] * 4, budget)


@torch.no_grad()
def answer_distributions(model: TinyTransformer, task, seqs: np.ndarray, chunk: int = CHUNK,
                         with_log_probs: bool = False):
    """The model's next-token distributions (n, answer_len, vocab) at the answer positions, given the correct
    prefix; with ``with_log_probs`` also :func:`answer_log_probs` of ``seqs``, from the same forward passes."""
    model.eval()
    dists, logps = [], []
    pos = _positions(task, device_of(model))
    for i in range(0, len(seqs), chunk):
        seq = _on(model, seqs[i : i + chunk])
        logits = answer_logits(model, task, seq).double()
        dists.append(torch.softmax(logits, dim=-1).cpu().numpy())
        if with_log_probs:
            logps.append(_target_log_probs(logits, seq[:, pos]))
    model.train()
    return (np.concatenate(dists), np.concatenate(logps)) if with_log_probs else np.concatenate(dists)
