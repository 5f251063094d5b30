#!/usr/bin/env python3
"""All of the paper's Table V (cost of each model row) measured in one process.

    python benchmarks/table5.py [--size tiny|base] [--quick] [--device cpu|cuda]
                                [--precision fp32|bf16|fp16] [--adam yaml|per-tensor|foreach|fused]
                                [--batch 4] [--seconds 4] [--rounds N] [--json OUT]
    python benchmarks/table5.py --size base --profile msr_mir,gan_lcl,m4ser [--steps 3] [--json OUT]

The four rows are the Table IV switches of ``hparams/m4ser.yaml`` (README.md, Table IV A(3) for the
concat baseline):

  ``baseline``  speech & text encoders + concat pooling (every switch off)
  ``msr_mir``   + MSR & MIR                     ``gan_lcl``  + GAN & LCL (two-phase update)
  ``m4ser``     + AED & AEC (the full model)

Each row is an ``M4SERBrain`` built from the YAML (``--adam`` swaps the Adam implementation of
its three optimisers). Per row, in interleaved rounds (one warm-up round, then medians over
``--rounds``; the ratios of per-row minima are reported too, for loaded machines):

* ``train_step_s``: one ``fit_batch`` (both optimiser phases) on a batch built like the recipe's
  (``--batch`` utterances of about ``--seconds`` of audio, hypotheses aligned to references);
* ``inference_s_per_utterance``: the emotion path of an exported model (no AED/AEC heads, no
  correction; ``eval``, ``no_grad``, the evaluation autocast), batch of 1;
  ``inference_batch_s_per_utterance``: the same on the padded training batch, per utterance;
* ``flops``: ``torch.utils.flop_counter.FlopCounterMode`` totals of one training step and of the
  two inference calls (matrix products, convolutions and attention; element-wise and optimiser
  work are not counted), so each time ratio can be read beside its FLOP ratio;
* ``params_m`` and ``peak_memory_mb`` (CUDA only: the row's resident parameters and optimiser
  state plus the transient peak of ``torch.cuda.max_memory_allocated`` during its step).

Corpus-level figures, the same for every row: ``padding_fraction`` (share of padded audio over one
epoch of IEMOCAP-like durations, random batches of 16 against SpeechBrain's
``DynamicBatchSampler``) and ``loader_utterances_per_s`` (the data pipeline alone, on a generated
mini corpus). ``--size base`` uses hubert-base-ls960 / bert-base-uncased shapes with random
weights written to a temporary folder (nothing is downloaded); the four rows share ONE copy of the
two encoders (each row keeps its own optimiser state), which fits four base-size rows in memory
without changing any row's computation. ``--profile`` runs ``torch.profiler`` over a few training
steps of the named rows instead: top operators by self CPU time, named ranges (``fit_batch``
phases, lobe forwards, optimiser steps), the optimiser step alone per Adam implementation, and
``batch_correction_targets`` alone (``benchmarks/PROFILE.md`` reads such runs). The rows are built
by ``table5_rows.py`` (each a run planned from a dict), the profile by ``table5_profile.py``.

The paper (one V100, batch 16, HuBERT-large): 9.6 / 12.0 / 20.8 / 21.5 h for 100 epochs and
29.6 / 44.8 / 44.5 / 44.7 ms per utterance, 426.9 / 481.4 / 481.6 / 512.9 M parameters.
"""

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the siblings, also when imported by path
from param_counts import PAPER_DELTAS_M, count  # noqa: E402
from table5_rows import (ROWS, build_rows, environment, fit_step, infer,  # noqa: E402
                         inference_inputs, log, timed)

from m4ser_lobes.experiment import studies  # noqa: E402

LABELS = {name: label for name, (label, _) in studies.ROWS.items()}
# Table V of the paper: parameters (M), training time (h / 100 epochs), inference (ms / utterance).
PAPER = {
    "baseline": {"params_m": 426.9, "train_h": 9.6, "inference_ms": 29.6},
    "msr_mir": {"params_m": 481.4, "train_h": 12.0, "inference_ms": 44.8},
    "gan_lcl": {"params_m": 481.6, "train_h": 20.8, "inference_ms": 44.5},
    "m4ser": {"params_m": 512.9, "train_h": 21.5, "inference_ms": 44.7},
}
STAGES = {  # ratio name -> (numerator row, denominator row)
    "+MSR & MIR (msr_mir / baseline)": ("msr_mir", "baseline"),
    "+GAN & LCL (gan_lcl / msr_mir)": ("gan_lcl", "msr_mir"),
    "+AED & AEC (m4ser / gan_lcl)": ("m4ser", "gan_lcl"),
    "M4SER / baseline": ("m4ser", "baseline"),
}
# IEMOCAP, 4 classes (neu, hap+exc, ang, sad): 5531 utterances, about 7 h, mean 4.55 s.
IEMOCAP_UTTERANCES = 5531
IEMOCAP_MEAN_S = 4.55
ASSUMED_STD_S = 3.2  # an assumption (coefficient of variation 0.7), not a published figure
MAX_AUDIO_SECONDS = 20.0  # hparams/m4ser.yaml: max_audio_seconds (the training crop)


# ---------------------------------------------------------------------------- measurements
def flops_of(fn):
    """(total FLOPs, FLOPs by top-level module) of ``fn()`` with ``FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    by_module = {}
    for name, ops in counter.get_flop_counts().items():
        if name.count(".") == 1:  # "M4SER.speech_encoder", "ModalityDiscriminator.net" ...
            by_module[name] = int(sum(ops.values()))
    return int(counter.get_total_flops()), by_module


def resident_bytes(brain):
    """Bytes of the row's parameters, buffers and optimiser state (each storage once)."""
    tensors = list(brain.modules.parameters()) + list(brain.modules.buffers())
    for optimizer in brain.optimizers_dict.values():
        for state in optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
    seen, total = set(), 0
    for tensor in tensors:
        key = tensor.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += tensor.untyped_storage().nbytes()
    return total


def cuda_peak_mb(brain, fn, params_only=False):
    """The row's resident memory plus the transient peak of ``fn()`` above what was allocated."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    transient = torch.cuda.max_memory_allocated() - before
    if params_only:
        resident = sum(p.numel() * p.element_size() for p in brain.modules.parameters())
    else:
        resident = resident_bytes(brain)
    return (resident + transient) / 2**20


def row_params(brain):
    """Parameters of the row's modules (model + discriminator when it has one)."""
    return sum(count(module) for module in brain.modules.values())


def padding_fraction(batch_size=16, seed=0):
    """Share of padded audio over one epoch: random batches vs the recipe's bucketed batches.

    Durations: ``IEMOCAP_UTTERANCES`` draws of a log-normal with mean ``IEMOCAP_MEAN_S`` and
    standard deviation ``ASSUMED_STD_S``, cropped at ``MAX_AUDIO_SECONDS`` as in training.
    ``bucketed`` is what the recipe trains on (``m4ser_lobes.data.batching.train_loader_kwargs``
    with the YAML's defaults: SpeechBrain's ``DynamicBatchSampler``, ``batch_size`` utterances of
    one duration bucket a batch); ``bucketed_by_seconds`` is the same sampler with batches of
    ``batch_size`` mean utterances of audio (``max_batch_seconds``).

    Example
    -------
    >>> result = padding_fraction()
    >>> 0 < result["bucketed"] < result["random"] < 1
    True
    """
    from speechbrain.dataio.dataset import DynamicItemDataset

    from m4ser_lobes.data import batching

    sigma = math.sqrt(math.log(1 + (ASSUMED_STD_S / IEMOCAP_MEAN_S) ** 2))
    mu = math.log(IEMOCAP_MEAN_S) - sigma**2 / 2
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(mu, sigma, IEMOCAP_UTTERANCES)
    durations = np.minimum(raw, MAX_AUDIO_SECONDS)
    dataset = DynamicItemDataset({f"u{i}": {"duration": float(d)} for i, d in enumerate(raw)})
    order = rng.permutation(len(durations))
    random_batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    budget = batch_size * IEMOCAP_MEAN_S
    samplers = {
        name: batching.train_loader_kwargs(dataset, batch_size, seed=seed,
                                           max_audio_seconds=MAX_AUDIO_SECONDS,
                                           **extra)["batch_sampler"]
        for name, extra in (("bucketed", {}), ("bucketed_by_seconds", {"max_batch_seconds": budget}))
    }
    batches = {name: [list(b) for b in sampler] for name, sampler in samplers.items()}
    result = {"random": batching.padding_fraction(durations, random_batches)}
    for name, found in batches.items():
        result[name] = batching.padding_fraction(durations, found)
    result.update(
        batches={"random": len(random_batches), **{k: len(v) for k, v in batches.items()}},
        mean_batch_size={"random": len(durations) / len(random_batches),
                         **{k: float(np.mean([len(b) for b in v])) for k, v in batches.items()}},
        durations={
            "utterances": IEMOCAP_UTTERANCES, "hours": float(durations.sum() / 3600),
            "mean_s": float(durations.mean()), "std_s": float(durations.std()),
            "max_s": float(durations.max()),
        },
        assumptions=(
            f"log-normal durations, mean {IEMOCAP_MEAN_S} s (IEMOCAP 4-class set: 5531 utterances, "
            f"about 7 h) and standard deviation {ASSUMED_STD_S} s (an assumption, not a published "
            f"figure), cropped at {MAX_AUDIO_SECONDS} s; random = shuffled batches of {batch_size}; "
            f"bucketed = m4ser_lobes.data.batching.train_loader_kwargs (DynamicBatchSampler, "
            f"{batching.DEFAULT_NUM_BUCKETS} equal-audio buckets, {batch_size} utterances a batch); "
            f"bucketed_by_seconds = the same with max_batch_seconds={budget:.1f}"
        ),
    )
    return result


def loader_throughput(folder, quick, batch_size=16):
    """Utterances per second of the data pipeline alone (recipe's ``dataio_prep``, no model).

    A generated IEMOCAP look-alike is prepared by ``m4ser_lobes.corpora.iemocap.prepare_iemocap``
    (fold 1), read by
    ``m4ser_lobes.data.dataio.dataio_prep`` with a tiny text encoder's tokenizer (selective
    corrections, as for M4SER) and iterated with a SpeechBrain DataLoader over the recipe's
    bucketed batches (``m4ser_lobes.data.batching.train_loader_kwargs``, ``num_workers=0``).
    """
    import speechbrain as sb
    from transformers import AutoTokenizer

    from m4ser_lobes.corpora.iemocap import prepare_iemocap
    from m4ser_lobes.data import batching
    from m4ser_lobes.data.dataio import dataio_prep
    from m4ser_lobes.testing.mini_iemocap import corpus_words, generate_iemocap
    from m4ser_lobes.testing.models import save_tiny_text_encoder

    folder = Path(folder)
    corpus = generate_iemocap(folder / "corpus", seed=0, utterances_per_dialog=3 if quick else 10)
    prepare_iemocap(corpus.root, folder / "prepared", hypotheses=corpus.hypotheses, folds=(1,),
                    expected_utterances=None)
    tokenizer = AutoTokenizer.from_pretrained(
        str(save_tiny_text_encoder(folder / "text", words=corpus_words())))
    manifest = folder / "prepared" / "fold1" / "train.json"
    datasets, _ = dataio_prep({"train": str(manifest)}, tokenizer, str(folder / "label_encoder.txt"),
                              max_audio_seconds=MAX_AUDIO_SECONDS, max_tokens=128)
    kwargs = batching.train_loader_kwargs(datasets["train"], batch_size, seed=0,
                                          max_audio_seconds=MAX_AUDIO_SECONDS)
    loader = sb.dataio.dataloader.make_dataloader(datasets["train"], **kwargs)
    epochs = 1 if quick else 3
    for _ in loader:  # warm-up epoch: file cache, tokenizer
        pass
    start, utterances, seconds = time.perf_counter(), 0, 0.0
    for _ in range(epochs):
        for batch in loader:
            utterances += len(batch.id)
            wavs, lens = batch.sig
            seconds += float(lens.sum()) * wavs.shape[1] / 16000
    elapsed = time.perf_counter() - start
    return {"utterances_per_s": utterances / elapsed, "audio_seconds_per_s": seconds / elapsed,
            "utterances": len(datasets["train"]), "epochs": epochs, "batch_size": batch_size,
            "num_workers": 0}


# ---------------------------------------------------------------------------- the benchmark
def measure(args):
    """Run the benchmark; returns the JSON-ready results."""
    torch.manual_seed(0)
    log("padding fraction")  # the cheap corpus-level figures first: a late failure loses less
    padding = padding_fraction()
    log("data loader")
    with tempfile.TemporaryDirectory(prefix="table5_loader_") as tmp:
        loader = loader_throughput(tmp, args.quick)
    with tempfile.TemporaryDirectory(prefix="table5_") as tmp:
        brains, batch, single = build_rows(args, tmp, ROWS)
        device = brains["m4ser"].device
        single_inputs = inference_inputs(single, device)
        batch_inputs = inference_inputs(batch, device)
        times = {name: {"train": [], "b1": [], "batch": []} for name in ROWS}
        results = {name: {} for name in ROWS}
        for round_ in range(args.rounds + 1):
            tag = "warm-up" if round_ == 0 else f"{round_}/{args.rounds}"
            for name, brain in brains.items():
                log(f"round {tag}: {name}")
                train = timed(lambda: fit_step(brain, batch), device)
                b1 = [timed(lambda: infer(brain, single_inputs), device) for _ in range(args.repeats)]
                bb = [timed(lambda: infer(brain, batch_inputs), device) for _ in range(args.repeats)]
                if round_:
                    times[name]["train"].append(train)
                    times[name]["b1"] += b1
                    times[name]["batch"] += [t / args.batch for t in bb]
            if round_ == 0:  # FLOPs and memory once, after the warm-up, outside the timings
                for name, brain in brains.items():
                    log(f"FLOPs and memory: {name}")
                    train, _ = flops_of(lambda: fit_step(brain, batch))
                    b1, b1_by = flops_of(lambda: infer(brain, single_inputs))
                    bb, _ = flops_of(lambda: infer(brain, batch_inputs))
                    results[name]["flops"] = {
                        "train": {"total": train, "per_utterance": train / args.batch},
                        "inference": {"total": b1, "per_utterance": b1, "by_module": b1_by,
                                      "batch_per_utterance": bb / args.batch},
                    }
                    results[name]["params_m"] = row_params(brain) / 1e6
                    if str(device).startswith("cuda"):
                        results[name]["peak_memory_mb"] = {
                            "train": cuda_peak_mb(brain, lambda: fit_step(brain, batch)),
                            "inference": cuda_peak_mb(brain, lambda: infer(brain, single_inputs),
                                                      params_only=True),
                        }
                    else:
                        results[name]["peak_memory_mb"] = None
        for name in ROWS:
            results[name].update(
                train_step_s=statistics.median(times[name]["train"]),
                inference_s_per_utterance=statistics.median(times[name]["b1"]),
                inference_batch_s_per_utterance=statistics.median(times[name]["batch"]),
                train_step_min_s=min(times[name]["train"]),
                inference_min_s_per_utterance=min(times[name]["b1"]),
                samples={k: v for k, v in times[name].items()},
            )
        del brains
    return {
        "args": vars(args),
        "environment": environment(args),
        "rows": results,
        "ratios": ratios(results),
        "paper": PAPER,
        "paper_ratios": paper_ratios(),
        "padding_fraction": padding,
        "loader_utterances_per_s": loader["utterances_per_s"],
        "loader": loader,
        "notes": NOTES + ([] if str(args.device).startswith("cuda") else [CPU_MEMORY_NOTE]),
    }


CPU_MEMORY_NOTE = (
    "peak_memory_mb is None on CPU: PyTorch keeps no allocator statistics for CPU tensors, and "
    "the process's resident set size (ru_maxrss) mixes all four rows, the shared encoders and "
    "the allocator's cache; run with --device cuda for per-row figures."
)
NOTES = [
    "The four rows share one copy of the speech and text encoders (each row has its own "
    "optimiser state): identical computation, a quarter of the encoder memory.",
    "FLOPs count matrix products, convolutions and attention (torch.utils.flop_counter); "
    "element-wise, normalisation and optimiser work are not counted.",
    "On a shared (loaded) machine compare the *_of_minima ratios too: the fastest of the "
    "interleaved samples is the least disturbed by other processes.",
    "Inference = the exported model's emotion path (no AED/AEC, no correction, eval, no_grad), "
    "model forward only (tokenisation and ASR excluded).",
]


def ratios(results):
    """Stage ratios of train time, inference time and FLOPs (JSON figures)."""
    out = {}
    for stage, (num, den) in STAGES.items():
        a, b = results[num], results[den]
        out[stage] = {
            "train_time": a["train_step_s"] / b["train_step_s"],
            "train_flops": a["flops"]["train"]["total"] / b["flops"]["train"]["total"],
            "inference_time": a["inference_s_per_utterance"] / b["inference_s_per_utterance"],
            "inference_batch_time": (a["inference_batch_s_per_utterance"]
                                     / b["inference_batch_s_per_utterance"]),
            "inference_flops": (a["flops"]["inference"]["total"]
                                / b["flops"]["inference"]["total"]),
            "train_time_of_minima": a["train_step_min_s"] / b["train_step_min_s"],
            "inference_time_of_minima": (a["inference_min_s_per_utterance"]
                                         / b["inference_min_s_per_utterance"]),
        }
    return out


def paper_ratios():
    return {stage: {"train_time": PAPER[num]["train_h"] / PAPER[den]["train_h"],
                    "inference_time": PAPER[num]["inference_ms"] / PAPER[den]["inference_ms"]}
            for stage, (num, den) in STAGES.items()}


def report(figures):
    """The table beside the paper's numbers, as text."""
    rows, args = figures["rows"], figures["args"]
    base = rows["baseline"]
    lines = [
        f"Table V  size={args['size']} device={args['device']} precision={args['precision']} "
        f"adam={args['adam']} batch={args['batch']}x{args['seconds']}s rounds={args['rounds']} "
        f"(medians after a warm-up round)",
        f"{'row':22s} {'params':>8s} {'train/step':>11s} {'ratio':>6s} {'FLOPs':>6s} {'paper':>6s}"
        f" {'infer b1':>9s} {'ratio':>6s} {'FLOPs':>6s} {'paper':>6s} {'b=' + str(args['batch']):>8s}"
        f" {'peak MB':>8s}",
    ]
    for name, r in rows.items():
        paper = PAPER[name]
        peak = r["peak_memory_mb"]["train"] if r["peak_memory_mb"] else None
        lines.append(
            f"{LABELS[name]:22s} {r['params_m']:7.1f}M {r['train_step_s'] * 1e3:9.1f}ms"
            f" {r['train_step_s'] / base['train_step_s']:5.2f}x"
            f" {r['flops']['train']['total'] / base['flops']['train']['total']:5.2f}x"
            f" {paper['train_h'] / PAPER['baseline']['train_h']:5.2f}x"
            f" {r['inference_s_per_utterance'] * 1e3:7.1f}ms"
            f" {r['inference_s_per_utterance'] / base['inference_s_per_utterance']:5.2f}x"
            f" {r['flops']['inference']['total'] / base['flops']['inference']['total']:5.2f}x"
            f" {paper['inference_ms'] / PAPER['baseline']['inference_ms']:5.2f}x"
            f" {r['inference_batch_s_per_utterance'] * 1e3:6.1f}ms"
            f" {'-' if peak is None else f'{peak:.0f}':>8s}"
        )
    lines.append("paper (V100): " + ", ".join(
        f"{LABELS[n]} {p['params_m']} M / {p['train_h']} h / {p['inference_ms']} ms"
        for n, p in PAPER.items()))
    lines.append(f"{'stage':34s} {'train':>6s} {'FLOPs':>6s} {'paper':>6s} {'infer':>6s} "
                 f"{'FLOPs':>6s} {'paper':>6s}")
    for stage, r in figures["ratios"].items():
        p = figures["paper_ratios"][stage]
        lines.append(f"{stage:34s} {r['train_time']:5.2f}x {r['train_flops']:5.2f}x "
                     f"{p['train_time']:5.2f}x {r['inference_time']:5.2f}x "
                     f"{r['inference_flops']:5.2f}x {p['inference_time']:5.2f}x   "
                     f"(minima: train {r['train_time_of_minima']:.2f}x, "
                     f"infer {r['inference_time_of_minima']:.2f}x)")
    deltas = {"+MSR & MIR": ("msr_mir", "baseline"), "+GAN & LCL": ("gan_lcl", "msr_mir"),
              "+AED & AEC": ("m4ser", "gan_lcl")}
    lines.append("parameter deltas: " + ", ".join(
        f"{k} {rows[a]['params_m'] - rows[b]['params_m']:.2f} M (paper {PAPER_DELTAS_M[k]} M)"
        for k, (a, b) in deltas.items()))
    pad = figures["padding_fraction"]
    lines.append(f"padding fraction over one epoch: random batches of 16 {pad['random']:.1%}, "
                 f"bucketed as the recipe {pad['bucketed']:.1%}, bucketed by seconds "
                 f"{pad['bucketed_by_seconds']:.1%}")
    loader = figures["loader"]
    lines.append(f"data pipeline alone: {loader['utterances_per_s']:.1f} utterances/s "
                 f"({loader['audio_seconds_per_s']:.0f} s of audio/s, num_workers=0)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- command line
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--quick", action="store_true",
                        help="2 timed rounds, 1 inference repeat, a smaller loader corpus")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--adam", choices=("yaml", "per-tensor", "foreach", "fused"), default="yaml",
                        help="Adam implementation of all optimisers (yaml: hparams/m4ser.yaml's, fused)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, help="timed rounds (default 5; 2 with --quick)")
    parser.add_argument("--repeats", type=int, help="inference calls per row and round (3; 1 quick)")
    parser.add_argument("--profile", help="comma-separated rows to profile instead of benchmarking")
    parser.add_argument("--steps", type=int, default=3, help="profiled training steps per row")
    parser.add_argument("--top", type=int, default=25, help="operators listed per profiled row")
    parser.add_argument("--json", help="also write the figures to this JSON file (atomically)")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.rounds < 1 or args.repeats < 1 or args.batch < 1 or args.seconds <= 0:
        parser.error("--rounds, --repeats and --batch must be >= 1 and --seconds > 0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch build sees no CUDA device; use --device cpu")
    if args.precision == "fp16" and not args.device.startswith("cuda"):
        parser.error("--precision fp16 needs --device cuda (use bf16 on CPU)")
    if args.profile:
        args.profile = [r.strip() for r in args.profile.split(",") if r.strip()]
        unknown = [r for r in args.profile if r not in ROWS]
        if unknown:
            parser.error(f"--profile: unknown rows {unknown}; choose among {list(ROWS)}")
    return args


def main(argv=None):
    """Run the benchmark (or the profile) and print/write its figures; returns them."""
    args = parse_args(argv)
    if args.profile:
        from table5_profile import profile

        figures = profile(args, args.profile)
    else:
        figures = measure(args)
        print(report(figures))
    if args.json:
        from m4ser_lobes.utils.fileio import atomic_write_json

        atomic_write_json(args.json, figures)
        log(f"wrote {args.json}")
    return figures


if __name__ == "__main__":
    main()
