"""Export a trained M4SER checkpoint as a self-contained inference folder (local or on the Hub).

    m4ser-export --checkpoint results/m4ser/fold1/seed1986 --out exported/m4ser-iemocap-fold1 \\
        [--asr-model openai/whisper-medium.en] [--asr-backend faster-whisper] [--overwrite]

(or ``python -m m4ser_lobes.inference.export ...``).

``--checkpoint`` is a training output folder (the checkpoint the recipe tested is taken: the best
by the run's ``selection_metric``, UA for IEMOCAP, W-F1 for MELD), its ``save/`` folder, or one
``save/CKPT+...`` folder. The training YAML
(``--hparams``, default ``<output_folder>/hyperparams.yaml``) rebuilds the trained model, so the
encoders' original sources must be reachable (cached) where this runs. The folder written::

    hyperparams.yaml      the packaged m4ser_lobes/inference/inference.yaml with the trained sizes,
                          window and ASR settings in place (:mod:`m4ser_lobes.inference.hparams`)
    model.ckpt            weights of the inference model except the pretrained backbones
    speech_encoder/       the fine-tuned speech backbone: save_pretrained + feature extractor config
    text_encoder/         the fine-tuned text backbone: save_pretrained + tokenizer
    label_encoder.txt     class names
    corrector.ckpt        AED head + AEC decoder (if trained; loaded only to correct transcripts)
    asr/                  the ASR model, only when --asr-model is a local folder
    test_metrics.json     the training run's test metrics (when present)
    export_info.json      checkpoint, classes, ASR model and backend, training data (as JSON)
    README.md             model card (template m4ser_lobes/inference/model_card.md, filled by
                          :mod:`m4ser_lobes.inference.card`): data, fold, metrics, use, sharing

What the exported files say about the training data (corpus, test fold or split, text source and
its ASR model, utterance counts read from the training manifests) and about the encoders and ASR
model never includes a local path: a local folder is named by its last component only
(:func:`m4ser_lobes.inference.card.public_name`), so the folder can be published as is.

The training YAML is data too: before HyperPyYAML rebuilds the model from it, its tags must be
those of the project's training YAMLs (:func:`m4ser_lobes.inference.safety.check_training_yaml`:
the ``m4ser_lobes``, ``speechbrain`` and ``torch.optim`` objects of ``hparams/*.yaml``); anything
else is refused with one line and nothing runs (``--trust-code`` skips the check, for a YAML you
wrote yourself). Checkpoints are read with ``torch.load(..., weights_only=True)``.

The modality discriminator and the optimisers are not exported. The folder is written under a
hidden name beside ``--out``, loaded back with
:class:`m4ser_lobes.inference.classifier.M4SERClassifier` (its YAML checked like any export's) and
compared with the trained model (identical weights, identical logits), then published
(:func:`m4ser_lobes.inference.folder.publish`): an existing ``--out`` is replaced only with
``--overwrite``, and it is never left missing. What a killed export left beside ``--out`` is
cleaned up by the next export of the same destination
(:func:`m4ser_lobes.inference.folder.clean_leftovers`).

Sharing on the Hugging Face Hub (the exported folder is the repo root)::

    from huggingface_hub import HfApi
    HfApi().create_repo("org/m4ser-iemocap-fold1", repo_type="model", exist_ok=True)
    HfApi().upload_folder(folder_path="exported/m4ser-iemocap-fold1",
                          repo_id="org/m4ser-iemocap-fold1", repo_type="model")

    classifier = M4SERClassifier.from_hparams(source="org/m4ser-iemocap-fold1")
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import torch

from m4ser_lobes.inference.card import model_card, public_name, training_data
from m4ser_lobes.inference.folder import (
    BACKBONE_PREFIXES,
    CORRECTOR_FILE,
    clean_leftovers,
    make_shareable,
    publish,
    staging_folder,
)
from m4ser_lobes.inference.hparams import BUNDLED_ASR, export_overrides, write_inference_yaml
from m4ser_lobes.inference.safety import (
    UnsafeYAMLError,
    check_training_yaml,
    load_checked,
    plain_values,
)
from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

DEFAULT_ASR_MODEL = "openai/whisper-medium.en"
CORRECTOR_PREFIXES = ("aed_head.", "aec_decoder.")

# --------------------------------------------------------------------------------------------
# Finding what to export
# --------------------------------------------------------------------------------------------


class TrainingRun:
    """The files of one training run that an export needs (see :func:`locate_run`)."""

    def __init__(self, checkpoint, save_folder, hparams_file, label_encoder, best):
        self.checkpoint = Path(checkpoint)  # save/CKPT+...
        self.save_folder = Path(save_folder)
        self.hparams_file = Path(hparams_file)
        self.label_encoder = Path(label_encoder)
        self.is_best = best  # the best by the run's selection_metric (the one the recipe tested)
        self.output_folder = self.save_folder.parent

    @property
    def meta(self):
        """The checkpoint's ``CKPT.yaml`` (validation metrics)."""
        import yaml

        with open(self.checkpoint / "CKPT.yaml", encoding="utf-8") as fin:
            return yaml.safe_load(fin) or {}


def best_checkpoint(save_folder, key="UA"):
    """The checkpoint with the highest ``key`` (the recipe's ``max_key``), else the latest one.

    Example
    -------
    >>> save = getfixture("tmp_path")
    >>> for name, ua in (("CKPT+1", 40.0), ("CKPT+2", 55.0), ("CKPT+3", None)):
    ...     (save / name).mkdir()
    ...     meta = "end-of-epoch: true\\nunixtime: %d\\n" % int(name[-1])
    ...     _ = (save / name / "CKPT.yaml").write_text(meta + (f"UA: {ua}\\n" if ua else ""))
    >>> best_checkpoint(save).name
    'CKPT+2'
    """
    from m4ser_lobes.checkpoints import AtomicCheckpointer

    checkpointer = AtomicCheckpointer(save_folder)  # incomplete checkpoints skipped
    found = checkpointer.find_checkpoint(max_key=key)
    if found is None:
        found = checkpointer.find_checkpoint()
        if found is None:
            raise FileNotFoundError(f"{save_folder}: no CKPT+* checkpoint folder")
        logger.warning(
            "no checkpoint of %s records %s; taking the latest, %s",
            save_folder,
            key,
            found.path.name,
        )
    return Path(found.path)


def selection_key(hparams_file):
    """The validation metric the recipe kept its test checkpoint by (``selection_metric``: UA for
    IEMOCAP, W-F1 for MELD); UA for runs recorded before that key existed. Only plain values are
    read (:func:`m4ser_lobes.inference.safety.plain_values`): nothing of the YAML runs."""
    try:
        values = plain_values(Path(hparams_file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "UA"
    return values.get("selection_metric") or "UA"


def locate_run(checkpoint, hparams_file=None, label_encoder=None):
    """Resolve ``--checkpoint`` (output, save or CKPT folder) into a :class:`TrainingRun`.

    Without a CKPT folder, the checkpoint the recipe tested is taken: the best by the run's own
    ``selection_metric``.
    """
    checkpoint = Path(checkpoint)
    if (checkpoint / "CKPT.yaml").is_file():
        save_folder = checkpoint.parent
    else:
        save_folder = checkpoint / "save" if (checkpoint / "save").is_dir() else checkpoint
        if not save_folder.is_dir():
            raise FileNotFoundError(
                f"{checkpoint}: not a training output folder, save folder or CKPT+* folder"
            )
    hparams_file = Path(hparams_file or save_folder.parent / "hyperparams.yaml")
    key = selection_key(hparams_file)
    best_found = best_checkpoint(save_folder, key=key)
    if not (checkpoint / "CKPT.yaml").is_file():
        checkpoint = best_found
    best = checkpoint.resolve() == best_found.resolve()
    label_encoder = Path(label_encoder or save_folder / "label_encoder.txt")
    for path, flag in (
        (hparams_file, "--hparams"),
        (label_encoder, "--label-encoder"),
        (checkpoint / "model.ckpt", "--checkpoint"),
    ):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; pass its location with {flag}")
    return TrainingRun(checkpoint, save_folder, hparams_file, label_encoder, best)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def load_trained_model(run, trust_code=False):
    """Rebuild the trained M4SER from the training YAML and load the checkpoint (strict).

    The YAML is checked first (:func:`m4ser_lobes.inference.safety.check_training_yaml`) unless
    ``trust_code``; the checked text is the one loaded.
    """
    hparams = load_checked(run.hparams_file, check_training_yaml, trust_code=trust_code)
    model = hparams["model"]
    state = torch.load(run.checkpoint / "model.ckpt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return hparams, model.eval()


def split_state_dict(model):
    """(inference weights without the backbones, corrector weights) of a trained M4SER."""
    inference, corrector = {}, {}
    for key, value in model.state_dict().items():
        if key.startswith(CORRECTOR_PREFIXES):
            corrector[key] = value
        elif not key.startswith(BACKBONE_PREFIXES):
            inference[key] = value
    return inference, corrector


def default_asr_model(hparams):
    """The Whisper model of the training hypotheses cache when it names one, else medium.en."""
    cache = hparams.get("hypotheses_file")
    if cache and os.path.isfile(cache):
        with open(cache, encoding="utf-8") as fin:
            name = json.load(fin).get("model")
        if isinstance(name, str) and name.startswith("openai/whisper"):
            return name
    return DEFAULT_ASR_MODEL


def _write_folder(folder, run, hparams, model, args):
    """Write every file of the export into ``folder``; returns the inference YAML overrides."""
    inference_state, corrector_state = split_state_dict(model)
    with_corrector = (
        bool(corrector_state)
        and model.aed_head is not None
        and model.aec_decoder is not None
        and args["corrector"]
    )
    asr_model = args["asr_model"] or default_asr_model(hparams)
    asr_backend = args.get("asr_backend") or "transformers"
    asr_field = asr_model
    if os.path.isdir(asr_model):  # a local ASR model travels with the export
        shutil.copytree(asr_model, folder / "asr")
        asr_field = BUNDLED_ASR
    elif os.path.isabs(asr_model) or asr_model.startswith(("./", "../", "~")):
        raise FileNotFoundError(
            f"--asr-model {asr_model}: no such folder; give a local Whisper folder or a Hub id "
            "such as openai/whisper-medium.en"
        )
    if model.uses_speech:
        encoder = model.speech_encoder
        encoder.model.save_pretrained(folder / "speech_encoder")
        encoder.feature_extractor.save_pretrained(folder / "speech_encoder")
    if model.uses_text:
        encoder = model.text_encoder
        encoder.model.save_pretrained(folder / "text_encoder")
        encoder.tokenizer.save_pretrained(folder / "text_encoder")
    torch.save(inference_state, folder / "model.ckpt")
    if with_corrector:
        torch.save(corrector_state, folder / CORRECTOR_FILE)
    shutil.copyfile(run.label_encoder, folder / "label_encoder.txt")
    values = export_overrides(
        hparams,
        model,
        asr_field,
        args["window_seconds"],
        args["max_windows"],
        args["batch_size"],
        with_corrector,
        asr_backend,
    )
    write_inference_yaml(folder / "hyperparams.yaml", values)
    metrics_file = run.output_folder / "test_metrics.json"
    test_metrics = None
    if metrics_file.is_file() and run.is_best:
        shutil.copyfile(metrics_file, folder / "test_metrics.json")
        with open(metrics_file, encoding="utf-8") as fin:
            test_metrics = json.load(fin)
    from speechbrain.dataio.encoder import CategoricalEncoder

    labels = CategoricalEncoder()
    labels.load(run.label_encoder)
    labels.expect_len(hparams["num_emotions"])
    classes = [labels.decode_ndim(i) for i in range(len(labels))]
    data = training_data(hparams)  # the card's and export_info.json's, computed once
    card = model_card(
        run,
        hparams,
        classes,
        asr_model,
        test_metrics,
        with_corrector,
        args["repo_id"],
        asr_backend,
        data=data,
    )
    atomic_write_text(folder / "README.md", card)
    atomic_write_json(
        folder / "export_info.json",
        {
            "checkpoint": run.checkpoint.name,
            "best_checkpoint": run.is_best,
            "classes": classes,
            "asr_model": "asr" if os.path.isdir(asr_model) else asr_model,
            "asr_model_origin": public_name(asr_model),
            "asr_backend": asr_backend,
            "has_corrector": with_corrector,
            "training_data": data,
        },
    )
    return values


def verify_export(folder, model, atol=1e-5):
    """Load ``folder`` with ``M4SERClassifier`` and compare it with the trained ``model``.

    Checks that every inference parameter (backbones included) is identical, that AED, AEC and
    the discriminator are absent, that ``corrector.ckpt`` holds the trained AED/AEC weights, and
    that a random batch gives the same logits.
    """
    from m4ser_lobes.inference.classifier import M4SERClassifier

    classifier = M4SERClassifier.from_hparams(source=str(folder), run_opts={"device": "cpu"})
    loaded = classifier.model
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(CORRECTOR_PREFIXES)}
    got = loaded.state_dict()
    if sorted(got) != sorted(expected):
        raise RuntimeError(
            f"export check failed: parameter names differ: {sorted(set(got) ^ set(expected))[:5]}"
        )
    different = [k for k in expected if not torch.equal(got[k].cpu(), expected[k].cpu())]
    if different:
        raise RuntimeError(f"export check failed: weights differ for {different[:5]}")
    if classifier.hparams.has_corrector:
        corrector = classifier.load_corrector().state_dict()
        trained = {k: v for k, v in model.state_dict().items() if k.startswith(CORRECTOR_PREFIXES)}
        if sorted(corrector) != sorted(trained) or any(
            not torch.equal(corrector[k].cpu(), trained[k].cpu()) for k in trained
        ):
            raise RuntimeError(
                "export check failed: corrector.ckpt differs from the trained AED/AEC"
            )
    generator = torch.Generator().manual_seed(0)
    wavs = torch.randn(2, 16000, generator=generator)
    wav_lens = torch.tensor([1.0, 0.75])
    ids = pad = None
    if loaded.uses_text:
        ids, pad = classifier.encode_texts(["hello there", "no"])
    with torch.no_grad():
        want = model(wavs, wav_lens, ids, pad).logits
        have = loaded(wavs, wav_lens, ids, pad).logits
    if not torch.allclose(want, have, atol=atol, rtol=0):
        raise RuntimeError(
            f"export check failed: logits differ by {float((want - have).abs().max()):.2e}"
        )


def export_model(
    checkpoint,
    out,
    hparams_file=None,
    label_encoder=None,
    asr_model=None,
    repo_id=None,
    window_seconds=None,
    max_windows=8,
    batch_size=8,
    corrector=True,
    overwrite=False,
    verify=True,
    asr_backend="transformers",
    trust_code=False,
):
    """Export a training run's checkpoint as an inference folder (module docstring).

    Arguments
    ---------
    checkpoint : str or Path
        Training output folder, its ``save/`` folder, or a ``CKPT+...`` folder.
    out : str or Path
        Export folder (must not exist unless ``overwrite``).
    hparams_file, label_encoder : str or Path, optional
        Default ``<output_folder>/hyperparams.yaml`` and ``<save_folder>/label_encoder.txt``.
    asr_model : str, optional
        Whisper id or local folder (copied into the export) for inputs without a transcript;
        default: the model of the training hypotheses cache if it is a Whisper id, else
        ``openai/whisper-medium.en``.
    repo_id : str, optional
        Hub repo id, used in the model card's snippets.
    window_seconds : float, optional
        Long-audio window; default the training ``max_audio_seconds`` (20 s without a crop).
    max_windows, batch_size : int
        Long-audio cap and windows per forward pass.
    corrector : bool
        Export AED + AEC as ``corrector.ckpt`` (when the model has both).
    overwrite : bool
        Replace an existing ``out``.
    verify : bool
        Load the export back and compare it with the trained model before publishing it.
    asr_backend : str
        ``transformers`` or ``faster-whisper`` (then ``asr_model`` is a CTranslate2 folder, a
        faster-whisper size or an ``openai/whisper-*`` id).
    trust_code : bool
        Build the model from the training YAML without checking its tags (a YAML you wrote).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out).resolve()
    clean_leftovers(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite (overwrite=True) to replace it")
    run = locate_run(checkpoint, hparams_file, label_encoder)
    logger.info("Exporting %s (the selected checkpoint: %s) to %s", run.checkpoint, run.is_best, out)
    hparams, model = load_trained_model(run, trust_code)
    tmp = staging_folder(out)
    try:
        _write_folder(
            tmp,
            run,
            hparams,
            model,
            {
                "asr_model": asr_model,
                "repo_id": repo_id,
                "window_seconds": window_seconds,
                "max_windows": max_windows,
                "batch_size": batch_size,
                "corrector": corrector,
                "asr_backend": asr_backend,
            },
        )
        if verify:
            verify_export(tmp, model)
        make_shareable(tmp)
        publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Exported to %s", out)
    return out


def build_parser():
    """The ``m4ser-export`` argument parser."""
    from m4ser_lobes.text.transcribers import BACKENDS
    from m4ser_lobes.utils.cli import command_parser

    parser = command_parser(
        "m4ser-export",
        "m4ser_lobes.inference.export",
        "Export a trained M4SER checkpoint as a self-contained inference folder "
        "(loadable with M4SERClassifier.from_hparams, ready for the Hugging Face Hub).",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="training output folder (its checkpoint selected on selection_metric), its save/ folder, or a CKPT+... folder",
    )
    parser.add_argument("--out", required=True, help="export folder to write")
    parser.add_argument(
        "--hparams", help="training YAML (default: <output_folder>/hyperparams.yaml)"
    )
    parser.add_argument(
        "--label-encoder", help="label encoder file (default: <save_folder>/label_encoder.txt)"
    )
    parser.add_argument(
        "--asr-model",
        help="Whisper id or local folder (copied into the export) for inputs without a "
        f"transcript (default: the training cache's Whisper model, else {DEFAULT_ASR_MODEL})",
    )
    parser.add_argument(
        "--asr-backend",
        choices=BACKENDS,
        default="transformers",
        help="ASR implementation the export uses (faster-whisper: --asr-model is a CTranslate2 "
        "folder, a size such as large-v2, or an openai/whisper-* id)",
    )
    parser.add_argument(
        "--repo-id", help="Hugging Face repo id for the model card's snippets (default: none)"
    )
    parser.add_argument(
        "--window-seconds",
        type=float,
        help="long-audio window (default: the training max_audio_seconds)",
    )
    parser.add_argument("--max-windows", type=int, default=8, help="long-audio window cap")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--no-corrector", action="store_true", help="leave AED/AEC out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-verify", action="store_true", help="skip loading the export back")
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="build the model from a training YAML that names other objects than the project's "
        "training YAMLs (only for a YAML you wrote yourself: HyperPyYAML runs what it names)",
    )
    return parser


def main(argv=None):
    """Command line: ``m4ser-export --checkpoint RUN --out DIR``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from m4ser_lobes.utils.cli import log_to_console

    log_to_console()
    try:
        export_model(
            args.checkpoint,
            args.out,
            args.hparams,
            args.label_encoder,
            args.asr_model,
            args.repo_id,
            args.window_seconds,
            args.max_windows,
            args.batch_size,
            corrector=not args.no_corrector,
            overwrite=args.overwrite,
            verify=not args.no_verify,
            asr_backend=args.asr_backend,
            trust_code=args.trust_code,
        )
    except (FileExistsError, FileNotFoundError, KeyError, UnsafeYAMLError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
