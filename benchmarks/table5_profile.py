"""``benchmarks/table5.py --profile``: ``torch.profiler`` over a few training steps of named rows.

Top operators by self CPU time, named ranges (``fit_batch`` phases, lobe forwards, optimiser
steps), the optimiser step alone per Adam implementation, and ``batch_correction_targets`` alone
(``benchmarks/PROFILE.md`` reads such runs).
"""

import functools
import statistics
import tempfile

import torch
from table5_rows import adam_class, build_rows, environment, fit_step, log, timed


def labelled(fn, label):
    """``fn`` inside a ``torch.profiler.record_function(label)`` range."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)

    wrapper.labelled = True
    return wrapper


def instrument(brain):
    """Name the phases of ``fit_batch`` and the lobes' forwards in the profile (instance attributes
    only; the classes are untouched). The main backward is what ``phase:`` ranges leave of
    ``fit_batch``."""
    for method in ("compute_forward", "_discriminator_phase", "compute_objectives", "_step",
                   "on_fit_batch_end"):
        setattr(brain, method, labelled(getattr(brain, method), f"phase:{method.strip('_')}"))
    model = brain.modules.model
    lobes = {"speech_encoder": model.speech_encoder, "text_encoder": model.text_encoder,
             "fusion": model.fusion, "aed_head": model.aed_head, "aec_decoder": model.aec_decoder,
             "discriminator": brain.modules["discriminator"] if "discriminator" in brain.modules
             else None}
    for name, lobe in lobes.items():
        if lobe is not None and not getattr(lobe.forward, "labelled", False):
            lobe.forward = labelled(lobe.forward, f"forward:{name}")


def profile(args, rows):
    """``torch.profiler`` over ``args.steps`` training steps per row; top ops by self CPU time.

    Besides the operator table, each row gets the CPU time (children included) of the named
    ranges: ``fit_batch`` phases, lobe forwards and the optimiser (``Optimizer.step#Adam.step``).
    """
    import m4ser_lobes.brain as brain_module
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU]
    if str(args.device).startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    out = {"args": vars(args), "environment": environment(args), "rows": {}}
    original_targets = brain_module.batch_correction_targets
    brain_module.batch_correction_targets = labelled(original_targets, "batch_correction_targets")
    try:
        with tempfile.TemporaryDirectory(prefix="table5_profile_") as tmp:
            brains, batch, _ = build_rows(args, tmp, rows)
            device = brains[rows[0]].device
            special_ids = brains[rows[0]].modules.model.text_encoder.special_ids()
            for name, brain in brains.items():  # warm-up (allocations, Adam state)
                log(f"warm-up step: {name}")
                instrument(brain)
                fit_step(brain, batch)
            for name, brain in brains.items():
                log(f"profiling {name}: {args.steps} steps")
                walls = []
                with torch_profile(activities=activities) as prof:
                    for _ in range(args.steps):
                        walls.append(timed(lambda: fit_step(brain, batch), device))
                out["rows"][name] = profile_summary(prof.key_averages(), args, walls)
                print(f"== {name}: median {statistics.median(walls) * 1e3:.0f} ms per step "
                      f"under the profiler")
                print(out["rows"][name]["table"])
                for key, value in out["rows"][name]["ranges_ms_per_step"].items():
                    print(f"  {key:45s} {value:9.1f} ms/step")
            for name, brain in brains.items():
                log(f"optimiser steps alone: {name}")
                out["rows"][name]["optimizer_step_ms"] = optimizer_step_ms(brain, device)
                print(f"  Adam over all groups of {name}: " + ", ".join(
                    f"{k} {v:.0f} ms" for k, v in out["rows"][name]["optimizer_step_ms"].items()))
    finally:
        brain_module.batch_correction_targets = original_targets
    if "m4ser" in rows:  # the per-step Python work of the AEC targets, alone
        reps = 50
        seconds = timed(lambda: [original_targets(batch.aec_targets, *special_ids, max_len=16)
                                 for _ in range(reps)], "cpu")
        out["batch_correction_targets_ms"] = seconds / reps * 1e3
        print(f"batch_correction_targets alone: {out['batch_correction_targets_ms']:.3f} ms per batch")
    return out


def optimizer_step_ms(brain, device, repeats=3):
    """Median time of one step of every optimiser of the row, per Adam implementation.

    Each variant gets fresh optimisers over the row's parameter groups (random gradients, one
    untimed step first so that its state exists); the row's own optimisers are untouched.
    """
    groups = brain.parameter_groups()
    params = [p for found in groups.values() for group in found for p in group["params"]]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    figures = {}
    try:
        for variant in ("per-tensor", "foreach", "fused"):
            optimizers = [adam_class(1e-5, variant)(group) for group in groups.values() if group]

            def step(optimizers=optimizers):
                for optimizer in optimizers:
                    optimizer.step()

            step()
            figures[variant] = statistics.median(timed(step, device) for _ in range(repeats)) * 1e3
    finally:
        for p in params:
            p.grad = None
    return figures


def profile_summary(events, args, walls):
    """Top operators by self CPU time and the named ranges, per step."""
    total_us = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    ranges = {}
    for e in events:
        if e.key.startswith(("phase:", "forward:", "batch_correction_targets", "Optimizer.")):
            ranges[e.key] = ranges.get(e.key, 0.0) + e.cpu_time_total / 1e3 / args.steps
    return {
        "wall_s_per_step": statistics.median(walls),
        "op_self_cpu_s_per_step": total_us / 1e6 / args.steps,
        "top_self_cpu": [
            {"op": e.key, "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / args.steps,
             "share": e.self_cpu_time_total / total_us, "calls_per_step": e.count / args.steps}
            for e in top
        ],
        "ranges_ms_per_step": dict(sorted(ranges.items())),
        "table": events.table(sort_by="self_cpu_time_total", row_limit=args.top),
    }

