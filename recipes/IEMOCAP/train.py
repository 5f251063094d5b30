#!/usr/bin/env python3
r"""Train and test M4SER on one IEMOCAP fold (leave-one-session-out).

    python recipes/IEMOCAP/train.py hparams/m4ser.yaml \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=hyps.json --fold=1

Rerunning the same command resumes from the last (intra-epoch) checkpoint. Every Table IV
ablation is a command-line override (README.md); ``recipes/IEMOCAP/cross_validate.py`` runs the
five folds. Multi-GPU: ``torchrun --standalone --nproc_per_node=N recipes/IEMOCAP/train.py ...``.

Outputs in ``output_folder``: ``train_log.txt``, ``log.txt``, ``hyperparams.yaml``,
``history.json`` (per-epoch loss terms and validation metrics), ``predictions.csv``,
``test_metrics.json``, ``confusion_matrix.png``, ``save/`` (checkpoints, ``label_encoder.txt``,
``label_statistics.json``).
"""

import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from m4ser_lobes.brain import M4SERBrain
from m4ser_lobes.dataio import dataio_prep

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iemocap_prepare import prepare_iemocap  # noqa: E402


def manifests_of(hparams):
    """Split name -> manifest path."""
    return {
        "train": hparams["train_annotation"],
        "valid": hparams["valid_annotation"],
        "test": hparams["test_annotation"],
    }


def write_label_statistics(hparams, tokenizer):
    """Share of KEEP/DELETE/CHANGE tokens, truncated AEC targets and WER, next to the manifests."""
    from m4ser_lobes.alignment import manifest_label_statistics

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
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
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
    tokenizer = hparams["text_encoder"].tokenizer
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
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["dataloader_options"],
        valid_loader_kwargs=hparams["test_dataloader_options"],
    )
    brain.evaluate(
        datasets["test"],
        max_key="UA",
        test_loader_kwargs=hparams["test_dataloader_options"],
    )
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
