"""Model folders are data: a YAML is checked before HyperPyYAML runs any of it.

HyperPyYAML builds what a YAML names: ``!new:``, ``!name:`` and ``!apply:`` import and call any
Python callable (``!apply:os.system``), ``!!python/object/apply:`` does too, and ``!include:``
reads other files. An export folder or Hub repo is somebody else's data, so
:func:`check_export_yaml` accepts only what ``m4ser-export`` writes, and ``M4SERClassifier.
from_hparams`` (hence ``m4ser-classify --model``, Hub repo ids included) loads nothing else:

- every tag is one of :data:`EXPORT_TAGS` (those of the packaged
  ``m4ser_lobes/inference/inference.yaml``: the project's own encoders, fusion, heads, AED/AEC
  constructors and weight hook, SpeechBrain's ``CategoricalEncoder`` and ``Pretrainer``, and
  ``getattr`` of a public attribute);
- the document is the packaged YAML with plain values: every top-level key is one of the packaged
  file's; a key whose packaged value is plain (a number, a string, null...) holds a plain value;
  every other key (the model, its parts, the Pretrainer) is exactly the packaged node, or null for
  a part an export may leave out (an encoder, the corrector). The only tag an export adds is
  ``asr_model: !ref <pretrained_path>/asr`` (a bundled Whisper).

``m4ser-export`` reads a training run's ``hyperparams.yaml`` the same way
(:func:`check_training_yaml`): its tags are those of the training YAMLs
(:data:`TRAINING_TAGS`: the ``m4ser_lobes``, ``speechbrain`` and ``torch.optim`` objects of
``hparams/*.yaml``, ``os.path.join``, ``getattr``). Anything else (``!apply:os.system``,
``!new:subprocess.Popen``, ``!name:builtins.eval``, ``!include:``, ``!!python/...``) is refused
with one line naming the file, the line, the key and the tag, and nothing runs. The weights are
read with ``torch.load(..., weights_only=True)`` (:mod:`m4ser_lobes.inference.folder`).

``trust_code=True`` (``--trust-code`` on the command lines) skips the check, for a folder or
YAML you wrote yourself: HyperPyYAML then runs whatever it names.
"""

from __future__ import annotations

import io
from pathlib import Path

#: Tags an export's ``hyperparams.yaml`` may hold: those of the packaged ``inference.yaml``.
EXPORT_TAGS = frozenset(
    {
        "!ref",
        "!new:m4ser_lobes.encoders.SpeechEncoder",
        "!new:m4ser_lobes.encoders.TextEncoder",
        "!new:m4ser_lobes.fusion.MultimodalFusion",
        "!new:m4ser_lobes.heads.EmotionHead",
        "!new:m4ser_lobes.model.M4SER",
        "!new:speechbrain.dataio.encoder.CategoricalEncoder",
        "!new:speechbrain.utils.parameter_transfer.Pretrainer",
        "!name:m4ser_lobes.heads.AEDHead",
        "!name:m4ser_lobes.aec.SelectiveAECDecoder",
        "!name:m4ser_lobes.inference.folder.load_inference_weights",
        "!apply:getattr",
    }
)

#: Tags a training run's ``hyperparams.yaml`` may hold: those of ``hparams/*.yaml``, of this
#: version and of the runs of earlier ones (``experiment.config.prepared_folder``,
#: ``fusion.uses_modality``).
TRAINING_TAGS = frozenset(
    {
        "!ref",
        "!copy",
        "!tuple",
        "!PLACEHOLDER",
        "!apply:getattr",
        "!apply:os.path.join",
        "!apply:speechbrain.utils.seed_everything",
        "!apply:m4ser_lobes.model.build_if",
        "!apply:m4ser_lobes.model.present",
        "!apply:m4ser_lobes.switches.uses_modality",
        "!apply:m4ser_lobes.fusion.uses_modality",
        "!apply:m4ser_lobes.utils.identity.keyed_folder",
        "!apply:m4ser_lobes.utils.identity.file_digest",
        "!apply:m4ser_lobes.experiment.config.prepared_folder",
        "!name:m4ser_lobes.encoders.SpeechEncoder",
        "!name:m4ser_lobes.encoders.TextEncoder",
        "!name:m4ser_lobes.heads.AEDHead",
        "!name:m4ser_lobes.aec.SelectiveAECDecoder",
        "!name:m4ser_lobes.discriminator.ModalityDiscriminator",
        "!new:m4ser_lobes.discriminator.ModalityDiscriminator",
        "!new:m4ser_lobes.fusion.MultimodalFusion",
        "!new:m4ser_lobes.heads.EmotionHead",
        "!new:m4ser_lobes.model.M4SER",
        "!name:torch.optim.Adam",
        "!new:speechbrain.utils.epoch_loop.EpochCounter",
        "!new:speechbrain.utils.train_logger.FileTrainLogger",
        "!new:speechbrain.utils.checkpoints.Checkpointer",
        "!new:m4ser_lobes.checkpoints.AtomicCheckpointer",
    }
)

#: Keys whose packaged node an export may replace by null (a modality or the corrector left out).
NULLABLE_KEYS = ("speech_encoder", "text_encoder", "corrector_path", "aed_head", "aec_decoder")

_CORE = "tag:yaml.org,2002:"
_PLAIN = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_STANDARD = _PLAIN | {_CORE + t for t in ("map", "seq", "merge")}

EXPORT_FIX = (
    "an export's hyperparams.yaml is data, the packaged m4ser_lobes/inference/inference.yaml "
    "with plain values: export the model again with m4ser-export, or, only for a folder you "
    "wrote yourself, pass trust_code=True (m4ser-classify --trust-code)"
)
TRAINING_FIX = (
    "a training run's hyperparams.yaml may build only the objects of the project's training "
    "YAMLs (m4ser_lobes.inference.safety.TRAINING_TAGS); only for a YAML you wrote yourself, "
    "pass --trust-code (trust_code=True)"
)


class UnsafeYAMLError(ValueError):
    """A YAML names something that HyperPyYAML would run and that the check does not allow."""


def _tag(node):
    tag = node.tag
    return tag if isinstance(tag, str) else str(getattr(tag, "value", tag))


def _compose(text, name):
    """The YAML node graph of ``text``: parsed, nothing constructed, nothing run."""
    import ruamel.yaml

    try:
        return ruamel.yaml.YAML().compose(io.StringIO(text))
    except ruamel.yaml.YAMLError as err:
        reason = " ".join(str(err).split())
        raise UnsafeYAMLError(f"{name}: not valid YAML ({reason})") from None


def _nodes(root):
    """(node, top-level key) for every node of the graph once (an alias is its anchor's node)."""
    seen, stack = set(), [(root, None)]
    while stack:
        node, key = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, key
        if isinstance(node.value, list):
            for item in node.value:
                pairs = item if isinstance(item, tuple) else (item,)
                for child in pairs:
                    top = key
                    if key is None and node is root and isinstance(item, tuple):
                        top = str(item[0].value)
                    stack.append((child, top))


def _is_plain(node):
    import ruamel.yaml

    return isinstance(node, ruamel.yaml.ScalarNode) and _tag(node) in _PLAIN


def _tag_problem(node, allowed):
    """Why ``node``'s tag is refused, or None."""
    tag = _tag(node)
    if tag in _STANDARD:
        return None
    if tag not in allowed:
        return "is not allowed"
    if tag == "!ref" and "**" in str(node.value):
        return "holds a power (**), which could keep the loader busy forever"
    if tag == "!apply:getattr":
        args = node.value if isinstance(node.value, list) else []
        name = args[1] if len(args) > 1 and not isinstance(args[1], tuple) else None
        if name is None or not _is_plain(name) or str(name.value).startswith("_"):
            return "may only read a public attribute named in the YAML ([object, name])"
    return None


def _refuse(name, node, key, what, fix):
    line = node.start_mark.line + 1
    where = f"line {line}" + (f", key {key}" if key is not None else "")
    return UnsafeYAMLError(f"{name}: refused before anything ran: {where}: {what}; {fix}")


def check_tags(text, allowed, name="YAML", fix=EXPORT_FIX):
    """Refuse (:class:`UnsafeYAMLError`) the first tag of ``text`` (in file order) not allowed.

    Returns
    -------
    ruamel.yaml.Node
        The composed document (nothing constructed).

    Example
    -------
    >>> _ = check_tags("lr: 0.1\\nopt: !name:torch.optim.Adam\\n", TRAINING_TAGS)
    >>> check_tags('lr: 0.1\\n__pwned: !apply:os.system ["touch x"]\\n', TRAINING_TAGS,
    ...            "run/hyperparams.yaml", fix="...")
    Traceback (most recent call last):
    ...
    m4ser_lobes.inference.safety.UnsafeYAMLError: run/hyperparams.yaml: refused before anything ran: line 2, key __pwned: tag !apply:os.system is not allowed; ...
    """
    root = _compose(text, name)
    if root is None:
        return None
    refused = [
        (node.start_mark.index, node, key, problem)
        for node, key in _nodes(root)
        if (problem := _tag_problem(node, allowed)) is not None
    ]
    if refused:
        _, node, key, problem = min(refused, key=lambda r: r[0])
        raise _refuse(name, node, key, f"tag {_tag(node)} {problem}", fix)
    return root


def _same(a, b):
    """Two composed nodes say the same thing (tags, values, keys, items)."""
    if type(a) is not type(b) or _tag(a) != _tag(b):
        return False
    if not isinstance(a.value, list):
        return a.value == b.value
    if len(a.value) != len(b.value):
        return False
    if a.value and isinstance(a.value[0], tuple):
        left = {str(k.value): v for k, v in a.value}
        right = {str(k.value): v for k, v in b.value}
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    return all(_same(x, y) for x, y in zip(a.value, b.value))


def _packaged_nodes():
    from m4ser_lobes.inference.hparams import BUNDLED_ASR, INFERENCE_YAML

    root = _compose(INFERENCE_YAML.read_text(encoding="utf-8"), INFERENCE_YAML)
    bundled = _compose(f"asr_model: {BUNDLED_ASR}\n", "BUNDLED_ASR").value[0][1]
    return {str(k.value): v for k, v in root.value}, bundled


def check_export_yaml(text, name="hyperparams.yaml"):
    """Refuse an export's YAML that is not the packaged ``inference.yaml`` with plain values.

    See the module docstring for what is accepted. Nothing of ``text`` is constructed or run.

    Raises
    ------
    UnsafeYAMLError
        One line naming ``name``, the line, the key and the tag or the difference.

    Example
    -------
    >>> from m4ser_lobes.inference.hparams import render_inference_yaml
    >>> check_export_yaml(render_inference_yaml({"d_model": 32, "text_encoder": None}))
    >>> check_export_yaml(render_inference_yaml() + 'x: !new:subprocess.Popen [["ls"]]\\n',
    ...                   "export/hyperparams.yaml")
    Traceback (most recent call last):
    ...
    m4ser_lobes.inference.safety.UnsafeYAMLError: export/hyperparams.yaml: refused before anything ran: line ..., key x: tag !new:subprocess.Popen is not allowed; an export's ...
    >>> check_export_yaml(render_inference_yaml().replace("freeze: True", "freeze: False"))
    Traceback (most recent call last):
    ...
    m4ser_lobes.inference.safety.UnsafeYAMLError: hyperparams.yaml: refused before anything ran: line ..., key speech_encoder: it differs from the packaged inference.yaml's node (an export never changes it); ...
    """
    import ruamel.yaml

    root = check_tags(text, EXPORT_TAGS, name, EXPORT_FIX)
    if not isinstance(root, ruamel.yaml.MappingNode):
        raise UnsafeYAMLError(f"{name}: not a YAML mapping of keys to values; {EXPORT_FIX}")
    packaged, bundled = _packaged_nodes()
    for key_node, node in root.value:
        key = str(key_node.value)
        if not _is_plain(key_node) or key not in packaged:
            raise _refuse(name, key_node, key, "the packaged inference.yaml has no such key",
                          EXPORT_FIX)
        want = packaged[key]
        if _is_plain(want):
            ok = _is_plain(node) or (key == "asr_model" and _same(node, bundled))
            what = "an export holds a plain value here (a number, a string, true/false, null)"
        else:
            ok = _same(node, want) or (key in NULLABLE_KEYS and _tag(node) == _CORE + "null")
            what = "it differs from the packaged inference.yaml's node (an export never changes it)"
        if not ok:
            raise _refuse(name, node, key, what, EXPORT_FIX)


def check_training_yaml(text, name="hyperparams.yaml"):
    """Refuse a training YAML with a tag outside :data:`TRAINING_TAGS` (nothing is run).

    Example
    -------
    >>> check_training_yaml("d_model: 32\\nopt: !name:torch.optim.Adam\\n  lr: 0.1\\n")
    >>> check_training_yaml("d_model: 32\\nrun: !!python/object/apply:os.system [ls]\\n")
    Traceback (most recent call last):
    ...
    m4ser_lobes.inference.safety.UnsafeYAMLError: hyperparams.yaml: refused before anything ran: line 2, key run: tag tag:yaml.org,2002:python/object/apply:os.system is not allowed; ...
    """
    check_tags(text, TRAINING_TAGS, name, TRAINING_FIX)


def load_checked(path, check, overrides=None, trust_code=False, **kwargs):
    """``load_hyperpyyaml`` of ``path`` after ``check`` accepted its text (the same text).

    Arguments
    ---------
    path : str or Path
        The YAML file.
    check : callable
        :func:`check_export_yaml` or :func:`check_training_yaml`.
    overrides : dict, optional
        HyperPyYAML overrides (the caller's own values, not checked).
    trust_code : bool
        Skip the check (a YAML you wrote yourself).
    **kwargs
        Forwarded to ``load_hyperpyyaml`` (``overrides_must_match``).

    Returns
    -------
    dict
    """
    from hyperpyyaml import load_hyperpyyaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UnsafeYAMLError(f"{path}: not UTF-8 text ({err.reason})") from None
    if not trust_code:
        check(text, str(path))
    return load_hyperpyyaml(text, overrides, **kwargs)


def plain_values(text):
    """The plain values of a YAML document; tagged values read as None, nothing is run.

    Example
    -------
    >>> plain_values("lr: 1e-3\\nuse: no\\nopt: !name:torch.optim.Adam\\n  lr: 1\\n")
    {'lr': 0.001, 'use': 'no', 'opt': None}
    >>> plain_values("x: !!python/object/apply:os.system [ls]\\n")
    {'x': None}
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor

    class TagsAsNone(SafeConstructor):
        pass

    TagsAsNone.add_constructor(None, lambda constructor, node: None)
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = TagsAsNone
    values = yaml.load(text)
    return dict(values) if isinstance(values, dict) else {}
