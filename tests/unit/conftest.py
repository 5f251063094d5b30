"""Fixtures of the unit tests that build an ``M4SERBrain`` from ``hparams/m4ser.yaml``.

``tiny_models`` saves a tiny random HuBERT and BERT once per session; ``make_brain`` builds a
Brain of the YAML around them with :data:`m4ser_lobes.testing.models.TINY_OVERRIDES` (seconds, no
training run). The trained-and-exported model (``tiny_m4ser``) lives with its users in
``tests/integration/conftest.py``.
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """(speech encoder folder, text encoder folder): tiny random HuBERT and BERT, width 32."""
    from m4ser_lobes.testing.mini_iemocap import corpus_words
    from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

    root = tmp_path_factory.mktemp("brain_models")
    return (
        save_tiny_speech_encoder(root / "hubert", hidden_size=32),
        save_tiny_text_encoder(root / "bert", words=corpus_words(), hidden_size=32),
    )


@pytest.fixture
def make_brain(tiny_models, mini_iemocap_manifests):
    """``make_brain(out, batch_size=4, **overrides) -> (brain, train loader)``.

    The Brain of ``hparams/m4ser.yaml`` with the tiny sizes, the prepared fold-1 manifests of
    ``mini_iemocap_manifests`` and ``overrides`` (Table IV switches ...); its training loader
    is built as the recipe builds it (corrections only when AED or AEC train).
    """
    import speechbrain as sb

    from m4ser_lobes.brain import M4SERBrain
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.data.dataio import dataio_prep
    from m4ser_lobes.experiment.run import load_objects, plan_run, tokenizer_of
    from m4ser_lobes.testing.models import TINY_OVERRIDES

    def build(out, batch_size=4, **extra):
        overrides = {
            **TINY_OVERRIDES,
            "data_folder": "unused",
            "results_folder": str(out),
            **{f"{split}_annotation": str(mini_iemocap_manifests / "fold1" / f"{split}.json")
               for split in ("train", "valid", "test")},
            "expected_utterances": None,
            "speech_encoder_source": str(tiny_models[0]),
            "text_encoder_source": str(tiny_models[1]),
            "lr": 0.01, "batch_size": batch_size, "num_workers": 0, "skip_prep": True,
            "ckpt_interval_minutes": 0, "max_audio_seconds": 2.0,
            **extra,
        }
        hparams = load_objects(plan_run(REPO / "hparams" / "m4ser.yaml", overrides, IEMOCAP))
        datasets, label_encoder = dataio_prep(
            {"train": hparams["train_annotation"]},
            tokenizer_of(hparams),  # as the recipe: a speech-only run still tokenizes
            str(Path(out) / "label_encoder.txt"),
            correction_mode="selective" if hparams["use_aed"] else "full",  # as the recipe
            with_corrections=hparams["use_aed"] or hparams["use_aec"],
        )
        hparams["label_encoder"] = label_encoder
        brain = M4SERBrain(modules=hparams["modules"], hparams=hparams,
                           run_opts={"device": "cpu"}, checkpointer=hparams["checkpointer"])
        loader = sb.dataio.dataloader.make_dataloader(datasets["train"], batch_size=batch_size)
        return brain, loader

    return build
