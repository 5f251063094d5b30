"""Fig. 11 and Table VII: where trained runs put their weight along an utterance, and how
consistent their speech and text sides are (dynamic time warping).

The paper "accumulates the hidden features of H_S, H_T, Ĥ_S^spe and Ĥ_T^spe into one dimension"
and measures with DTW that ASR text is more consistent with the speech than human (GT) text, but
defines neither. The reading implemented here (docs/design.md §9):

* **representation weight** of a step: the L2 norm over the feature axis of the representation
  at that step, min-max normalised over the utterance's steps (0 = weakest, 1 = strongest);
  the text side leaves out [CLS] and [SEP], as the model's pooling does.
* **single-modal space**: H_S (one step per speech frame) and H_T (one per word piece), the
  encoders' outputs. **Cross-modal space**: Ĥ_S^spe (Eq. 8, the text as query attending to the
  speech: one step per word piece) and H_T^spe (Eq. 10, the speech as query attending to the
  text: one step per frame). The paper's equations define no "Ĥ_T^spe"; these are the two blocks
  that attend from one modality's time axis to the other's.
* **DTW** (Table VII): between the cross-modal text curve (Ĥ_S^spe) and the cross-modal speech
  curve (H_T^spe), cost ``|a_i - b_j|``, steps (1, 0), (0, 1), (1, 1) (ties: the diagonal), the
  accumulated cost of the optimal path divided by its length: the mean gap between aligned
  steps, 0 (the same shape) to 1. The single-modal pair (H_T against H_S) is given beside it.
  The paper's values (0.52 to 1.89) exceed 1, so its normalisation differs: compare a run's ASR
  and GT figures with each other, not with the paper's.

Each run is loaded as :mod:`m4ser_lobes.inference.export` loads one (its training YAML checked
before anything is built, the checkpoint the recipe tested, ``weights_only``), and each
utterance goes through the run's own data pipeline (its ``text_source``: the ASR hypothesis or
the human transcript; no crop) alone, in evaluation mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from m4ser_lobes.data.audio import SAMPLE_RATE

#: (key, modality, space, paper symbol) of the four strips of a panel, in drawing order.
STRIPS = (("speech_single", "speech", "single-modal", "H_S"),
          ("text_single", "text", "single-modal", "H_T"),
          ("speech_cross", "speech", "cross-modal", "H_T^spe"),
          ("text_cross", "text", "cross-modal", "Ĥ_S^spe"))
#: Table VII as printed: example -> (ASR, GT) DTW.
PAPER_TABLE_VII = {"(a)": (0.52, 1.89), "(b)": (1.46, 1.57)}


def step_weights(states):
    """``[T, D]`` representation -> ``[T]`` weights: the per-step L2 norm, min-max normalised.

    Example
    -------
    >>> step_weights(torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 3.0]])).tolist()
    [1.0, 0.0, 0.5]
    >>> step_weights(torch.ones(3, 2)).tolist()  # no step stands out
    [0.0, 0.0, 0.0]
    """
    norms = torch.linalg.vector_norm(states.double(), dim=-1).cpu().numpy()
    span = norms.max() - norms.min()
    return (norms - norms.min()) / span if span > 0 else np.zeros_like(norms)


def dtw_distance(a, b):
    """DTW between two curves (cost ``|a_i - b_j|``), normalised by the optimal path's length.

    Example
    -------
    >>> dtw_distance([0, 1, 1], [0, 0, 1, 1, 1])  # the same shape at another pace
    0.0
    >>> dtw_distance([0, 1], [1, 0])
    1.0
    >>> round(dtw_distance([0, 0.5, 1], [0, 1]), 3)
    0.167
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a) or not len(b):
        raise ValueError("DTW needs two non-empty curves")
    cost = np.abs(a[:, None] - b[None, :])
    total = np.full((len(a) + 1, len(b) + 1), np.inf)
    steps = np.zeros_like(total)
    total[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            # the diagonal first: on a tie, the shorter path
            moves = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            best = min(moves, key=lambda m: total[m])
            total[i, j] = cost[i - 1, j - 1] + total[best]
            steps[i, j] = steps[best] + 1
    return float(total[-1, -1] / steps[-1, -1])


class TrainedRun:
    """A finished run, loaded for analysis: its model (evaluation mode), data and settings."""

    def __init__(self, folder, trust_code=False):
        from m4ser_lobes.inference.export import load_trained_model, locate_run

        self.folder = Path(folder)
        self.located = locate_run(self.folder)  # the checkpoint the recipe tested
        self.hparams, self.model = load_trained_model(self.located, trust_code=trust_code)
        fusion = self.model.fusion
        if fusion.modalities != "both" or not hasattr(fusion, "cme_text_to_speech"):
            raise ValueError(
                f"{self.folder}: its model has no cross-modal blocks (modalities="
                f"{fusion.modalities}, use_msr/use_mir off): Figs. 11 and Table VII need runs "
                "that fuse speech and text (e.g. the full model and the gt_text row)")
        self.text_source = self.hparams["text_source"]
        self.tokenizer = self.model.text_encoder.tokenizer
        self._datasets = {}
        self.classes = None  # the run's class names, once its label encoder is loaded

    def manifests(self):
        return {split: self.hparams[f"{split}_annotation"] for split in ("train", "valid", "test")}

    def split_of(self, utterance):
        """The split whose manifest holds ``utterance`` (test first)."""
        test_ids = []
        for split in ("test", "valid", "train"):
            with open(self.manifests()[split], encoding="utf-8") as fin:
                ids = json.load(fin)
            if utterance in ids:
                return split
            test_ids = test_ids or sorted(ids)
        raise ValueError(f"utterance {utterance!r} is in none of {self.folder}'s manifests "
                         f"({', '.join(self.manifests().values())}): give an id of its corpus, "
                         f"e.g. of its test split: {' '.join(test_ids[:2])}")

    def item(self, utterance):
        """The run's data pipeline on one utterance: a batch of one (whole audio, no crop)."""
        from speechbrain.dataio.batch import PaddedBatch

        from m4ser_lobes.data.dataio import dataio_prep

        split = self.split_of(utterance)
        if split not in self._datasets:
            manifests = self.manifests()
            self._datasets[split], encoder = dataio_prep(
                {"train": manifests["train"], "analysed": manifests[split]}, self.tokenizer,
                label_encoder_path=str(self.located.label_encoder),
                text_source=self.text_source, max_audio_seconds=None,
                max_tokens=self.hparams["max_tokens"], with_corrections=False,
                keep_punctuation=self.hparams["keep_punctuation"])
            self.classes = [encoder.decode_ndim(i) for i in range(len(encoder))]
        dataset = self._datasets[split]["analysed"]
        with dataset.output_keys_as(["id", "sig", "emo_encoded", "input_ids"]):
            return split, PaddedBatch([dataset[dataset.data_ids.index(utterance)]])

    @torch.no_grad()
    def representations(self, utterance):
        """One utterance's H_S, H_T, Ĥ_S^spe, H_T^spe (each ``[T, D]``), word pieces and scores."""
        split, batch = self.item(utterance)
        model = self.model
        captured = {}
        hooks = [
            model.speech_encoder.register_forward_hook(
                lambda _m, _i, out: captured.__setitem__("speech_single", out[0][0])),
            model.text_encoder.register_forward_hook(
                lambda _m, _i, out: captured.__setitem__("text_single", out[0])),
            model.fusion.cme_text_to_speech.register_forward_hook(
                lambda _m, _i, out: captured.__setitem__("text_cross", out[0])),
        ]
        try:
            wavs, wav_lens = batch.sig
            input_ids, _ = batch.input_ids
            pad = torch.zeros_like(input_ids, dtype=torch.bool)  # one utterance: no padding
            outputs = model(wavs, wav_lens, input_ids, pad)
        finally:
            for hook in hooks:
                hook.remove()
        captured["speech_cross"] = outputs.text_specific[0]
        words = ~model.text_pool_mask(input_ids, pad)[0]  # [CLS]/[SEP] left out
        for key in ("text_single", "text_cross"):
            captured[key] = captured[key][words]
        tokens = self.tokenizer.convert_ids_to_tokens(input_ids[0][words].tolist())
        return {"split": split, "tokens": tokens, "seconds": wavs.shape[1] / SAMPLE_RATE,
                "states": captured, "predicted": self.classes[int(outputs.logits[0].argmax())],
                "true": self.classes[int(batch.emo_encoded.data.view(-1)[0])]}


def utterance_weights(run, utterance):
    """The four weight curves of one utterance under one run, and their DTW (JSON-safe)."""
    found = run.representations(utterance)
    curves = {key: step_weights(found["states"][key]).tolist() for key, *_ in STRIPS}
    if not curves["text_single"]:
        raise ValueError(f"{utterance}: its {run.text_source} text is empty under {run.folder}; "
                         "choose an utterance with words")
    return {
        "split": found["split"], "text_source": run.text_source, "tokens": found["tokens"],
        "seconds": found["seconds"], "curves": curves,
        "true": found["true"], "predicted": found["predicted"],
        "dtw_cross": dtw_distance(curves["text_cross"], curves["speech_cross"]),
        "dtw_single": dtw_distance(curves["text_single"], curves["speech_single"]),
    }


def experiment_of(folder):
    """The experiment a run folder belongs to: the folder above ``[fold<k>/]seed<s>``.

    Example
    -------
    >>> experiment_of("results/full/fold3/seed1986"), experiment_of("results/wo_gan/seed3")
    ('full', 'wo_gan')
    """
    parts = Path(folder).resolve().parts
    up = 2 if len(parts) > 1 and parts[-2].startswith("fold") else 1
    return parts[-1 - up] if len(parts) > up else str(folder)


def weights_analysis(folders, utterances, labels=None, trust_code=False):
    """Fig. 11's data and Table VII: ``{"runs", "examples": {example: {label: weights}}}``."""
    labels = list(labels or [experiment_of(f) for f in folders])
    if len(labels) != len(folders):
        raise ValueError(f"{len(labels)} labels for {len(folders)} runs: give one per run")
    runs = [TrainedRun(folder, trust_code=trust_code) for folder in folders]
    examples = {}
    for k, utterance in enumerate(utterances):
        example = f"({chr(ord('a') + k)})"
        examples[example] = {"id": utterance, **{
            label: utterance_weights(run, utterance) for label, run in zip(labels, runs)}}
    return {"runs": {label: {"folder": str(run.folder), "checkpoint": str(run.located.checkpoint),
                             "text_source": run.text_source} for label, run in zip(labels, runs)},
            "labels": labels, "examples": examples,
            "reading": "weights: per-step L2 norm, min-max normalised per utterance; DTW: "
                       "|a - b| cost, accumulated cost / optimal path length, between the "
                       "cross-modal text (Ĥ_S^spe) and speech (H_T^spe) curves "
                       "(docs/design.md §9)"}


def table_vii_markdown(analysis):
    """Table VII: DTW per example and run (ours), the paper's beside when the runs are two."""
    labels = analysis["labels"]
    examples = analysis["examples"]
    head = ["metric", *(f"{e} {label}" for e in examples for label in labels)]
    rows = [["DTW ↓ cross-modal (Table VII)",
             *(f"{examples[e][label]['dtw_cross']:.3f}" for e in examples for label in labels)],
            ["DTW single-modal (H_T vs H_S)",
             *(f"{examples[e][label]['dtw_single']:.3f}" for e in examples for label in labels)]]
    if len(labels) == 2:
        rows.append(["paper (ASR, GT)", *(f"{v:.2f}" if v is not None else "—"
                                          for e in examples
                                          for v in PAPER_TABLE_VII.get(e, (None, None)))])
    ids = "; ".join(f"{e} {examples[e]['id']}" for e in examples)
    title = (f"Table VII: consistency of the cross-modal speech and text representations ({ids}). "
             f"{analysis['reading']}; the paper's normalisation is undefined (its values exceed 1).")
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def weights_figure(analysis, out):
    """Fig. 11: per example (column) and run, four strips (speech/text × single/cross-modal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, examples = analysis["labels"], analysis["examples"]
    n_rows = len(labels) * len(STRIPS)
    fig, axes = plt.subplots(n_rows, len(examples), squeeze=False,
                             figsize=(6.0 * len(examples), 0.8 * n_rows + 0.4 * len(labels)))
    for column, (example, data) in enumerate(examples.items()):
        for r, label in enumerate(labels):
            weights = data[label]
            for s, (key, modality, space, symbol) in enumerate(STRIPS):
                ax = axes[r * len(STRIPS) + s][column]
                curve = np.asarray(weights["curves"][key])[None, :]
                if modality == "speech":
                    ax.imshow(curve, aspect="auto", cmap="Blues", vmin=0, vmax=1,
                              extent=(0, weights["seconds"], 0, 1))
                    ax.set_xlabel("s", fontsize=6, labelpad=0)
                else:
                    ax.imshow(curve, aspect="auto", cmap="Blues", vmin=0, vmax=1)
                    ax.set_xticks(range(len(weights["tokens"])))
                    ax.set_xticklabels(weights["tokens"], rotation=60, fontsize=6)
                ax.set_yticks([])
                ax.tick_params(axis="x", labelsize=6, length=2)
                ax.set_ylabel(f"{symbol}\n{modality}\n{space}", rotation=0, ha="right",
                              va="center", fontsize=7)
                if s == 0:
                    ax.set_title(f"{example} {data['id']} — {label} ({weights['text_source']}): "
                                 f"true {weights['true']}, predicted {weights['predicted']}, "
                                 f"DTW {weights['dtw_cross']:.2f}", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def write_weights(folders, utterances, out, labels=None, trust_code=False):
    """Fig. 11 (``out``), Table VII (``<out>.md``) and the data (``<out>.json``); returns the data."""
    from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text

    analysis = weights_analysis(folders, utterances, labels, trust_code)
    out = Path(out)
    weights_figure(analysis, out)
    atomic_write_json(out.with_suffix(".json"), analysis)
    atomic_write_text(out.with_suffix(".md"), table_vii_markdown(analysis))
    return analysis
