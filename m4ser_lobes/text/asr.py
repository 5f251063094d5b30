"""Command line of the ASR hypothesis cache: ``m4ser-asr`` (or ``python -m m4ser_lobes.text.asr``).

Transcribes the utterances of SpeechBrain manifests once with Whisper and writes, or resumes, the
JSON hypothesis cache that data preparation reads (:mod:`m4ser_lobes.text.hypotheses`; the
transcribers are in :mod:`m4ser_lobes.text.transcribers`)::

    m4ser-asr --manifest train.json valid.json test.json \\
        --cache hyps.json --model openai/whisper-medium.en [--backend faster-whisper]

Example
-------
>>> build_parser().parse_args(["--manifest", "m.json", "--cache", "h.json"]).backend
'transformers'
"""

from __future__ import annotations


from m4ser_lobes.text.hypotheses import transcribe_manifest
from m4ser_lobes.text.transcribers import BACKENDS, DEFAULT_BACKEND
from m4ser_lobes.utils.cli import command_parser, log_to_console
from m4ser_lobes.utils.fileio import load_hyperpyyaml_values

__all__ = ["build_parser", "main"]


def _model_from_yaml(path, key):
    """Read ``key`` from a (Hyper)PyYAML file without instantiating its ``!new:`` objects."""
    with open(path, encoding="utf-8") as f:
        value = load_hyperpyyaml_values(f).get(key)
    if not isinstance(value, str):
        raise ValueError(
            f"{path} has no string key {key!r}; add `{key}: openai/whisper-medium.en` or pass --model"
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
    parser.add_argument(
        "--model",
        help="Whisper id or folder, e.g. openai/whisper-medium.en (IEMOCAP), "
        "openai/whisper-large-v2 (MELD); for --backend faster-whisper also a CTranslate2 folder "
        "or a size (large-v2) (default: the --hparams-key of --hparams)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help="ASR implementation; faster-whisper (CTranslate2) is several times faster and needs "
        "`pip install m4ser-speechbrain[faster-whisper]`",
    )
    parser.add_argument(
        "--hparams", help="YAML file to read the model id from (default: none; give --model)"
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
    model_id = args.model or (args.hparams and _model_from_yaml(args.hparams, args.hparams_key))
    if not model_id:
        parser.error("give --model (or --hparams with an asr_model key)")
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
