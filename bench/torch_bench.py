#!/usr/bin/python3
"""PyTorch reference for bench/nn_bench.sh: the same architectures and batch shapes as
bench/core_bench.c, trained on random data on the CPU. Prints samples/s.

    OPENBLAS_NUM_THREADS=N /usr/bin/python3 bench/torch_bench.py N [SECONDS]
"""
import sys
import time

import torch
import torch.nn as nn

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
torch.set_num_threads(threads)
torch.manual_seed(1)


def run(step, batch):
    step()  # warm up
    steps, t0 = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return steps * batch / dt


# MLP 128-256-128-1, BCE on logits, Adam, batch 256
B = 256
mlp = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 1))
opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
xs = torch.randn(64, B, 128)
ys = (torch.rand(64, B, 1) < 0.5).float()
bce = nn.BCEWithLogitsLoss()
k = [0]


def mlp_step():
    i = k[0] % 64
    k[0] += 1
    opt.zero_grad(set_to_none=True)
    loss = bce(mlp(xs[i]), ys[i])
    loss.backward()
    opt.step()


print(f"torch mlp 128-256-128-1: {run(mlp_step, B):.0f} samples/s")

# GRU: vocabulary 10,000, embedding 64, hidden 128, length 20, 100 shared sampled negatives,
# Adam (sparse rows for the embedding and output tables, as the core does), batch 256
V, E, H, T, K = 10000, 64, 128, 20, 100
emb = nn.Embedding(V, E, sparse=True)
gru = nn.GRU(E, H, batch_first=True)
out = nn.Embedding(V, H, sparse=True)
out_b = nn.Embedding(V, 1, sparse=True)
dense_opt = torch.optim.Adam(gru.parameters(), lr=1e-3)
sparse_opt = torch.optim.SparseAdam(list(emb.parameters()) + list(out.parameters()) + list(out_b.parameters()), lr=1e-3)
items = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B,))


def gru_step():
    negs = torch.randint(0, V, (K,))
    dense_opt.zero_grad(set_to_none=True)
    sparse_opt.zero_grad(set_to_none=True)
    _, h = gru(emb(items))
    h = h[0]
    pos = (h * out(targets)).sum(1, keepdim=True) + out_b(targets)
    neg = h @ out(negs).t() + out_b(negs).t()
    logits = torch.cat([pos, neg], 1)
    loss = nn.functional.cross_entropy(logits, torch.zeros(B, dtype=torch.long))
    loss.backward()
    dense_opt.step()
    sparse_opt.step()


print(f"torch gru e64 h128 t20 k100: {run(gru_step, B):.0f} samples/s")
