"""A CUDA training script as the ModelZoo ports found theirs: DeiT's main.py/engine.py loop, cut to the workshop.

python train_cuda.py --data-path ../data/digits --steps 30       (one GPU)
torchrun --nproc-per-node 2 train_cuda.py --steps 5               (two GPUs, NCCL)
"""
import argparse
import os

import timm
import torch
import torch.distributed as dist
from torchvision import datasets, transforms

import kit.models  # noqa: F401  (registers the workshop models with timm)

parser = argparse.ArgumentParser()
parser.add_argument("--data-path", default="../data/digits")
parser.add_argument("--model", default="hivit_workshop_32")
parser.add_argument("--batch-size", type=int, default=64)  # per GPU
parser.add_argument("--lr", type=float, default=1e-3)  # for a global batch of 64: DeiT scales it
parser.add_argument("--steps", type=int, default=30)
args = parser.parse_args()
distributed = "LOCAL_RANK" in os.environ
if distributed:
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl")
world, rank = (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)
lr = args.lr * args.batch_size * world / 64
print(f"world size {world}, batch {args.batch_size} per GPU, {args.batch_size * world} global, lr {lr:g}")
torch.manual_seed(0)
normalize = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
dataset = datasets.ImageFolder(os.path.join(args.data_path, "train"),
                               transforms.Compose([transforms.ToTensor(), normalize]))
sampler = torch.utils.data.DistributedSampler(dataset, world, rank, seed=0)
loader = torch.utils.data.DataLoader(dataset, args.batch_size, sampler=sampler, drop_last=True)
model = timm.create_model(args.model, num_classes=10).cuda()
if distributed:
    model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])
optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
scaler = torch.cuda.amp.GradScaler()
step, epoch = 0, 0
while step < args.steps:
    sampler.set_epoch(epoch)
    for i, (images, targets) in enumerate(loader):
        images, targets = images.cuda(non_blocking=True), targets.cuda(non_blocking=True)
        with torch.cuda.amp.autocast():
            loss = torch.nn.functional.cross_entropy(model(images), targets)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize()
        mean = loss.detach().clone()
        if distributed:  # every rank logs the mean over the ranks, as DeiT's MetricLogger syncs it
            dist.all_reduce(mean)
        print(f"Epoch: [{epoch}]  [{i}/{len(loader)}]  lr: {lr:.6f}  loss: {mean.item() / world:.6f}  "
              f"rank {rank} own loss: {loss.item():.6f}\n", end="", flush=True)  # one write: ranks never interleave
        step += 1
        if step == args.steps:
            break
    epoch += 1
