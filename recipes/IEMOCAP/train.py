#!/usr/bin/env python3
r"""Train and test M4SER on one IEMOCAP fold (leave-one-session-out).

    python recipes/IEMOCAP/train.py hparams/m4ser.yaml \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=hyps.json --fold=1

Rerunning the same command resumes from the last (intra-epoch) checkpoint. Every Table IV
ablation is a command-line override (README.md); ``recipes/IEMOCAP/cross_validate.py`` runs the
five folds. Multi-GPU: ``torchrun --standalone --nproc_per_node=N recipes/IEMOCAP/train.py ...``.

Before anything is built or prepared, every value of the YAML (with the overrides) is checked
(``m4ser_lobes.experiment.config``: ``--use_gan=no`` or ``--modalities=speech`` with GAN on are refused in
one line), and the run's settings are compared with those recorded in ``output_folder``: a rerun
with other settings and the same ``experiment_name`` is refused (it would re-test the old
checkpoint), unless ``--overwrite=True`` moves the old run aside. Same settings resume.

Outputs in ``output_folder``: ``train_log.txt``, ``log.txt``, ``hyperparams.yaml``,
``configuration.json`` (which parts of M4SER run), ``fingerprint.json`` (the settings that
change results), ``history.json`` (per-epoch loss terms and validation metrics),
``predictions.csv``, ``test_metrics.json``, ``confusion_matrix.png``, ``save/`` (checkpoints,
``label_encoder.txt``). Manifests and ``label_statistics.json`` are in ``prepare_folder``.
"""

import logging
import os
import sys
import time
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from m4ser_lobes.data import batching

from m4ser_lobes.experiment import config
from m4ser_lobes.brain import M4SERBrain
from m4ser_lobes.data.dataio import dataio_prep
from m4ser_lobes.utils.fileio import atomic_write_json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iemocap_prepare import HPARAM_RULES, prepare_iemocap  # noqa: E402

logger = logging.getLogger(__name__)

#: Every rule for ``hparams/m4ser.yaml``: the model's and IEMOCAP's.
RULES = {**config.SCHEMA, **HPARAM_RULES}


def check_configuration(hparams_file, overrides, run_opts=None):
    """Read and validate the YAML values (nothing built); returns ``(values, settings)``.

    Raises :class:`m4ser_lobes.experiment.config.ConfigError` (one line) on a bad value or combination.
    """
    values = config.load_values(hparams_file, overrides)
    values = config.validate(config.effective_values(values, run_opts), RULES)
    return values, config.run_settings(values, RULES)


def replace_run(output_folder, conflict):
    """``--overwrite=True``: move the old run aside (a hidden sibling folder), never delete it."""
    folder = Path(output_folder)
    target = folder.with_name(f".{folder.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(folder, target)
    logger.warning("overwrite=True: %s; moved it to %s (delete it when no longer needed)",
                   conflict, target)


def record_run(output_folder, configuration, settings):
    """``configuration.json`` and ``fingerprint.json`` in the output folder (atomic writes)."""
    atomic_write_json(Path(output_folder) / config.CONFIGURATION_FILE, configuration)
    config.record_fingerprint(output_folder, settings)


def tokenizer_of(hparams):
    """The text encoder's tokenizer; a speech-only run loads the tokenizer alone (no weights):
    the data pipeline still turns the text into ``input_ids``, which the model ignores."""
    if hparams["text_encoder"] is not None:
        return hparams["text_encoder"].tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hparams["text_encoder_source"],
                                         cache_dir=hparams["pretrained_cache"])


def manifests_of(hparams):
    """Split name -> manifest path."""
    return {
        "train": hparams["train_annotation"],
        "valid": hparams["valid_annotation"],
        "test": hparams["test_annotation"],
    }


def write_label_statistics(hparams, tokenizer):
    """Share of KEEP/DELETE/CHANGE tokens, truncated AEC targets and WER, next to the manifests."""
    from m4ser_lobes.text.alignment import manifest_label_statistics

    out = os.path.join(hparams["prepare_folder"], f"fold{hparams['fold']}", "label_statistics.json")
    if hparams["text_source"] == "hypothesis" and not os.path.exists(out):
        manifest_label_statistics(
            [hparams["train_annotation"]],
            tokenizer,
            max_len=hparams["aec_max_len"],
            output_path=out,
        )


def main(argv):
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # Before anything is built (encoders load weights) or prepared: values, then the folder.
    values, settings = check_configuration(hparams_file, overrides, run_opts)
    conflict = config.rerun_conflict(values["output_folder"], settings)
    if conflict is not None and not values["overwrite"]:
        raise config.rerun_error(conflict)
    sb.utils.distributed.ddp_init_group(run_opts)
    if conflict is not None:
        sb.utils.distributed.run_on_main(replace_run, args=[values["output_folder"], conflict])
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    configuration = config.describe(values, settings)
    logger.info("M4SER configuration: %s (settings %s)", configuration["summary"],
                configuration["settings_digest"])
    sb.utils.distributed.run_on_main(
        record_run, args=[hparams["output_folder"], configuration, settings])
    logger.info("manifests: %s", hparams["prepare_folder"])
    if not hparams["skip_prep"]:
        sb.utils.distributed.run_on_main(
            prepare_iemocap,
            kwargs={
                "data_folder": hparams["data_folder"],
                "save_folder": hparams["prepare_folder"],
                "hypotheses": hparams["hypotheses_file"],
                "validation": hparams["validation"],
                "valid_ratio": hparams["valid_ratio"],
                "seed": hparams["seed"],
                "expected_utterances": hparams["expected_utterances"],
            },
        )
    tokenizer = tokenizer_of(hparams)
    sb.utils.distributed.run_on_main(write_label_statistics, args=[hparams, tokenizer])
    datasets, label_encoder = dataio_prep(
        manifests_of(hparams),
        tokenizer,
        label_encoder_path=os.path.join(hparams["save_folder"], "label_encoder.txt"),
        text_source=hparams["text_source"],
        # Table IV C(1): without the detector, AEC corrects whole utterances from scratch.
        correction_mode="selective" if hparams["use_aed"] else "full",
        max_audio_seconds=hparams["max_audio_seconds"],
        max_tokens=hparams["max_tokens"],
        with_corrections=hparams["use_aed"] or hparams["use_aec"],
    )
    label_encoder.expect_len(hparams["num_emotions"])
    hparams["label_encoder"] = label_encoder

    brain = M4SERBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    train_loader_kwargs = batching.train_loader_kwargs(
        datasets["train"],
        hparams["batch_size"],
        bucketing=hparams["bucketing"],
        max_batch_seconds=hparams["max_batch_seconds"],
        num_buckets=hparams["num_buckets"],
        seed=hparams["seed"],
        num_workers=hparams["num_workers"],
        max_audio_seconds=hparams["max_audio_seconds"],
    )
    # The Brain calls set_epoch only on its train_sampler (one order per seed and epoch, exact
    # intra-epoch resume); under DDP make_dataloader replaces it with its wrapper.
    brain.train_sampler = train_loader_kwargs.get("batch_sampler")

    def eval_loader_kwargs(split):
        return batching.eval_loader_kwargs(
            datasets[split],
            hparams["test_dataloader_options"]["batch_size"],
            sort=hparams["bucketing"],
            num_workers=hparams["num_workers"],
        )

    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=train_loader_kwargs,
        valid_loader_kwargs=eval_loader_kwargs("valid"),
    )
    brain.evaluate(datasets["test"], max_key="UA", test_loader_kwargs=eval_loader_kwargs("test"))
    return brain


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except config.ConfigError as error:
        sys.exit(f"error: {error}")
