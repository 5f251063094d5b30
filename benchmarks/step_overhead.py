#!/usr/bin/env python3
"""Training-step cost of each Table V row, as ratios from one run (the paper's Table V overheads).

    python benchmarks/step_overhead.py [--size tiny|base] [--batch 4] [--seconds 4] [--rounds 5]
                                       [--device cpu|cuda] [--precision fp32|bf16|fp16] [--json OUT]

Builds ``M4SERBrain`` from ``hparams/m4ser.yaml`` for the four Table V rows, all in one process,
and times ``fit_batch`` on the same synthetic batch round-robin (a warm-up round, then ``--rounds``
timed rounds; medians), which keeps the ratios stable while the process warms up:

  (a) baseline: encoders + concat pooling      (b) + MSR & MIR
  (c) + GAN & LCL (two-phase update)           (d) + AED & AEC = M4SER

``--size base`` uses hubert-base / bert-base shapes with random weights written to a temporary
folder (about 800 MB; nothing is downloaded). The paper (one V100, 100 epochs): 9.6 h, 12.0 h,
20.8 h, 21.5 h, i.e. c/b = 1.73; our two-phase update reuses the single forward pass (design §5).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch

from m4ser_lobes.text.alignment import align_transcripts
from m4ser_lobes.brain import M4SERBrain

REPO = Path(__file__).resolve().parents[1]
OFF = {"use_aed": False, "use_aec": False, "use_gan": False, "use_lcl": False}
VARIANTS = {
    "a_baseline": {"use_msr": False, "use_mir": False, **OFF},
    "b_msr_mir": dict(OFF),
    "c_gan_lcl": {"use_aed": False, "use_aec": False},
    "d_m4ser": {},
}
HYPOTHESES = [
    ("i think that is good", "i think that was good"),
    ("what a day", "what a good day today"),
    ("you know it was wrong", "you know it was wrong"),
    ("honestly the trip was horrible", "honestly the trip was so horrible"),
]


def save_encoders(folder, size):
    """Random speech/text encoders of the given size; returns their two folders."""
    from m4ser_lobes.utils.testing import save_tiny_speech_encoder, save_tiny_text_encoder

    if size == "tiny":
        return (save_tiny_speech_encoder(folder / "speech", hidden_size=64),
                save_tiny_text_encoder(folder / "text", hidden_size=64))
    from transformers import BertConfig, BertModel, HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from m4ser_lobes.utils.testing import save_wordpiece_tokenizer

    HubertModel(HubertConfig(layerdrop=0.0)).save_pretrained(folder / "speech")
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder / "speech")
    tokenizer = save_wordpiece_tokenizer(folder / "text")
    BertModel(BertConfig(vocab_size=30522), add_pooling_layer=False).save_pretrained(folder / "text")
    del tokenizer
    return folder / "speech", folder / "text"


def make_brain(variant, folders, args):
    d_model, nhead = (64, 4) if args.size == "tiny" else (768, 12)
    overrides = {
        "data_folder": "unused", "results_folder": tempfile.mkdtemp(),
        "speech_encoder_source": str(folders[0]), "text_encoder_source": str(folders[1]),
        "d_model": d_model, "nhead": nhead, "precision": args.precision,
        "ckpt_interval_minutes": 0, **VARIANTS[variant],
    }
    with open(REPO / "hparams" / "m4ser.yaml", encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    hparams["label_encoder"] = list(range(4))
    brain = M4SERBrain(modules=hparams["modules"], hparams=hparams,
                       run_opts={"device": args.device}, checkpointer=None)
    brain.on_fit_start()
    brain.on_stage_start("TRAIN")
    brain.modules.train()
    return brain


def make_batch(tokenizer, batch_size, seconds):
    examples = []
    for i in range(batch_size):
        hyp, ref = HYPOTHESES[i % len(HYPOTHESES)]
        aligned = align_transcripts(hyp, ref, tokenizer)
        examples.append({
            "id": f"utt{i}",
            "sig": torch.randn(int(16000 * seconds * (1.0 - 0.1 * (i % 3)))),
            "emo_encoded": torch.tensor([i % 4]),
            "input_ids": torch.tensor(aligned.input_ids),
            "aed_labels": torch.tensor(aligned.labels),
            "aec_targets": aligned.targets,
        })
    return PaddedBatch(examples)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folders = save_encoders(Path(tmp), args.size)
        brains = {name: make_brain(name, folders, args) for name in VARIANTS}
        tokenizer = brains["d_m4ser"].hparams.text_encoder.tokenizer
        batch = make_batch(tokenizer, args.batch, args.seconds)
        times = {name: [] for name in VARIANTS}
        for round_ in range(args.rounds + 1):
            for name, brain in brains.items():
                brain.step = 1
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                brain.fit_batch(batch)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                if round_:  # round 0 warms up
                    times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratios = {
        "b/a (+MSR & MIR)": medians["b_msr_mir"] / medians["a_baseline"],
        "c/b (+GAN & LCL, two-phase)": medians["c_gan_lcl"] / medians["b_msr_mir"],
        "d/c (+AED & AEC)": medians["d_m4ser"] / medians["c_gan_lcl"],
        "d/a (M4SER / baseline)": medians["d_m4ser"] / medians["a_baseline"],
    }
    print(f"size={args.size} batch={args.batch} audio={args.seconds}s device={args.device} "
          f"precision={args.precision}; median step time over {args.rounds} rounds")
    for name, value in medians.items():
        print(f"  {name:12s} {value * 1000:9.1f} ms")
    paper = {"b/a (+MSR & MIR)": 12.0 / 9.6, "c/b (+GAN & LCL, two-phase)": 20.8 / 12.0,
             "d/c (+AED & AEC)": 21.5 / 20.8, "d/a (M4SER / baseline)": 21.5 / 9.6}
    for name, value in ratios.items():
        print(f"  {name:30s} {value:5.2f}   (paper, Table V train time: {paper[name]:.2f})")
    if args.json:
        from m4ser_lobes.utils.fileio import atomic_write_json

        atomic_write_json(args.json, {"args": vars(args), "median_s": medians, "ratios": ratios,
                                      "paper_ratios": paper})


if __name__ == "__main__":
    main()
