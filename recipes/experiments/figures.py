#!/usr/bin/env python3
r"""The paper's figures that combine finished experiments (a tool: it trains nothing).

    # Fig. 12: fold-averaged confusion matrices of several experiments side by side
    python recipes/experiments/figures.py confusion results/full results/wo_gan results/speech_only \
        results/text_only --out fig12.png [--seed 1986]
    # Fig. 6: the class counts of the corpora, from their preparation summaries
    python recipes/experiments/figures.py classes results/prepared/<key>/summary.json \
        results/prepared/<meld key>/summary.json --out fig6.png
    # Figs. 9 and 10: t-SNE of the test representations of runs tested with --save_embeddings=True
    # (embeddings.npz beside predictions.csv)
    python recipes/experiments/figures.py tsne results/speech_only/fold3/seed1986 \
        results/text_only/fold3/seed1986 results/wo_lcl/fold3/seed1986 results/full/fold3/seed1986 \
        --labels "speech only" "text only" "w/o LCL" M4SER --out fig9.png   # H_ap by emotion
    python recipes/experiments/figures.py tsne results/wo_gan/fold3/seed1986 \
        results/full/fold3/seed1986 --by modality --labels "w/o GAN" M4SER --out fig10.png
                                                              # H_S^spe, H_T^spe, H_inv
    # Fig. 11 and Table VII: representation weights of two utterances under a run on ASR text
    # and one on human text (Table VI's gt_text row), and their DTW consistency
    python recipes/experiments/figures.py weights results/full/fold3/seed1986 \
        results/gt_text/fold3/seed1986 --ids Ses03F_impro01_F000 Ses03M_script02_2_M010 \
        --labels ASR GT --out fig11.png

Each t-SNE panel's silhouette score (scikit-learn, on the representation itself, by emotion or by
representation type) is written to ``<out>.json``, so "better clusters" is a number; the
embedding is deterministic for a ``--seed``. ``weights`` writes ``<out>.md`` (Table VII) and
``<out>.json`` (every curve) beside the figure; its reading of the paper's undefined
"representation weights" and DTW is :mod:`m4ser_lobes.experiment.weights`'s.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def confusion_figure(experiments, out, seed=None, labels=None):
    """Fig. 12: one row-normalised, fold-averaged confusion matrix per experiment folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    from m4ser_lobes.experiment import report

    fig, axes = plt.subplots(1, len(experiments), figsize=(3.6 * len(experiments), 3.6),
                             squeeze=False)
    summary = {}
    for i, (ax, folder) in enumerate(zip(axes[0], experiments)):
        results = report.collect_fold_results(report.find_fold_dirs(folder, seed=seed))
        classes = report.class_order(results)
        matrices = [report.reorder_confusion(r.metrics["confusion"], r.classes, classes)
                    for r in results.values()]
        average = report.average_confusion(matrices)
        name = labels[i] if labels else Path(folder).name
        ConfusionMatrixDisplay(average, display_labels=classes).plot(
            ax=ax, cmap="Blues", values_format=".1f", colorbar=False)
        ax.set_title(f"{name} (folds {', '.join(map(str, sorted(results)))})", fontsize=9)
        summary[name] = {"classes": classes, "folds": sorted(results), "matrix": average.tolist()}
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    Path(out).with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def class_counts(summary_file):
    """Class -> utterances of a preparation summary (IEMOCAP: the corpus; MELD: all splits)."""
    summary = json.loads(Path(summary_file).read_text(encoding="utf-8"))
    per_class = summary["per_class"]
    if all(isinstance(v, dict) for v in per_class.values()):  # MELD: per split
        total = {}
        for split in per_class.values():
            for name, n in split.items():
                total[name] = total.get(name, 0) + n
        return dict(sorted(total.items(), key=lambda kv: -kv[1]))
    return dict(sorted(per_class.items(), key=lambda kv: -kv[1]))


def classes_figure(summary_files, out, labels=None):
    """Fig. 6: a bar chart of the class counts of each corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = {labels[i] if labels else Path(f).parent.name: class_counts(f)
              for i, f in enumerate(summary_files)}
    fig, axes = plt.subplots(1, len(counts), figsize=(4.2 * len(counts), 3.2), squeeze=False)
    for ax, (name, per_class) in zip(axes[0], counts.items()):
        bars = ax.bar(list(per_class), list(per_class.values()), color="tab:blue")
        ax.bar_label(bars, fontsize=7)
        ax.set_title(f"{name} ({sum(per_class.values())} utterances)", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes[0][0].set_ylabel("utterances")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return counts


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

    from m4ser_lobes.experiment.weights import experiment_of

    fig, axes = plt.subplots(1, len(folders), figsize=(3.6 * len(folders), 3.6), squeeze=False)
    scores = {}
    for i, (ax, folder) in enumerate(zip(axes[0], folders)):
        points, groups = panel_data(folder, by)
        name = labels[i] if labels else experiment_of(folder)
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
    sub = parser.add_subparsers(dest="figure", required=True)
    confusion = sub.add_parser("confusion", help="Fig. 12: confusion matrices side by side")
    confusion.add_argument("experiments", nargs="+", type=Path,
                           help="experiment folders <results_folder>/<experiment_name>")
    confusion.add_argument("--seed", type=int, default=None,
                           help="the seed folder to read when a fold holds several")
    confusion.add_argument("--labels", nargs="+", default=None, help="panel titles")
    confusion.add_argument("--out", type=Path, default=Path("fig12_confusion.png"),
                           help="PNG to write (a JSON of the matrices beside it)")
    classes = sub.add_parser("classes", help="Fig. 6: class counts from preparation summaries")
    classes.add_argument("summaries", nargs="+", type=Path, help="summary.json of each preparation")
    classes.add_argument("--labels", nargs="+", default=None, help="panel titles")
    classes.add_argument("--out", type=Path, default=Path("fig6_classes.png"), help="PNG to write")
    tsne = sub.add_parser("tsne", help="Figs. 9, 10: t-SNE of embeddings.npz of finished runs")
    tsne.add_argument("runs", nargs="+", type=Path, help="run output folders with embeddings.npz")
    tsne.add_argument("--by", choices=("emotion", "modality"), default="emotion",
                      help="Fig. 9: H_ap by emotion; Fig. 10: the three representations")
    tsne.add_argument("--labels", nargs="+", default=None, help="panel titles")
    tsne.add_argument("--seed", type=int, default=0, help="t-SNE seed (the figure is deterministic)")
    tsne.add_argument("--perplexity", type=float, default=30.0,
                      help="t-SNE perplexity (capped for small test sets)")
    tsne.add_argument("--out", type=Path, default=Path("tsne.png"), help="PNG (JSON beside it)")
    weights = sub.add_parser("weights", help="Fig. 11, Table VII: representation weights, DTW")
    weights.add_argument("runs", nargs="+", type=Path,
                         help="finished run folders with both modalities (ASR text, GT text)")
    weights.add_argument("--ids", nargs="+", required=True,
                         help="utterance ids of the runs' corpus, one example each")
    weights.add_argument("--labels", nargs="+", default=None, help="run names (ASR GT)")
    weights.add_argument("--trust-code", action="store_true",
                         help="skip the check of the runs' training YAMLs (yours only)")
    weights.add_argument("--out", type=Path, default=Path("fig11_weights.png"),
                         help="PNG (Table VII as .md and the curves as .json beside it)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    items, one = {"confusion": ("experiments", "experiment"), "classes": ("summaries", "summary"),
                  "tsne": ("runs", "run"), "weights": ("runs", "run")}[args.figure]
    given = getattr(args, items)
    if args.labels and len(args.labels) != len(given):
        sys.exit(f"error: --labels gives {len(args.labels)} names for {len(given)} {items}: "
                 f"give one per {one}, in the same order")
    try:
        if args.figure == "confusion":
            confusion_figure(args.experiments, args.out, args.seed, args.labels)
        elif args.figure == "classes":
            classes_figure(args.summaries, args.out, args.labels)
        elif args.figure == "tsne":
            tsne_figure(args.runs, args.out, args.by, args.labels, args.seed, args.perplexity)
        else:
            from m4ser_lobes.experiment.weights import write_weights

            write_weights(args.runs, args.ids, args.out, args.labels, args.trust_code)
    except (FileNotFoundError, ValueError, KeyError) as error:
        sys.exit(f"error: {error}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
