"""A small pre-LayerNorm decoder-only transformer, and its parameter count and training FLOPs."""

from __future__ import annotations

import math

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """Token + learned position embeddings, ``depth`` blocks, final LayerNorm, untied output head."""

    def __init__(self, vocab: int, seq_len: int, width: int, depth: int, heads: int | None = None) -> None:
        super().__init__()
        if heads is None:
            heads = max(1, width // 16)
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(seq_len, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        mask = torch.triu(torch.full((seq_len, seq_len), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        x = self.tok(tokens) + self.pos.weight[:t]
        mask = self.mask[:t, :t]
        for blk in self.blocks:
            x = blk(x, mask)
        return self.head(self.ln(x))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def param_count(vocab: int, seq_len: int, width: int, depth: int) -> int:
    """Parameter count of :class:`TinyTransformer` without building it."""
    per_block = 4 * width * width + 4 * width + 2 * (4 * width * width) + 5 * width + 4 * width
    return vocab * width + seq_len * width + depth * per_block + 2 * width + width * vocab + vocab


def train_flops(params: int, tokens: int) -> float:
    """Training compute, the usual 6 * N * tokens estimate."""
    return 6.0 * params * tokens


def cosine_lr(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warmup to ``peak``, then a cosine from ``peak`` down to ``peak * floor`` at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
