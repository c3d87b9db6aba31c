"""Where the method runs: CUDA, then Apple MPS, then CPU, with bf16 autocast on a GPU, and on how many CPU threads.

The same code runs on all three; only these choices differ between them.

**CPU threads.** Torch starts with one intra-op thread per core. This model's
kernels are small (a convolution over 100 time steps, a 64 x 128 matrix
product), and a team of threads waits for its slowest member at every one of
them; when another program holds a core, that member is the thread sharing it,
and every kernel waits for it. On this project's shared 2-core machine, 2
threads trained the notebook-sized U-Net 8 to 23 times slower than 1 thread,
and the quickstart-sized one 4.5 to 7.6 times slower, in three runs
(``benchmarks/results/unet_speed.md``). So the package asks for **half the cores this process may use, at
least one**: on Colab's 2 vCPUs that is 1 thread, and on a laptop it leaves the
other half to the browser and the notebook server.

:func:`best_device` applies this rule (the trainer, the samplers' callers, the
CLIP encoder and the notebooks all pick their device through it), unless the
thread count was chosen already:

1. a ``torch.set_num_threads(n)`` call made after this module was imported wins
   (a call made before the import cannot be told from torch's own default);
2. else ``I2B_THREADS=n`` in the environment sets the count;
3. else ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``, which torch reads at start, are left alone;
4. else the rule above.
"""

from __future__ import annotations

import contextlib
import os

import torch

THREADS_VARIABLE = "I2B_THREADS"
_AT_IMPORT = torch.get_num_threads()  # torch's count before the package touched it
_last_set: int | None = None  # the count this module set last, to tell it from a user's choice


def available_cpus() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def policy_threads(cpus: int | None = None, environ=os.environ) -> int:
    """The package's intra-op thread count: ``I2B_THREADS`` if set, else half of ``cpus`` (default: the available
    cores), at least 1."""
    value = environ.get(THREADS_VARIABLE, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_VARIABLE}={value!r}: expected a positive whole number of threads")
        return int(value)
    return max(1, (available_cpus() if cpus is None else cpus) // 2)


def apply_thread_policy(environ=os.environ) -> int:
    """Set torch's intra-op threads by the rule of this module's docstring, unless chosen already; returns the count."""
    global _last_set
    current = torch.get_num_threads()
    chosen_by_user = current != (_AT_IMPORT if _last_set is None else _last_set)
    left_to_openmp = THREADS_VARIABLE not in environ and any(environ.get(v) for v in ("OMP_NUM_THREADS",
                                                                                       "MKL_NUM_THREADS"))
    if chosen_by_user or left_to_openmp:
        return current
    _last_set = policy_threads(environ=environ)
    if _last_set != current:
        torch.set_num_threads(_last_set)
    return _last_set


def best_device(prefer: str | None = None):
    """CUDA, then Apple MPS, then CPU; ``prefer`` (e.g. ``"cpu"``) overrides. Applies the CPU thread policy."""
    apply_thread_policy()
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device):
    """bf16 autocast on a GPU; a no-op context on CPU and MPS.

    bf16 keeps fp32's exponent range, so diffusion losses need no loss scaling.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
