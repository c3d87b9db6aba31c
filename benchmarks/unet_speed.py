"""How fast is the from-scratch U-Net on a CPU, quiet and beside a busy process? Prints markdown tables (a measurement, not a test).

1. Training steps per second (forward, backward, AdamW step) at batch 64 on
   17 channels x 128 samples (issue 14's shape) and x 100 samples (THINGS-EEG2's
   epoch, which our 4-level default pads to 104), for our ``UNet1D`` (package
   defaults, conditioning ``cross_attention`` fed 50 tokens of width 512, and
   ``none``; and the option ``key_value_heads=1``, multi-query attention)
   against diffusers' ``UNet1DModel`` at an equal parameter count (within 10%).
   diffusers' 1D U-Net is used in its residual-temporal configuration (Janner
   et al. 2022's "Diffuser": ``DownResnetBlock1D`` / ``UpResnetBlock1D``,
   GroupNorm, Mish, a learned timestep embedding), the one of
   its configurations that, like ours, is a residual U-Net with GroupNorm and a
   time embedding; it has no conditioning input. Every model runs with the
   package's thread count (``hardware.policy_threads()``), quiet and with one
   competing busy process (``sh -c 'while :; do :; done'``, started and stopped
   by this script), in alternating rounds of sweeps, one step of every model in
   turn, so that the load from other programs falls on all alike; speeds are
   medians over steps, and ours against diffusers' is the median of the ratio
   taken sweep by sweep. Steps/s come from wall time and
   from the process's CPU time; each model's work per step (GFLOP, counted by
   ``torch.utils.flop_counter``) says whether a difference comes from doing more
   or from doing it slower.
2. Memory of one training step: the tensors autograd keeps from the forward pass
   for the backward pass (exact, weights excluded), and the rise of the process's
   peak resident set size during one step (Linux VmHWM, in a fresh process per
   model; it also sees the allocator's caching, so it varies from run to run).
3. The thread policy: the notebook-sized model (width 16, batch 8) and the
   quickstart-sized one (width 32, batch 64), cross-attention on 65 tiny-CLIP
   tokens, 17 x 100, with the package's thread count and with torch's own
   (one per core), quiet and beside the busy process, in alternating rounds.
4. The time of one sampling run with DDPM (1000 steps) and with DDIM (50 steps).

Every load runs sweeps for a fixed time per round (20 s; 3 s with ``--quick``), at least one sweep, so
that a collapsed configuration cannot stretch the run. Run: ``python benchmarks/unet_speed.py --out
benchmarks/results/unet_speed.md`` (about 15 minutes on a quiet 2-core machine; ``--quick`` for a smoke run of
a few minutes; ``--part threads`` for one part). The script sets the thread counts itself.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import torch
from diffusers import UNet1DModel
from torch.utils.flop_counter import FlopCounterMode

from i2b_minimal.method import diffusion, hardware
from i2b_minimal.method.unet import UNet1D

CHANNELS, BATCH, TOKENS, COND_DIM = 17, 64, 50, 512
LENGTHS = (128, 100)


def diffusers_unet(widths: tuple[int, int, int]) -> UNet1DModel:
    """diffusers' residual 1D U-Net with three levels (T -> T/2 -> T/4)."""
    return UNet1DModel(
        in_channels=CHANNELS, out_channels=CHANNELS, block_out_channels=widths,
        down_block_types=("DownResnetBlock1D",) * 3, up_block_types=("UpResnetBlock1D",) * 2,
        mid_block_type="MidResTemporalBlock1D", out_block_type="OutConv1DBlock", act_fn="mish", norm_num_groups=8,
        layers_per_block=1, use_timestep_embedding=True, time_embedding_type="positional",
        flip_sin_to_cos=False, freq_shift=1,
    )


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_diffusers_widths(n_params: int) -> tuple[int, int, int]:
    """Widths (w, 2w, c), multiples of 8 (its GroupNorm has 8 groups), whose parameter count is closest to ours:
    first the w of (w, 2w, 4w), then the deepest width c, as steps of 8 in w alone change the count by ~30%."""
    counts = {}
    for w in range(8, 513, 8):
        counts[(w, 2 * w, 4 * w)] = count(diffusers_unet((w, 2 * w, 4 * w)))
        if counts[(w, 2 * w, 4 * w)] > n_params:
            break
    w = min(counts, key=lambda widths: abs(counts[widths] - n_params))[0]
    for c in range(2 * w, 4 * w + 17, 8):
        counts[(w, 2 * w, c)] = count(diffusers_unet((w, 2 * w, c)))
    return min(counts, key=lambda widths: abs(counts[widths] - n_params))


def models() -> dict[str, tuple]:
    """name -> (build the model, whether it is ours), built lazily so that a subprocess builds only its own."""
    ours = {"cross_attention": lambda: UNet1D(CHANNELS, cond_dim=COND_DIM, conditioning="cross_attention"),
            "none": lambda: UNet1D(CHANNELS, conditioning="none"),
            # an option, not the default: one key/value head shared by the four heads (method/attention.py)
            "cross_attention, key_value_heads=1": lambda: UNet1D(CHANNELS, cond_dim=COND_DIM, key_value_heads=1)}
    named = {}
    for mode, build in ours.items():  # in pairs: ours, then diffusers' at its parameter count
        widths = matched_diffusers_widths(count(build()))
        assert f"diffusers {widths}" not in named, "two of ours match one diffusers model: the pairs would break"
        named[f"ours, {mode}"] = (build, True)
        named[f"diffusers {widths}"] = (lambda widths=widths: diffusers_unet(widths), False)
    return named


def training_step_fn(model: torch.nn.Module, is_ours: bool, length: int, batch: int = BATCH,
                     tokens: int = TOKENS):
    """A closure running one full training step on fixed random data (image tokens for our conditioned model)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, CHANNELS, length, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)
    cond = None
    if is_ours and model.config.conditioning != "none":
        cond = torch.randn(batch, tokens, model.config.cond_dim, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def loss():
        return (model(x, t, cond) if is_ours else model(x, t).sample).square().mean()

    def step():
        loss().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step.loss = loss  # the forward pass alone, for saved_for_backward_mib
    return step


@contextmanager
def busy_process(on: bool):
    """One competing process spinning on a core while the block runs (none when ``on`` is False).

    It runs in a session of its own, as another program (a browser) would: Linux's autogroup scheduler shares
    the CPU between sessions first, so a spinner in this script's session would take its share out of ours alone.
    """
    process = subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True) if on else None
    try:
        yield
    finally:
        if process is not None:
            process.kill()
            process.wait()


def alternating_rounds(steps: dict, rounds: int, seconds: float, threads: dict | None = None) -> dict:
    """name -> {"quiet"/"busy": (step times from the wall clock, from CPU time)}, in seconds.

    Each round runs sweeps, one step of every model in turn, for ``seconds``
    (at least one sweep) quiet, then again beside the busy process; ``threads``:
    name -> torch threads. The i-th time of every model comes from the same
    sweep, seconds apart, so that a ratio taken sweep by sweep
    (:func:`paired_speed_ratio`) sees the same load from other programs on both
    sides: on a shared virtual machine the speed of one core drifts by 10-20%
    within a minute, more than the differences measured here.
    """
    times = {name: {load: ([], []) for load in ("quiet", "busy")} for name in steps}
    for _ in range(rounds):
        for load in ("quiet", "busy"):
            with busy_process(load == "busy"):
                start = time.perf_counter()
                while True:  # sweeps
                    for name, step in steps.items():
                        torch.set_num_threads((threads or {}).get(name, torch.get_num_threads()))
                        began, began_cpu = time.perf_counter(), time.process_time()
                        step()
                        times[name][load][0].append(time.perf_counter() - began)
                        times[name][load][1].append(time.process_time() - began_cpu)
                    if time.perf_counter() - start >= seconds:
                        break
    return times


def steps_per_second(step_times: list) -> float:
    return 1.0 / statistics.median(step_times)


def paired_speed_ratio(ours: list, theirs: list) -> float:
    """Our speed over theirs: the median over sweeps of their step time over ours in the same sweep."""
    return statistics.median(t / o for o, t in zip(ours, theirs))


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
        loss = step.loss()  # the forward pass only: what the backward pass recomputes is not kept
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(storages.values()) / 2**20


def gflop_per_step(step) -> float:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def training_table(length: int, rounds: int, seconds: float, print_row=print) -> list:
    torch.manual_seed(0)
    built = {name: (build(), is_ours) for name, (build, is_ours) in models().items()}
    steps = {name: training_step_fn(model, is_ours, length) for name, (model, is_ours) in built.items()}
    for step in steps.values():  # warm-up: first-call allocations and oneDNN kernel selection
        step()
    gflops = {name: gflop_per_step(step) for name, step in steps.items()}
    saved = {name: saved_for_backward_mib(built[name][0], step) for name, step in steps.items()}
    print_row(f"\n### Training step, batch {BATCH}, {CHANNELS} x {length}, {torch.get_num_threads()} torch thread(s)\n")
    print_row(f"Started at {load()}.\n")
    times = alternating_rounds(steps, rounds, seconds)
    print_row("| model | parameters | GFLOP per step | steps/s quiet (wall) | quiet (CPU time) | steps/s busy (wall) "
              "| busy (CPU time) | busy / quiet (wall) | saved for backward (MiB) |")
    print_row("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name, (model, _) in built.items():
        (quiet, quiet_cpu), (busy, busy_cpu) = (tuple(map(steps_per_second, times[name][load]))
                                                for load in ("quiet", "busy"))
        rows.append((name, count(model), gflops[name], saved[name], times[name]))
        print_row(f"| {name} | {count(model):,} | {gflops[name]:.1f} | {quiet:.2f} | {quiet_cpu:.2f} | {busy:.2f} | "
                  f"{busy_cpu:.2f} | {busy / quiet:.2f} | {saved[name]:.0f} |")
    sweeps = next(iter(times.values()))  # every model has one time per sweep
    print_row(f"\nSpeed ratios are taken sweep by sweep ({len(sweeps['quiet'][0])} quiet and "
              f"{len(sweeps['busy'][0])} busy sweeps of one step of every model), their median.\n")
    for ours, theirs in zip(rows[0::2], rows[1::2]):
        ratio = {(load, clock): paired_speed_ratio(ours[4][load][clock], theirs[4][load][clock])
                 for load in ("quiet", "busy") for clock in (0, 1)}
        met = "met" if min(ratio["quiet", 0], ratio["quiet", 1]) >= 1.0 else "MISSED"
        print_row(f"- {ours[0]} / {theirs[0]}: **{ratio['quiet', 0]:.2f}x** quiet (wall), {ratio['quiet', 1]:.2f}x "
                  f"(CPU time), {ratio['busy', 0]:.2f}x busy; parameters {ours[1] / theirs[1]:.2f}x, work "
                  f"{ours[2] / theirs[2]:.2f}x, saved for backward {ours[3] / theirs[3]:.2f}x. Goal >= 1.0x speed, "
                  f"<= 1.5x memory: {met} (speed), {'met' if ours[3] / theirs[3] <= 1.5 else 'MISSED'} (memory).")
    print_row(f"\nEnded at {load()}.")
    return rows


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def peak_memory_of_step(name: str, length: int) -> float:
    """MiB by which the peak RSS rises during one training step (run in a fresh process)."""
    build, is_ours = models()[name]
    torch.manual_seed(0)
    step = training_step_fn(build(), is_ours, length)
    step()  # the optimizer state exists from now on, as in any training run past step one
    before = _vm_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset VmHWM, the peak RSS, to the current RSS
    step()
    return (_vm_kib("VmHWM") - before) / 1024


def peak_rss_table(length: int, print_row=print) -> None:
    print_row(f"\n### Peak RSS rise of one training step ({CHANNELS} x {length}, fresh process per model)\n")
    print_row("| model | peak RSS rise (MiB) |\n|---|---:|")
    for name in models():
        mib = subprocess.run([sys.executable, __file__, "--memory-of", name, "--length", str(length)],
                             capture_output=True, text=True, check=True).stdout.strip()
        print_row(f"| {name} | {float(mib):.0f} |")


def thread_table(rounds: int, seconds: float, print_row=print) -> None:
    policy, default = hardware.policy_threads(), hardware.available_cpus()
    counts = sorted({policy, default})
    sizes = {"notebook (width 16, batch 8)": (16, 8), "quickstart (width 32, batch 64)": (32, 64)}
    steps, threads = {}, {}
    for size, (width, batch) in sizes.items():
        torch.manual_seed(0)
        model = UNet1D(CHANNELS, cond_dim=128, base_channels=width)  # tiny CLIP: 65 tokens of width 128
        step = training_step_fn(model, True, 100, batch=batch, tokens=65)
        for n in counts:
            steps[size, n], threads[size, n] = step, n
    for key, step in steps.items():
        torch.set_num_threads(threads[key])
        step()
    print_row(f"\n### Thread policy: cross-attention U-Net, {CHANNELS} x 100, 65 tokens\n")
    print_row(f"Package default on this machine: {policy} thread(s) (`hardware.policy_threads()`: half of "
              f"{default} available cores); torch's own default: {default}. Started at {load()}.\n")
    times = alternating_rounds(steps, rounds, seconds, threads)
    print_row("| model | threads | steps/s quiet (wall) | steps/s busy (wall) | busy / quiet |")
    print_row("|---|---:|---:|---:|---:|")
    for (size, n), step_times in times.items():
        quiet, busy = steps_per_second(step_times["quiet"][0]), steps_per_second(step_times["busy"][0])
        mark = " (package default)" if n == policy else ""
        print_row(f"| {size} | {n}{mark} | {quiet:.2f} | {busy:.2f} | **{busy / quiet:.2f}** |")
    print_row(f"\nGoal: the package default keeps >= 0.8x of its quiet throughput beside one busy process. "
              f"Ended at {load()}.")
    torch.set_num_threads(policy)


def sampling_table(ddpm_steps: int, print_row=print) -> None:
    torch.manual_seed(0)
    model = UNet1D(CHANNELS, cond_dim=COND_DIM).eval()
    schedule = diffusion.NoiseSchedule(ddpm_steps)
    shape, cond, batch = (8, CHANNELS, 100), torch.randn(8, TOKENS, COND_DIM), 8
    runs = {
        f"DDPM, {ddpm_steps} steps": lambda: diffusion.ddpm_sample(model, schedule, shape, cond, progress=False,
                                                                  generator=torch.Generator().manual_seed(0)),
        "DDIM, 50 steps": lambda: diffusion.ddim_sample(model, schedule, shape, cond, 50, progress=False,
                                                        generator=torch.Generator().manual_seed(0)),
        "DDIM, 50 steps, guidance 3": lambda: diffusion.ddim_sample(
            model, schedule, shape, cond, 50, guidance_scale=3.0, generator=torch.Generator().manual_seed(0),
            progress=False),
    }
    print_row(f"\n### Sampling, ours (cross_attention), batch {batch}, {CHANNELS} x 100, quiet, "
              f"{torch.get_num_threads()} thread(s)\n")
    print_row("| sampler | seconds (wall) | CPU seconds |\n|---|---:|---:|")
    times = []
    for name, run in runs.items():
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        times.append((time.perf_counter() - start, time.process_time() - start_cpu))
        print_row(f"| {name} | {times[-1][0]:.2f} | {times[-1][1]:.2f} |")
    print_row(f"\nDDIM (50 steps) is {times[0][0] / times[1][0]:.1f}x faster than DDPM ({ddpm_steps} steps) in wall "
              f"time, {times[0][1] / times[1][1]:.1f}x in CPU time.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one shape, fewer rounds, a 100-step DDPM: a smoke run")
    parser.add_argument("--out", help="also write the tables to this markdown file, with the command and date")
    parser.add_argument("--part", choices=("all", "training", "threads", "sampling"), default="all",
                        help="run one part only (default: all)")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=LENGTHS[0], help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the busy process
    torch.set_num_threads(hardware.policy_threads())
    if args.memory_of:
        print(peak_memory_of_step(args.memory_of, args.length))
        return

    lines = []

    def print_row(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    began = time.perf_counter()
    command = "python benchmarks/unet_speed.py" + " --quick" * args.quick + f" --part {args.part}" * (args.part != "all")
    print_row("# U-Net speed on a CPU: ours against diffusers' UNet1DModel, quiet and beside a busy process\n")
    print_row(f"Command: `{command}`. Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
              f"{os.cpu_count()} CPUs, torch {torch.__version__}; {load()} at the start.")
    rounds, seconds = (2, 3.0) if args.quick else (5, 20.0)
    if args.part in ("all", "training"):
        for length in LENGTHS[:1] if args.quick else LENGTHS:
            training_table(length, rounds, seconds, print_row)
        if not args.quick:
            peak_rss_table(LENGTHS[0], print_row)
    if args.part in ("all", "threads"):
        thread_table(rounds, seconds, print_row)
    if args.part in ("all", "sampling"):
        sampling_table(100 if args.quick else 1000, print_row)
    print_row(f"\nWhole run: {time.perf_counter() - began:.0f} s; {load()} at the end.")
    if args.out:
        with open(args.out, "w") as out:
            out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
