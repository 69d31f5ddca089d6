#!/usr/bin/env python3
"""PyTorch's CPU train step for the same GPT-2 config as bench/train-step.ts: the anchor of `npm run bench -- train`.

The model is llm.c's / nanoGPT's GPT-2 (pre-LN blocks, tanh GELU, tied embedding and head, causal attention), AdamW
with weight decay on the 2-D weights, global-norm clipping at 1.0, one microbatch per step. Batches are random token
ids (the step's cost does not depend on the text). Prints one JSON line: the median step time over `--steps` timed
steps after warm-up, and the tokens/s it gives.

Usage: python3 bench/torch_train_step.py --n-layer 4 --n-head 4 --n-embd 128 --block 64 --batch 12 --vocab 65
       [--steps 20] [--threads N]
"""

import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c: int, nh: int):
        super().__init__()
        self.nh = nh
        self.ln1 = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.ln2 = nn.LayerNorm(c)
        self.fc = nn.Linear(c, 4 * c)
        self.fcproj = nn.Linear(4 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q = q.view(b, t, self.nh, c // self.nh).transpose(1, 2)
        k = k.view(b, t, self.nh, c // self.nh).transpose(1, 2)
        v = v.view(b, t, self.nh, c // self.nh).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        x = x + self.proj(y)
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, n_layer: int, n_head: int, n_embd: int, block: int, vocab: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.lnf = nn.LayerNorm(n_embd)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for blk in self.blocks:
            x = blk(x)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def loaded_blas() -> list:
    """The BLAS libraries this process mapped: Debian's torch links the system libblas.so.3, which is the slow
    reference BLAS unless OpenBLAS is installed (libopenblas0-pthread) and chosen by update-alternatives."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "blas" in parts[5]:
                libs.add(parts[5])
    return sorted(libs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: every core, like lavapipe)")
    a = ap.parse_args()
    # Debian's build starts with one OpenMP thread; the engine's CPU adapter uses every core.
    torch.set_num_threads(a.threads if a.threads > 0 else (os.cpu_count() or 1))
    torch.manual_seed(1)
    model = GPT(a.n_layer, a.n_head, a.n_embd, a.block, a.vocab)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(1)
    times = []
    for it in range(a.steps + 3):
        x = torch.randint(0, a.vocab, (a.batch, a.block), generator=gen)
        y = torch.randint(0, a.vocab, (a.batch, a.block), generator=gen)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()
        if it >= 3:
            times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    tokens = a.batch * a.block
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": loaded_blas(), "medianStepMs": med, "tokensPerS": tokens / (med / 1000), "steps": a.steps}))


if __name__ == "__main__":
    main()
