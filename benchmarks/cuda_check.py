#!/usr/bin/env python3
"""The CUDA paths in one short run: AMP training with the two-phase update, and exact batching.

    python benchmarks/cuda_check.py [--json OUT] [--epochs 2]

1. Trains real runs (``m4ser_lobes.experiment.run``: ``plan_run`` of ``hparams/m4ser.yaml`` with
   IEMOCAP's section, then ``train``, as ``recipes/IEMOCAP/train.py`` does) on a generated IEMOCAP
   look-alike with tiny random encoders, once per precision (fp32, bf16, fp16:
   fp16 uses ONE GradScaler over the three optimisers), and reports the test WA/UA, the final
   training loss terms and SpeechBrain's non-finite counter.
2. Encodes utterances of different lengths alone and padded together with each speech-encoder
   family on the GPU in fp32 and reports the largest difference (exact batching on CUDA).

Needs a CUDA device; nothing is downloaded. The figures go to ``--json`` and the terminal.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))  # tiny_recipe: the tiny assets


def train_once(assets, results, precision, epochs):
    """One tiny IEMOCAP run on the GPU in ``precision``: planned from a dict, then trained."""
    from tiny_recipe import BATCH_SIZE, SEED, TINY_TRAINING

    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.experiment.run import plan_run, restore_root_logging, train
    from m4ser_lobes.testing.models import TINY_OVERRIDES

    overrides = {
        **{key: str(value) for key, value in assets.items()},
        "results_folder": str(results), "experiment_name": f"cuda_{precision}", "seed": SEED,
        "expected_utterances": None, **TINY_OVERRIDES, "number_of_epochs": epochs,
        "batch_size": BATCH_SIZE, **{k: v for k, v in TINY_TRAINING.items() if k != "device"},
    }
    run = plan_run(REPO / "hparams" / "m4ser.yaml", overrides, IEMOCAP,
                   {"device": "cuda", "precision": precision, "noprogressbar": True})
    start = time.perf_counter()
    with restore_root_logging():
        brain = train(run)
    seconds = time.perf_counter() - start
    metrics = json.loads((run.output_folder / "test_metrics.json").read_text())
    return {
        "seconds": round(seconds, 1),
        "test_WA": round(metrics["WA"], 2),
        "test_UA": round(metrics["UA"], 2),
        "train_stats_last_epoch": {k: float(v) for k, v in getattr(brain, "train_stats", {}).items()},
        "nonfinite_count": int(brain.nonfinite_count),
        "optimizer_step": int(brain.optimizer_step),
        "scaler_enabled": bool(brain.scaler.is_enabled()),
    }


def batching_difference(folder, kind):
    from m4ser_lobes.encoders import SpeechEncoder
    from m4ser_lobes.testing.models import save_tiny_speech_encoder

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    source = save_tiny_speech_encoder(Path(folder) / kind, kind=kind, hidden_size=64)
    encoder = SpeechEncoder(str(source)).cuda().eval()
    lengths = [4800, 16000, 40000]
    generator = torch.Generator().manual_seed(0)
    wavs = [torch.randn(n, generator=generator) for n in lengths]
    padded = torch.zeros(len(wavs), max(lengths))
    for i, wav in enumerate(wavs):
        padded[i, : len(wav)] = wav
    rel = torch.tensor(lengths, dtype=torch.float) / max(lengths)
    with torch.no_grad():
        states, pad_mask = encoder(padded.cuda(), rel.cuda())
        worst = 0.0
        for i, wav in enumerate(wavs):
            alone, _ = encoder(wav[None].cuda(), torch.ones(1, device="cuda"))
            valid = (~pad_mask[i]).sum()
            worst = max(worst, (states[i, :valid] - alone[0]).abs().max().item())
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per precision")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device (this check is for a GPU machine)")
    from tiny_recipe import make_tiny_assets

    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        assets = make_tiny_assets(Path(tmp) / "assets")
        report["training"] = {}
        for precision in ("fp32", "bf16", "fp16"):
            result = train_once(assets, Path(tmp) / "results", precision, args.epochs)
            report["training"][precision] = result
            print(precision, json.dumps(result), flush=True)
        report["alone_vs_batched_max_abs_diff_fp32"] = {
            kind: batching_difference(Path(tmp) / "enc", kind)
            for kind in ("hubert", "wav2vec2", "wav2vec2-layer", "wavlm")
        }
        print(json.dumps(report["alone_vs_batched_max_abs_diff_fp32"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
