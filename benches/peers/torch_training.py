"""PyTorch (eager, one thread) on the workloads of benches/training.rs, for ratios taken in
one sitting:

    python3 benches/peers/torch_training.py [--seconds 3]

- step/B: one training step of the reference network (32 -> 64 relu -> Dropout(0.5) ->
  64 relu -> Dropout(0.5) -> 1 sigmoid, BCELoss, Adam lr 1e-3), batch B gathered from
  1024 samples by index, zero_grad + forward + loss + backward + step, as
  `Trainer::step` does. Keras' l2(1e-4) on the kernels is `weight_decay = 2e-4` on the
  weight tensors only (PyTorch's Adam adds `wd * w` to the gradient; Keras' l2(lambda)
  adds `2 * lambda * w`). Samples per second.
- tutorial: 30 -> 64 relu (l2 0.01 -> weight_decay 0.02 on that kernel) -> Dropout(0.5)
  -> 1 sigmoid, Adam, batches of 32 reshuffled each epoch, 10 epochs over 455 synthetic
  samples. Milliseconds per 10-epoch run.

Each is run with PyTorch's default Adam and with `fused=True` (its fused CPU kernel).
"""

import argparse
import statistics
import time

import torch
from torch import nn

SAMPLES = 1024
TUTORIAL_SAMPLES = 455


def synthetic(samples, width, generator):
    x = torch.rand(samples, width, generator=generator) * 2 - 1
    direction = torch.rand(width, generator=generator) * 2 - 1
    flip = torch.rand(samples, generator=generator) < 0.1
    y = ((x @ direction > 0) != flip).float().unsqueeze(1)
    return x, y


def adam(model, l2_by_layer, fused):
    """Adam with Keras' l2(lambda) on the listed Linear layers' weights as weight decay."""
    groups = []
    for index, layer in enumerate(model):
        if isinstance(layer, nn.Linear):
            wd = 2 * l2_by_layer.get(index, 0.0)
            groups.append({"params": [layer.weight], "weight_decay": wd})
            groups.append({"params": [layer.bias], "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=1e-3, eps=1e-7, fused=fused)


def reference():
    return nn.Sequential(
        nn.Linear(32, 64), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(64, 1), nn.Sigmoid(),
    )


def tutorial_model():
    return nn.Sequential(
        nn.Linear(30, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 1), nn.Sigmoid()
    )


def rate(run, seconds, per_call):
    """Median calls per second over ~10 timed chunks after a warm-up."""
    for _ in range(20):
        run()
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < 0.2:
        run()
        calls += 1
    chunk = max(1, int(calls * seconds / 10 / 0.2))
    rates = []
    for _ in range(10):
        begin = time.perf_counter()
        for _ in range(chunk):
            run()
        rates.append(chunk * per_call / (time.perf_counter() - begin))
    return statistics.median(rates)


def bench_step(batch, seconds, fused):
    generator = torch.Generator().manual_seed(1)
    x, y = synthetic(SAMPLES, 32, generator)
    torch.manual_seed(2)
    model = reference()
    model.train()
    optimizer = adam(model, {0: 1e-4, 3: 1e-4}, fused)
    loss_fn = nn.BCELoss()
    order = torch.randperm(SAMPLES, generator=generator).repeat(2)
    state = {"start": 0}

    def step():
        start = state["start"]
        index = order[start:start + batch]
        state["start"] = (start + batch) % SAMPLES
        optimizer.zero_grad()
        loss = loss_fn(model(x[index]), y[index])
        loss.backward()
        optimizer.step()

    return rate(step, seconds, batch)


def bench_tutorial(runs, fused):
    generator = torch.Generator().manual_seed(3)
    x, y = synthetic(TUTORIAL_SAMPLES, 30, generator)
    loss_fn = nn.BCELoss()
    times = []
    for run in range(runs):
        torch.manual_seed(run)
        model = tutorial_model()
        model.train()
        optimizer = adam(model, {0: 0.01}, fused)
        begin = time.perf_counter()
        for _ in range(10):
            order = torch.randperm(TUTORIAL_SAMPLES)
            for start in range(0, TUTORIAL_SAMPLES, 32):
                index = order[start:start + 32]
                optimizer.zero_grad()
                loss = loss_fn(model(x[index]), y[index])
                loss.backward()
                optimizer.step()
        times.append(time.perf_counter() - begin)
    # The first run pays one-off dispatch and allocator warm-up; report the rest.
    return statistics.median(times[1:]) * 1e3, min(times[1:]) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tutorial-runs", type=int, default=11)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
    for fused in (False, True):
        adam_kind = "fused Adam" if fused else "default Adam"
        for batch in (1, 8, 32, 128):
            samples = bench_step(batch, args.seconds, fused)
            print(f"step/{batch} ({adam_kind}): {samples:,.0f} samples/s")
        median, best = bench_tutorial(args.tutorial_runs, fused)
        print(f"tutorial 10 epochs ({adam_kind}): median {median:.1f} ms, best {best:.1f} ms")


if __name__ == "__main__":
    main()
