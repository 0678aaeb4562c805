"""Train a tiny transformer on addition (loss on answer tokens only) and measure it on a test set."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tiny_models.addition import VOCAB_SIZE, AdditionTask
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


@dataclass
class Measurement:
    """Teacher-forced and greedy results of one model on the test set."""

    token_probs: np.ndarray  # (items, answer_len): probability of each correct answer token
    brier: np.ndarray  # (items, answer_len): multi-class Brier score per answer position
    greedy: np.ndarray  # (items, answer_len): greedy-decoded answer tokens
    target: np.ndarray  # (items, answer_len)


def peak_lr(width: int, base: float = 3e-3) -> float:
    """A width-scaled learning rate (smaller for wider models)."""
    return base * min(1.0, 64 / width) ** 0.5


def train(task: AdditionTask, cfg: TrainConfig, exclude: set[int], log_every: int = 0) -> tuple[TinyTransformer, dict]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    model = TinyTransformer(VOCAB_SIZE, task.seq_len, cfg.width, cfg.depth)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    p0 = task.prompt_len - 1  # logits at positions p0.. predict the answer tokens
    t0 = time.perf_counter()
    tokens_seen = 0
    last = float("nan")
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        seq = torch.from_numpy(task.train_batch(cfg.batch, rng, exclude))
        logits = model(seq[:, :-1])[:, p0:]
        loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), seq[:, p0 + 1 :].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tokens_seen += seq.shape[0] * (seq.shape[1] - 1)
        last = float(loss.detach())
        if log_every and (step + 1) % log_every == 0:
            print(f"    step {step + 1:5d}  train loss {last:.4f}", flush=True)
    info = {"params": n_params(model), "train_seconds": time.perf_counter() - t0,
            "tokens": tokens_seen, "final_train_loss": last}
    return model, info


@torch.no_grad()
def measure(model: TinyTransformer, task: AdditionTask, test_seq: np.ndarray) -> Measurement:
    model.eval()
    seq = torch.from_numpy(test_seq)
    p0 = task.prompt_len - 1
    probs = torch.softmax(model(seq[:, :-1])[:, p0:].double(), dim=-1)
    target = seq[:, p0 + 1 :]
    tok_p = probs.gather(-1, target[..., None])[..., 0]
    onehot = F.one_hot(target, VOCAB_SIZE).double()
    brier = ((probs - onehot) ** 2).sum(-1)
    gen = seq[:, : task.prompt_len].clone()
    for _ in range(task.answer_len):
        nxt = model(gen)[:, -1].argmax(-1, keepdim=True)
        gen = torch.cat([gen, nxt], dim=1)
    model.train()
    return Measurement(tok_p.numpy(), brier.numpy(), gen[:, task.prompt_len :].numpy(), target.numpy())


@torch.no_grad()
def sample_successes(model: TinyTransformer, task: AdditionTask, item: np.ndarray, n: int,
                     generator: torch.Generator) -> np.ndarray:
    """Sample ``n`` answers at temperature 1 for one test item; True where the answer is exactly right."""
    model.eval()
    prompt = torch.from_numpy(item[: task.prompt_len]).repeat(n, 1)
    target = torch.from_numpy(item[task.prompt_len :])
    gen = prompt
    for _ in range(task.answer_len):
        p = torch.softmax(model(gen)[:, -1].double(), dim=-1)
        nxt = torch.multinomial(p, 1, generator=generator)
        gen = torch.cat([gen, nxt], dim=1)
    model.train()
    return (gen[:, task.prompt_len :] == target).all(dim=1).numpy()
