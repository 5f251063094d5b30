#!/usr/bin/env python3
"""Parameter counts of M4SER's head at paper size, against Table V of the paper.

    python benchmarks/param_counts.py [--d-model 768] [--vocab 30522] [--cme-layers 1] [--json OUT]

Builds every lobe at d = 768, 12 heads, V = 30,522 (bert-base-uncased) with random weights (no
download: the encoders are counted from their published sizes, HuBERT-base 94.37 M / HuBERT-large
316.2 M, BERT-base 109.48 M) and prints the Table V deltas next to the paper's:
"+MSR & MIR" 54.5 M, "+GAN & LCL" 0.2 M, "+AED & AEC" 31.3 M.
"""

import argparse

from m4ser_lobes.aec import SelectiveAECDecoder
from m4ser_lobes.discriminator import ModalityDiscriminator
from m4ser_lobes.fusion import MultimodalFusion
from m4ser_lobes.heads import AEDHead

PAPER_DELTAS_M = {"+MSR & MIR": 54.5, "+GAN & LCL": 0.2, "+AED & AEC": 31.3}


def count(module):
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())


def head_deltas(d_model=768, vocab=30522, cme_layers=1, nhead=12, embed_dim=None):
    """The three Table V deltas of this implementation, in parameters.

    Example
    -------
    >>> deltas = head_deltas(d_model=64, vocab=100, nhead=4)
    >>> sorted(deltas)
    ['+AED & AEC', '+GAN & LCL', '+MSR & MIR']
    >>> deltas["+GAN & LCL"]  # 64*256 + 256 + 256 + 1
    16897
    """
    fusion = MultimodalFusion(d_model, nhead, cme_layers=cme_layers)
    aec = SelectiveAECDecoder(d_model, vocab, embed_dim or d_model, nhead=nhead)
    return {
        "+MSR & MIR": count(fusion),
        "+GAN & LCL": count(ModalityDiscriminator(d_model, 256)),  # LCL has no parameters
        "+AED & AEC": count(AEDHead(d_model)) + count(aec),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--vocab", type=int, default=30522)
    parser.add_argument("--cme-layers", type=int, default=1)
    parser.add_argument("--nhead", type=int, default=12)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    configurations = [
        (f"d={args.d_model}, {args.cme_layers} CME layer(s)", args.d_model, args.cme_layers, args.nhead),
        (f"d={args.d_model}, 2 CME layers", args.d_model, 2, args.nhead),
    ]
    if args.d_model == 768:  # Table V's encoder is HuBERT-large (docs/design.md §3.3)
        configurations.append(("d=1024 (HuBERT-large width, 16 heads), 1 layer", 1024, 1, 16))
    rows = {}
    for label, d, layers, nhead in configurations:
        rows[label] = head_deltas(d, args.vocab, layers, nhead=nhead)
    print(f"{'configuration':45s} " + " ".join(f"{k:>12s}" for k in PAPER_DELTAS_M))
    print(f"{'paper (Table V)':45s} " + " ".join(f"{v:>11.1f}M" for v in PAPER_DELTAS_M.values()))
    for label, deltas in rows.items():
        print(f"{label:45s} " + " ".join(f"{deltas[k] / 1e6:>11.2f}M" for k in PAPER_DELTAS_M))
    if args.json:
        from m4ser_lobes.utils.fileio import atomic_write_json

        atomic_write_json(args.json, {"paper_M": PAPER_DELTAS_M, "ours": rows})


if __name__ == "__main__":
    main()
