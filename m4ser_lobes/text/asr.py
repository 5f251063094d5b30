"""Command line of the ASR hypothesis cache: ``m4ser-asr`` (or ``python -m m4ser_lobes.text.asr``).

Transcribes the utterances of SpeechBrain manifests once with Whisper and writes, or resumes, the
JSON hypothesis cache that data preparation reads (:mod:`m4ser_lobes.text.hypotheses`; the
transcribers are in :mod:`m4ser_lobes.text.transcribers`)::

    m4ser-asr --manifest train.json valid.json test.json \\
        --cache hyps.json --model openai/whisper-medium.en [--backend faster-whisper]
    m4ser-asr --manifest ... --cache hyps.json --hparams hparams/iemocap.yaml   # the paper's ASR

The model is given once, either by ``--model`` or by ``--hparams``: a corpus file of ``hparams/``
names the ASR the paper used for that corpus in its ``asr_model`` key (``openai/whisper-medium.en``
for IEMOCAP, ``openai/whisper-large-v2`` for MELD), as a SpeechBrain recipe reads its settings
from the YAML it is given. Only that key is read; nothing in the file is evaluated.

Example
-------
>>> args = build_parser().parse_args(["--manifest", "m.json", "--cache", "h.json", "--model", "x"])
>>> args.backend, args.model
('transformers', 'x')
"""

from __future__ import annotations

from m4ser_lobes import install_hint
from m4ser_lobes.text.hypotheses import transcribe_manifest
from m4ser_lobes.text.transcribers import BACKENDS, DEFAULT_BACKEND
from m4ser_lobes.utils.cli import command_parser, log_to_console

__all__ = ["build_parser", "main", "model_from_yaml"]


def model_from_yaml(path, key="asr_model"):
    """The string ``key`` of a (Hyper)PyYAML file, read without evaluating any tag of the file.

    A corpus file of ``hparams/`` is a section applied to ``hparams/m4ser.yaml`` (its ``!ref``
    point into that file) and holds a ``!PLACEHOLDER``: its tags read as None here.

    Example
    -------
    >>> model_from_yaml("hparams/meld.yaml")
    'openai/whisper-large-v2'
    >>> model_from_yaml("hparams/m4ser.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: hparams/m4ser.yaml has no string key 'asr_model'; add `asr_model: ...` ...
    """
    import yaml

    class TagsAsNone(yaml.SafeLoader):
        """YAML whose tags (``!ref``, ``!apply:``, ``!PLACEHOLDER`` ...) read as None."""

    TagsAsNone.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.load(f, Loader=TagsAsNone)
    except OSError as err:
        raise ValueError(f"--hparams {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ValueError(f"--hparams {path} is not YAML: {str(err).splitlines()[0]}") from err
    value = values.get(key) if isinstance(values, dict) else None
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{path} has no string key {key!r}; add `{key}: openai/whisper-medium.en` (the "
            "Whisper id or folder) to it, or give --model instead of --hparams"
        )
    return value


def build_parser():
    """The ``m4ser-asr`` argument parser."""
    parser = command_parser(
        "m4ser-asr",
        "m4ser_lobes.text.asr",
        "Transcribe manifests with Whisper once; write/resume a JSON hypothesis cache "
        "and report WER overall and per session/split.",
    )
    parser.add_argument("--manifest", nargs="+", required=True, help="SpeechBrain JSON manifests")
    parser.add_argument(
        "--cache", required=True, help="hypothesis cache (JSON), created or resumed"
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--model",
        help="Whisper id or folder, e.g. openai/whisper-medium.en (IEMOCAP), "
        "openai/whisper-large-v2 (MELD); for --backend faster-whisper also a CTranslate2 folder "
        "or a size (large-v2)",
    )
    model.add_argument(
        "--hparams",
        help="instead of --model: a YAML naming the model in its --hparams-key, e.g. "
        "hparams/iemocap.yaml (the paper's medium.en) or hparams/meld.yaml (large-v2)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help="ASR implementation; faster-whisper (CTranslate2) is several times faster and is "
        f"installed {install_hint('faster-whisper').replace('%', '%%')}",
    )
    parser.add_argument("--hparams-key", default="asr_model", help="key of --hparams")
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per batch")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)"
    )
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        help="longer audio is cut at quiet points into pieces of at most this length",
    )
    parser.add_argument("--save-every", type=int, default=10, help="save the cache every N batches")
    parser.add_argument("--no-fp16", action="store_true", help="keep fp32 on CUDA")
    parser.add_argument(
        "--compute-type",
        default=None,
        help="CTranslate2 compute type for --backend faster-whisper, e.g. int8_float16 "
        "(default: float16 on CUDA, float32 on CPU)",
    )
    parser.add_argument("--language", default="en", help="for multilingual models only")
    parser.add_argument("--num-beams", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="generation length cap (default: the model's)",
    )
    parser.add_argument(
        "--data-root", default=None, help="replaces {data_root} in wav paths (default: none)"
    )
    parser.add_argument("--overwrite", action="store_true", help="ignore an existing cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Command-line entry: ``m4ser-asr --manifest ... --cache ... --model ...``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model_id = args.model or model_from_yaml(args.hparams, args.hparams_key)
    except ValueError as err:
        parser.error(str(err))
    if args.compute_type and args.backend != "faster-whisper":
        parser.error("--compute-type is an option of --backend faster-whisper")
    log_to_console()
    transcribe_manifest(
        args.manifest,
        args.cache,
        model_id,
        batch_size=args.batch_size,
        device=args.device,
        chunk_seconds=args.chunk_seconds,
        save_every=args.save_every,
        fp16=False if args.no_fp16 else None,
        language=args.language,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        overwrite=args.overwrite,
        data_root=args.data_root,
        progress=not args.no_progress,
        backend=args.backend,
        compute_type=args.compute_type,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
