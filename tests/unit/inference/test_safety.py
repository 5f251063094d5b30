"""Model folders are data (``m4ser_lobes.inference.safety``): what an export's and a training run's
``hyperparams.yaml`` may hold, checked without building anything.

On a real export folder and a real training run: ``tests/integration/test_export_safety.py``.
"""

from pathlib import Path

import pytest
import ruamel.yaml

from m4ser_lobes.inference import hparams
from m4ser_lobes.inference.safety import (
    EXPORT_TAGS,
    TRAINING_TAGS,
    UnsafeYAMLError,
    check_export_yaml,
    check_training_yaml,
    load_checked,
)

REPO = Path(__file__).resolve().parents[3]


def _tags(path):
    """Every non-standard tag of a YAML file."""
    from m4ser_lobes.inference.safety import _nodes, _tag

    root = ruamel.yaml.YAML().compose(path.read_text(encoding="utf-8"))
    return {_tag(n) for n, _ in _nodes(root) if not _tag(n).startswith("tag:yaml.org,2002:")}


def test_the_allow_lists_are_the_tags_of_the_packaged_and_training_yamls():
    """EXPORT_TAGS is exactly the packaged inference.yaml's; the training YAMLs use only
    TRAINING_TAGS (a new constructor in hparams/ must be allowed here, on purpose)."""
    assert _tags(hparams.INFERENCE_YAML) == EXPORT_TAGS
    for path in sorted((REPO / "hparams").glob("*.yaml")):
        assert _tags(path) <= TRAINING_TAGS, (path, _tags(path) - TRAINING_TAGS)
        check_training_yaml(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"d_model": 32, "asr_model": hparams.BUNDLED_ASR, "asr_backend": "faster-whisper"},
        {"speech_encoder": None, "modalities": "text", **dict.fromkeys(hparams.CORRECTOR_KEYS)},
        {"text_encoder": None, "modalities": "speech", "has_corrector": False},
    ],
)
def test_what_the_exporter_writes_is_accepted(overrides):
    check_export_yaml(hparams.render_inference_yaml(overrides))


PACKAGED = hparams.render_inference_yaml({"d_model": 32})

REFUSED = {
    "os.system": (PACKAGED + '__pwned: !apply:os.system ["touch /tmp/x"]\n', "!apply:os.system"),
    "Popen": (PACKAGED + "p: !new:subprocess.Popen [[ls]]\n", "!new:subprocess.Popen"),
    "eval": (PACKAGED + "e: !name:builtins.eval\n", "!name:builtins.eval"),
    "include": (PACKAGED + "i: !include:other.yaml\n", "!include:other.yaml"),
    "module": (PACKAGED + "m: !module:os\n", "!module:os"),
    "python tag": (PACKAGED + "x: !!python/object/apply:os.system [ls]\n", "python/object/apply"),
    "inside a node": (
        PACKAGED.replace("    freeze: True\n", "    freeze: !apply:os.system [ls]\n", 1),
        "!apply:os.system",
    ),
    "behind an alias": (
        PACKAGED.replace("d_model: 32", "d_model: &a !apply:os.system [ls]")
        .replace("nhead: 12", "nhead: *a"),
        "!apply:os.system",
    ),
    "private getattr": (
        PACKAGED.replace("[!ref <fusion>, output_dim]", "[!ref <fusion>, __class__]"),
        "may only read a public attribute",
    ),
    "power in a ref": (PACKAGED.replace("d_model: 32", "d_model: !ref 9 ** 9 ** 9"), "power"),
    "a plain key made an object": (
        PACKAGED.replace("d_model: 32", "d_model: !name:m4ser_lobes.heads.AEDHead"),
        "an export holds a plain value here",
    ),
    "a changed architecture": (
        PACKAGED.replace("model: !ref <model>\n", "model: !ref <fusion>\n", 1),
        "differs from the packaged",
    ),
    "an unknown key": (PACKAGED + "note: hello\n", "has no such key"),
    "a bundled ASR elsewhere": (
        PACKAGED.replace("asr_model: openai/whisper-medium.en", "asr_model: !ref <model>"),
        "plain value",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_anything_else_is_refused_in_one_line_naming_the_file_and_the_tag(case):
    text, words = REFUSED[case]
    with pytest.raises(UnsafeYAMLError) as err:
        check_export_yaml(text, "shared/m4ser/hyperparams.yaml")
    message = str(err.value)
    assert "\n" not in message and words in message, message
    assert message.startswith("shared/m4ser/hyperparams.yaml: refused before anything ran: line ")
    assert "trust_code=True" in message


def test_a_training_yaml_with_another_constructor_is_refused(tmp_path):
    text = (REPO / "hparams" / "m4ser.yaml").read_text(encoding="utf-8")
    path = tmp_path / "hyperparams.yaml"
    marker = tmp_path / "ran"
    path.write_text(text + f'__run: !apply:os.system ["touch {marker}"]\n')
    with pytest.raises(UnsafeYAMLError, match=r"line \d+, key __run: tag !apply:os.system"):
        load_checked(path, check_training_yaml)
    assert not marker.exists()
    path.write_text(f'__run: !apply:os.system ["touch {marker}"]\n')
    load_checked(path, check_training_yaml, trust_code=True)  # the payload is real
    assert marker.exists()
