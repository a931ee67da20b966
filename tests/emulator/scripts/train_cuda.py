"""A CUDA training script in the style the ModelZoo ports started from (DeiT's main.py/engine.py, cut down).

Written for CUDA only: .cuda(), torch.device("cuda"), torch.cuda.amp, torch.cuda.synchronize(), nccl.
"""
import argparse
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--amp", action="store_true")
args = parser.parse_args()
distributed = "LOCAL_RANK" in os.environ
if distributed:
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend="nccl")
device = torch.device("cuda")
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 64), torch.nn.GELU(),
                            torch.nn.Linear(64, 10)).cuda()
if distributed:
    model = DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
scaler = torch.cuda.amp.GradScaler(enabled=args.amp)
data = torch.Generator().manual_seed(1)
for step in range(args.steps):
    images = torch.randn(64, 3, 32, 32, generator=data).cuda(non_blocking=True)
    labels = torch.randint(0, 10, (64,), generator=data).to(device)
    with torch.cuda.amp.autocast(enabled=args.amp):
        loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    torch.cuda.synchronize()
    sys.stdout.write(f"step {step} loss {loss.item():.6f} on {images.device}\n")  # one write: ranks never interleave
    sys.stdout.flush()
