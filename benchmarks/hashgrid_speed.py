"""Hash-grid training speed on CPU: specfit's encoding against a naive per-level, per-corner gather.

Both fit the same 2-D grid of ``n x n`` points with the same table, MLP and optimiser (full batch,
Adam with the fused kernel that ``specfit fit`` uses).
The naive encoding loops over levels and corners in Python and recomputes every index each step,
as a direct transcription of the algorithm would; specfit's gathers all levels and corners at
once and, on a fixed grid, computes indices and weights once. A profile of specfit's step shows
where the time goes. Writes results/hashgrid_speed.json; never asserts a timing.

    python benchmarks/hashgrid_speed.py [--sizes 64 256] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import write_result
from torch import nn

from specfit.encodings.hashgrid import HashGridEncoding, spatial_hash
from specfit.models import build_model
from specfit.signals import grid_coordinates
from specfit.training.loop import adam_optimizer
from specfit.util.runtime import tune_allocator


class NaiveHashGrid(nn.Module):
    """The same encoding written level by level and corner by corner, indices recomputed per call."""

    def __init__(self, reference: HashGridEncoding) -> None:
        super().__init__()
        self.ref = reference

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        ref = self.ref
        outputs = []
        for level, resolution in enumerate(ref.resolutions):
            scaled = coords * resolution
            cell = torch.floor(scaled)
            frac = scaled - cell
            feature = 0.0
            for corner in ref.corners:
                point = cell.long() + corner
                if ref.direct[level]:
                    index = (point * ref.strides[level]).sum(-1)
                else:
                    index = spatial_hash(point, ref.table_size)
                index = index % int(ref.level_sizes[level]) + int(ref.offsets[level])
                weight = torch.where(corner.bool(), frac, 1.0 - frac).prod(-1, keepdim=True)
                feature = feature + ref.table[index] * weight
            outputs.append(feature)
        return torch.cat(outputs, dim=-1)


def steps_per_second(model: nn.Module, forward, coords: torch.Tensor, target: torch.Tensor,
                     steps: int) -> float:
    optimiser = adam_optimizer(model, 1e-2, (0.9, 0.99), 1e-15)
    for step in range(steps + 3):
        if step == 3:
            start = time.perf_counter()
        loss = torch.mean((forward(coords) - target) ** 2)
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tune_allocator()
    rows = []
    print("hash grid (16 levels x 2 features, T = 2^16, MLP 2 x 64), full batch, steps/s")
    print(f"{'n x n':>9} {'naive':>8} {'specfit':>8} {'ratio':>6}")
    for n in args.sizes:
        coords = grid_coordinates((n, n), "signed")
        target = torch.rand(n * n, 3)
        naive_rates, rates = [], []
        for _ in range(args.repeats):
            torch.manual_seed(0)
            model = build_model("hashgrid", 2, 3)
            naive = NaiveHashGrid(model.encoding)
            naive_rates.append(steps_per_second(
                model, lambda x, m=model, e=naive: m.net(e((x + 1) * 0.5)), coords, target, args.steps))
            torch.manual_seed(0)
            model = build_model("hashgrid", 2, 3)
            rates.append(steps_per_second(model, model, coords, target, args.steps))
        naive_rate, rate = statistics.median(naive_rates), statistics.median(rates)
        rows.append({"n": n, "naive": naive_rate, "specfit": rate, "ratio": rate / naive_rate})
        print(f"{n:>4} x {n:<3} {naive_rate:8.2f} {rate:8.2f} {rate / naive_rate:5.2f}x", flush=True)

    n = args.sizes[-1]
    coords = grid_coordinates((n, n), "signed")
    target = torch.rand(n * n, 3)
    model = build_model("hashgrid", 2, 3)
    optimiser = adam_optimizer(model, 1e-2, (0.9, 0.99), 1e-15)
    model(coords)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            loss = torch.mean((model(coords) - target) ** 2)
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    print(f"\nprofile of 5 specfit steps at {n} x {n} (self CPU time):\n{table}")
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    top = [{"op": e.key, "share": e.self_cpu_time_total / total} for e in events[:12]]
    print(f"wrote {write_result('hashgrid_speed', {'rows': rows, 'profile_top': top, 'profile_n': n})}")


if __name__ == "__main__":
    main()
