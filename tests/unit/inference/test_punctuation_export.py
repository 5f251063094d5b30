"""``keep_punctuation`` travels from the training YAML through the export to the classifier,
which encodes (and corrects) text the way training did (docs/design.md §4).

The export folder is written by the exporter's own functions (``export_overrides``,
``write_inference_yaml``) around a real tiny text-only model built by the packaged YAML, and
loaded with ``M4SERClassifier.from_hparams``.
"""

import shutil

import pytest
import torch

from m4ser_lobes.inference import hparams as config

WORDS = ["you", "did", "what", "way", "?"]
TRAINING = {
    "d_model": 32, "nhead": 2, "cme_layers": 1, "cme_ffn": 64, "dropout": 0.1,
    "er_dropout": 0.5, "hst_text_source": "align", "num_emotions": 2, "modalities": "text",
    "use_msr": False, "use_mir": False, "max_tokens": 128,
}


@pytest.fixture(scope="module")
def text_encoder(tmp_path_factory):
    from m4ser_lobes.testing.models import save_tiny_text_encoder

    return save_tiny_text_encoder(tmp_path_factory.mktemp("bert"), words=WORDS, hidden_size=32)


def export(root, text_encoder, training):
    """Write an export of a tiny text-only M4SER trained with ``training``; returns its folder.

    Its corrector tags every token CHANGE and decodes every span as the single word "way".
    """
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.encoder import CategoricalEncoder

    folder = root / "export"
    shutil.copytree(text_encoder, folder / "text_encoder")
    with open(config.INFERENCE_YAML, encoding="utf-8") as fin:
        built = load_hyperpyyaml(fin, {**TRAINING, "speech_encoder": None,
                                       "pretrained_path": str(folder)})
    model = built["model"]
    tokenizer = model.text_encoder.tokenizer
    corrector_sizes = {"aec_layers": 1, "aec_ffn": 64, "aec_max_len": 1}
    values = config.export_overrides({**training, **corrector_sizes}, model,
                                     "openai/whisper-tiny.en", None, 8, 8, corrector=True)
    config.write_inference_yaml(folder / "hyperparams.yaml", values)
    torch.save(model.state_dict(), folder / "model.ckpt")
    labels = CategoricalEncoder()
    labels.update_from_iterable(["ang", "neu"])
    labels.save(folder / "label_encoder.txt")
    with open(folder / "hyperparams.yaml", encoding="utf-8") as fin:
        written = load_hyperpyyaml(fin, {"pretrained_path": str(folder)})
    corrector = torch.nn.ModuleDict(
        {"aed_head": written["aed_head"](), "aec_decoder": written["aec_decoder"]()})
    with torch.no_grad():
        for layer, favoured in ((corrector["aed_head"].linear, 2),
                                (corrector["aec_decoder"].output,
                                 tokenizer.convert_tokens_to_ids("way"))):
            layer.weight.zero_()
            layer.bias.zero_()
            layer.bias[favoured] = 10.0
    torch.save(corrector.state_dict(), folder / "corrector.ckpt")
    return folder


def load(folder):
    from m4ser_lobes.inference.classifier import M4SERClassifier

    return M4SERClassifier.from_hparams(source=str(folder), savedir=str(folder),
                                        run_opts={"device": "cpu"})


def tokens(classifier, text):
    ids, _ = classifier.encode_texts([text])
    return classifier.model.text_encoder.tokenizer.convert_ids_to_tokens(ids[0].tolist())


@pytest.mark.parametrize("keep", [True, False])
def test_the_export_copies_the_switch_and_the_classifier_follows_it(tmp_path, text_encoder, keep):
    folder = export(tmp_path, text_encoder, {**TRAINING, "keep_punctuation": keep})
    assert f"keep_punctuation: {keep}\n" in (folder / "hyperparams.yaml").read_text()
    classifier = load(folder)
    want = ["[CLS]", "you", "did", "what"] + (["?"] if keep else []) + ["[SEP]"]
    assert tokens(classifier, "You did what?") == want
    # Every token is tagged CHANGE and every span is "way": [CLS] and the three words host one
    # each, the "?" (ignored by the AED labels in training) none.
    assert classifier.correct_transcripts(["You did what?"]) == ["way way way way"]


def test_runs_and_exports_from_before_the_switch_strip_punctuation(tmp_path, text_encoder):
    folder = export(tmp_path, text_encoder, TRAINING)  # a training YAML without the key
    text = (folder / "hyperparams.yaml").read_text()
    assert "keep_punctuation: False\n" in text
    (folder / "hyperparams.yaml").write_text(text.replace("keep_punctuation: False\n", ""))
    assert tokens(load(folder), "You did what?")[-2:] == ["what", "[SEP]"]
