"""The PyTorch side of `vision bench time-to-accuracy`: the plain script a user would write.

Same files (DATA/train/<class>/*.png for training, DATA/test/<class>/*.png held out), same
small CNN (three conv3x3/BN/ReLU stages, 2x2 max-pool after the first two, global average
pool, linear head), the same epochs, batch, input size, normalisation, AdamW learning rate,
weight decay, warm-up and cosine schedule as the platform's recipe chose, the same shares of the
uploaded images for training and validation (stratified), the best epoch by validation loss
kept. No augmentation. Prints one JSON line.
"""

import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def load(root, classes, size, mean, std):
    xs, ys = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            image = Image.open(os.path.join(folder, file)).convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            xs.append(np.asarray(image, dtype=np.uint8))
            ys.append(label)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().div_(255.0)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.contiguous(), torch.tensor(ys)


class SmallCnn(nn.Module):
    def __init__(self, classes):
        super().__init__()

        def stage(i, o):
            return [nn.Conv2d(i, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *stage(3, 32), nn.MaxPool2d(2), *stage(32, 64), nn.MaxPool2d(2), *stage(64, 128),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(128, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):
        return self.fc(self.features(x))


def evaluate(model, x, y, batch=256):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i : i + batch])
            loss += F.cross_entropy(logits, y[i : i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[i : i + batch]).sum().item()
    return loss / max(len(x), 1), correct / max(len(x), 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--weight-decay", type=float, required=True)
    p.add_argument("--warmup-epochs", type=float, required=True)
    p.add_argument("--train-fraction", type=float, default=1.0)
    p.add_argument("--val-fraction", type=float, required=True)
    p.add_argument("--mean", type=float, nargs=3, required=True)
    p.add_argument("--std", type=float, nargs=3, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0, help="0: torch's default")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)

    started = time.perf_counter()
    classes = sorted(os.listdir(os.path.join(a.data, "train")))
    x, y = load(os.path.join(a.data, "train"), classes, a.image_size, a.mean, a.std)
    test_x, test_y = load(os.path.join(a.data, "test"), classes, a.image_size, a.mean, a.std)
    # Stratified shares of the uploaded images for training and validation, as the platform's
    # split of the same upload (the rest, its own test share, is used by neither).
    train, val = [], []
    for c in range(len(classes)):
        idx = (y == c).nonzero().flatten().tolist()
        random.shuffle(idx)
        n_val = round(len(idx) * a.val_fraction)
        n_train = min(round(len(idx) * a.train_fraction), len(idx) - n_val)
        val += idx[:n_val]
        train += idx[n_val : n_val + n_train]
    train_x, train_y = x[train], y[train]
    val_x, val_y = x[val], y[val]
    loaded = time.perf_counter()

    model = SmallCnn(len(classes))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    steps_per_epoch = math.ceil(len(train_x) / a.batch_size)
    total = a.epochs * steps_per_epoch
    warmup = round(a.warmup_epochs * steps_per_epoch)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    best, best_state, train_secs = float("inf"), None, 0.0
    for _ in range(a.epochs):
        model.train()
        t = time.perf_counter()
        order = torch.randperm(len(train_x))
        for i in range(0, len(order), a.batch_size):
            b = order[i : i + a.batch_size]
            loss = F.cross_entropy(model(train_x[b]), train_y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        train_secs += time.perf_counter() - t
        val_loss, _ = evaluate(model, val_x, val_y) if len(val_x) else (0.0, 0.0)
        if len(val_x) and val_loss < best:
            best = val_loss
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    trained = time.perf_counter()
    if best_state is not None:  # else the last epoch's weights, as without validation
        model.load_state_dict(best_state)
    _, accuracy = evaluate(model, test_x, test_y)
    done = time.perf_counter()
    print(json.dumps({
        "load_secs": loaded - started,
        "train_secs": trained - loaded,
        "test_secs": done - trained,
        "total_secs": done - started,
        "accuracy": accuracy,
        "train_images": len(train_x),
        "train_images_per_sec": len(train_x) * a.epochs / max(train_secs, 1e-9),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
