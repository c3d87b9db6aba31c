"""How fast is the from-scratch U-Net? Prints a table (a measurement, not a test).

1. Training steps per second (forward, backward, AdamW step) at batch 64 on
   17 channels x 100 samples, for our ``UNet1D`` against diffusers'
   ``UNet1DModel`` at an equal parameter count (within 10%). diffusers' 1D U-Net
   is used in its residual-temporal configuration (Janner et al. 2022's
   "Diffuser": ``DownResnetBlock1D`` / ``UpResnetBlock1D``, GroupNorm, a learned
   timestep embedding), the one of its configurations that, like ours, is a
   residual U-Net with GroupNorm and a time embedding; its widths are chosen
   so that the parameter counts match within 10%. It has no conditioning input,
   so it is compared both with our cross-attention model (fed 50 image tokens)
   and with our unconditional one.
   The models are timed in alternating rounds and the median round is kept, so
   that load from other processes affects both alike. Steps/s are given from
   wall time and from the process's CPU time; on a shared machine the second
   is the steadier one. ``--threads`` sets torch's threads (default 1: with 2
   threads on 2 busy cores, OpenMP's waiting threads make the timings erratic).
   Each model's work per step (GFLOP, counted by ``torch.utils.flop_counter``)
   says whether a difference in speed comes from doing more or from doing it slower.
2. The time of one sampling run with DDPM (1000 steps) and with DDIM (50 steps).
3. The memory of one training step: the tensors autograd saves for the
   backward pass (exact, weights excluded), and the rise of the process's peak
   resident set size (Linux VmHWM, reset through /proc/self/clear_refs) during
   one step, measured in a fresh subprocess per model (this one also sees the
   allocator's caching, so it varies from run to run).

Run: ``python benchmarks/unet_speed.py`` (add ``--quick`` for a short smoke run); a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from diffusers import UNet1DModel
from torch.utils.flop_counter import FlopCounterMode

from i2b_minimal import diffusion
from i2b_minimal.unet import UNet1D

CHANNELS, LENGTH, BATCH, TOKENS, COND_DIM = 17, 100, 64, 50, 512


def diffusers_unet(widths: tuple[int, int, int]) -> UNet1DModel:
    """diffusers' residual 1D U-Net with three levels, 100 -> 50 -> 25 samples, like ours."""
    return UNet1DModel(
        sample_size=LENGTH, in_channels=CHANNELS, out_channels=CHANNELS, block_out_channels=widths,
        down_block_types=("DownResnetBlock1D",) * 3, up_block_types=("UpResnetBlock1D",) * 2,
        mid_block_type="MidResTemporalBlock1D", out_block_type="OutConv1DBlock", act_fn="mish", norm_num_groups=8,
        layers_per_block=1, use_timestep_embedding=True, time_embedding_type="positional",
        flip_sin_to_cos=False, freq_shift=1,
    )


def matched_diffusers_widths(n_params: int) -> tuple[int, int, int]:
    """Widths (w, 2w, c) whose diffusers U-Net has the parameter count closest to ``n_params``.

    Multiples of 8 (its GroupNorm has 8 groups): first the w of (w, 2w, 4w) that
    comes closest, then the deepest width c is tuned, as steps of 8 in w alone
    change the count by ~30%.
    """
    def count(widths):
        return sum(p.numel() for p in diffusers_unet(widths).parameters())

    counts = {}
    for w in range(8, 513, 8):
        counts[(w, 2 * w, 4 * w)] = count((w, 2 * w, 4 * w))
        if counts[(w, 2 * w, 4 * w)] > n_params:
            break
    w = min(counts, key=lambda widths: abs(counts[widths] - n_params))[0]
    for c in range(2 * w, 4 * w + 17, 8):
        counts[(w, 2 * w, c)] = count((w, 2 * w, c))
    return min(counts, key=lambda widths: abs(counts[widths] - n_params))


def models() -> dict[str, tuple]:
    """name -> (build the model, its condition), built lazily so a subprocess builds only its own."""
    n_cross = UNet1D(CHANNELS, cond_dim=COND_DIM, conditioning="cross_attention").num_parameters()
    n_none = UNet1D(CHANNELS, conditioning="none").num_parameters()
    w1, w2 = matched_diffusers_widths(n_cross), matched_diffusers_widths(n_none)
    tokens = torch.randn(BATCH, TOKENS, COND_DIM, generator=torch.Generator().manual_seed(1))
    return {
        "ours, cross_attention": (lambda: UNet1D(CHANNELS, cond_dim=COND_DIM, conditioning="cross_attention"), tokens),
        f"diffusers UNet1DModel {w1}": (lambda: diffusers_unet(w1), None),
        "ours, none": (lambda: UNet1D(CHANNELS, conditioning="none"), None),
        f"diffusers UNet1DModel {w2}": (lambda: diffusers_unet(w2), None),
    }


def training_step_fn(model: torch.nn.Module, cond: torch.Tensor | None):
    """A closure running one full training step on fixed random data."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, CHANNELS, LENGTH, generator=generator)
    t = torch.randint(0, 1000, (BATCH,), generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    is_ours = isinstance(model, UNet1D)

    def step():
        out = model(x, t, cond) if is_ours else model(x, t).sample
        loss = out.square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def saved_for_backward_mib(model: torch.nn.Module, step) -> float:
    """MiB of the distinct tensors autograd keeps from the forward pass for the backward pass, weights excluded."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(storages.values()) / 2**20


def training_speed(rounds: int, steps_per_round: int) -> list[tuple]:
    """(name, parameters, GFLOP per step, MiB saved for backward, steps/s from wall time, from CPU time) per model.

    Speeds are medians over rounds.
    """
    torch.manual_seed(0)
    named = {name: (build(), cond) for name, (build, cond) in models().items()}
    steps = {name: training_step_fn(model, cond) for name, (model, cond) in named.items()}
    for step in steps.values():  # warm-up: first-call allocations and oneDNN kernel selection
        step()
    gflops = {}
    for name, step in steps.items():  # the work of one step, counted by PyTorch (matmuls and convolutions)
        with FlopCounterMode(display=False) as counter:
            step()
        gflops[name] = counter.get_total_flops() / 1e9
    saved = {name: saved_for_backward_mib(named[name][0], step) for name, step in steps.items()}
    wall, cpu = {name: [] for name in steps}, {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps_per_round):
                step()
            wall[name].append((time.perf_counter() - start) / steps_per_round)
            cpu[name].append((time.process_time() - start_cpu) / steps_per_round)
    return [(name, sum(p.numel() for p in named[name][0].parameters()), gflops[name], saved[name],
             1.0 / statistics.median(wall[name]), 1.0 / statistics.median(cpu[name])) for name in steps]


def sampling_times(batch: int, ddpm_steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = UNet1D(CHANNELS, cond_dim=COND_DIM).eval()
    schedule = diffusion.NoiseSchedule(ddpm_steps)
    cond = torch.randn(batch, TOKENS, COND_DIM)
    runs = {
        f"DDPM, {ddpm_steps} steps": lambda: diffusion.ddpm_sample(model, schedule, (batch, CHANNELS, LENGTH), cond,
                                                                  generator=torch.Generator().manual_seed(0), progress=False),
        "DDIM, 50 steps": lambda: diffusion.ddim_sample(model, schedule, (batch, CHANNELS, LENGTH), cond, 50,
                                                        generator=torch.Generator().manual_seed(0), progress=False),
        "DDIM, 50 steps, guidance 3": lambda: diffusion.ddim_sample(
            model, schedule, (batch, CHANNELS, LENGTH), cond, 50, guidance_scale=3.0,
            generator=torch.Generator().manual_seed(0), progress=False),
    }
    times = {}
    for name, run in runs.items():
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        times[name] = (time.perf_counter() - start, time.process_time() - start_cpu)
    return times


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def peak_memory_of_step(name: str) -> float:
    """MiB by which the peak RSS rises during one training step (run in a fresh process)."""
    build, cond = models()[name]
    torch.manual_seed(0)
    step = training_step_fn(build(), cond)
    step()  # the optimizer state exists from now on, as in any training run past step one
    before = _vm_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset VmHWM, the peak RSS, to the current RSS
    step()
    return (_vm_kib("VmHWM") - before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a 100-step DDPM, for a smoke run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_of:
        print(peak_memory_of_step(args.memory_of))
        return

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {BATCH}, {CHANNELS} x {LENGTH}; "
          f"cross-attention fed {TOKENS} tokens of width {COND_DIM}")
    rounds, per_round = (2, 2) if args.quick else (7, 3)
    speeds = training_speed(rounds, per_round)
    print("\n| model | parameters | GFLOP per step | training steps/s (wall) | steps/s (CPU time) | GFLOP/s (CPU time) "
          "| saved for backward (MiB) | peak RSS rise of a step (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, n_params, gflop, saved, speed, cpu_speed in speeds:
        memory = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--memory-of", name],
                                capture_output=True, text=True, check=True).stdout.strip()
        print(f"| {name} | {n_params:,} | {gflop:.1f} | {speed:.2f} | {cpu_speed:.2f} | {gflop * cpu_speed:.0f} "
              f"| {saved:.0f} | {float(memory):.0f} |")
    for ours, theirs in (speeds[0:2], speeds[2:4]):
        print(f"\n{ours[0]} / {theirs[0]}: {ours[4] / theirs[4]:.2f}x (wall), {ours[5] / theirs[5]:.2f}x (CPU time); "
              f"parameters {ours[1] / theirs[1]:.2f}x, work per step {ours[2] / theirs[2]:.2f}x")

    times = sampling_times(batch=8, ddpm_steps=100 if args.quick else 1000)
    print("\n| sampler (ours, cross_attention, batch 8) | seconds (wall) | CPU seconds |")
    print("|---|---:|---:|")
    for name, (seconds, cpu_seconds) in times.items():
        print(f"| {name} | {seconds:.2f} | {cpu_seconds:.2f} |")
    ddpm, ddim = list(times.values())[:2]
    print(f"\nDDIM (50 steps) is {ddpm[0] / ddim[0]:.1f}x faster than DDPM (wall), {ddpm[1] / ddim[1]:.1f}x (CPU time).")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
