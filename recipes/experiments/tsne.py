#!/usr/bin/env python3
r"""Figs. 9 and 10: t-SNE of the test-set representations of finished runs (a tool: it trains nothing).

    # runs trained (or re-tested) with --save_embeddings=True write embeddings.npz beside predictions.csv
    python recipes/experiments/tsne.py results/speech_only/fold3/seed1986 results/text_only/fold3/seed1986 \
        results/wo_lcl/fold3/seed1986 results/full/fold3/seed1986 --labels "speech only" "text only" \
        "w/o LCL" M4SER --out fig9.png                     # Fig. 9: H_ap coloured by emotion
    python recipes/experiments/tsne.py results/wo_gan/fold3/seed1986 results/full/fold3/seed1986 \
        --by modality --labels "before (w/o GAN)" "after (M4SER)" --out fig10.png
                                                           # Fig. 10: H_S^spe, H_T^spe, H_inv

Each panel's silhouette score (scikit-learn, on the representation itself, by emotion or by
representation type) is written to ``<out>.json``, so "better clusters" is a number. The
embedding is deterministic for a ``--seed``.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PARTS = {"speech_specific": "H_S^spe", "text_specific": "H_T^spe", "invariant": "H_inv"}


def panel_data(folder, by):
    """``(points, groups)`` of one run: H_ap by emotion, or the three parts by representation."""
    data = np.load(Path(folder) / "embeddings.npz", allow_pickle=False)
    if by == "emotion":
        return data["pooled"], data["labels"]
    present = [k for k in PARTS if k in data.files]
    if not present:
        raise ValueError(f"{folder}/embeddings.npz holds no modality-specific or invariant "
                         "representation (the run has no fusion): use --by emotion")
    points = np.concatenate([data[k] for k in present])
    groups = np.concatenate([[PARTS[k]] * len(data[k]) for k in present])
    return points, groups


def tsne_figure(folders, out, by="emotion", labels=None, seed=0, perplexity=30.0):
    """Write the figure and ``<out>.json`` (silhouette per panel); returns the JSON dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE
    from sklearn.metrics import silhouette_score

    fig, axes = plt.subplots(1, len(folders), figsize=(3.6 * len(folders), 3.6), squeeze=False)
    scores = {}
    for i, (ax, folder) in enumerate(zip(axes[0], folders)):
        points, groups = panel_data(folder, by)
        name = labels[i] if labels else Path(folder).parts[-3]
        perp = min(perplexity, max(2.0, (len(points) - 1) / 3))
        xy = TSNE(n_components=2, perplexity=perp, random_state=seed, init="pca").fit_transform(points)
        score = float(silhouette_score(points, groups)) if len(set(groups)) > 1 else None
        scores[name] = {"silhouette": score, "points": int(len(points)), "by": by,
                        "run": str(folder)}
        for group in sorted(set(groups)):
            mask = groups == group
            ax.scatter(xy[mask, 0], xy[mask, 1], s=8, label=str(group))
        ax.set_title(f"{name}\nsilhouette {score:.3f}" if score is not None else name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    Path(out).with_suffix(".json").write_text(json.dumps(scores, indent=2) + "\n")
    return scores


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run output folders with embeddings.npz")
    parser.add_argument("--by", choices=("emotion", "modality"), default="emotion",
                        help="Fig. 9: H_ap by emotion; Fig. 10: the three representations")
    parser.add_argument("--labels", nargs="+", default=None, help="panel titles")
    parser.add_argument("--seed", type=int, default=0, help="t-SNE seed (the figure is deterministic)")
    parser.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (capped "
                        "for small test sets)")
    parser.add_argument("--out", type=Path, default=Path("tsne.png"), help="PNG (JSON beside it)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        tsne_figure(args.runs, args.out, args.by, args.labels, args.seed, args.perplexity)
    except (FileNotFoundError, ValueError, KeyError) as error:
        sys.exit(f"error: {error}")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
