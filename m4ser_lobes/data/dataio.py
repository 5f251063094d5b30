"""SpeechBrain data pipelines over the manifest schema shared by IEMOCAP and MELD.

Every manifest entry has ``wav``, ``duration``, ``emo``, ``transcript`` (human reference) and
``hypothesis`` (cached ASR text, or null) — see ``docs/CONTRACTS.md``. The pipelines here are
corpus-agnostic: a recipe only points them at its manifests.

Per utterance they provide ``sig`` (16 kHz mono; the ``train`` split randomly cropped to
``max_audio_seconds``, valid/test whole), ``emo_encoded``, ``input_ids`` (the normalised
text the encoder reads, with [CLS]/[SEP]; its punctuation kept with ``keep_punctuation``),
``aed_labels`` (K/D/C per input id, -100 ignored: [SEP], punctuation) and
``aec_targets`` (CHANGE position -> reference WordPiece ids; a Python dict, batched later by
:func:`m4ser_lobes.text.targets.batch_correction_targets`).

The text items do not change from one epoch to the next, so :func:`dataio_prep` computes them
once per utterance when it builds the datasets (in the main process, before any DataLoader
worker forks) and the pipeline reads them back from that memo; only the audio is read per epoch.
"""

import logging
import time

import speechbrain as sb
import torch

from m4ser_lobes.data.audio import load_audio
from m4ser_lobes.text.alignment import align_transcripts
from m4ser_lobes.text.tags import IGNORE_INDEX
from m4ser_lobes.text.targets import full_correction_target
from m4ser_lobes.text.tokens import encode_hypothesis

logger = logging.getLogger(__name__)

TEXT_SOURCES = ("hypothesis", "transcript")


def text_of(entry_text, reference, text_source, utt_id):
    """Pick the text the encoder reads; a missing hypothesis is an error that says what to do."""
    if text_source == "transcript":
        return reference
    if entry_text is None:
        raise ValueError(
            f"utterance {utt_id} has no ASR hypothesis: prepare the manifests with a hypotheses "
            "cache (`python -m m4ser_lobes.text.asr ...`) or train on human transcripts with "
            "--text_source=transcript --use_aed=False --use_aec=False"
        )
    return entry_text


def make_text_pipeline(
    tokenizer,
    text_source="hypothesis",
    correction_mode="selective",
    max_tokens=None,
    with_corrections=True,
    memo=None,
    keep_punctuation=False,
):
    """Build the text pipeline (docs/design.md §4).

    Arguments
    ---------
    tokenizer : transformers tokenizer
        The text encoder's tokenizer.
    text_source : str
        ``"hypothesis"`` (ASR text, the paper's setting) or ``"transcript"`` (human text).
    correction_mode : str
        ``"selective"`` (AED + AEC on CHANGE tokens) or ``"full"`` (Table IV C(1): one sequence per
        utterance, the whole reference, hosted by [CLS]).
    max_tokens : int, optional
        Cap on the hypothesis length in WordPiece tokens (with [CLS]/[SEP]).
    with_corrections : bool
        Align with the reference for AED labels and AEC targets. Without them (no AED nor AEC)
        the text is only encoded: labels are all ignored (-100) and there are no targets, so no
        reference is needed.
    memo : dict, optional
        Filled with the items of every utterance the pipeline sees, keyed by ``(id, hypothesis,
        transcript)``, and read back on the next call: the alignment runs once per utterance.
        None computes every call.
    keep_punctuation : bool
        The encoder reads the text's punctuation too (AED labels -100 on it; AEC targets, from
        the normalised reference, unchanged).

    Returns
    -------
    callable
        A SpeechBrain dynamic item taking ``id, hypothesis, transcript``.

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"), ["hello", "world"])
    >>> memo = {}
    >>> pipeline = make_text_pipeline(tok, max_tokens=128, memo=memo)
    >>> ids, labels, targets = pipeline.func("u1", "hello word", "hello world")  # the generator
    >>> labels.tolist(), list(memo)
    ([0, 0, 1, 1, 1, 2, -100], [('u1', 'hello word', 'hello world')])
    """
    if text_source not in TEXT_SOURCES:
        raise ValueError(f"text_source must be one of {TEXT_SOURCES}, got {text_source!r}")
    if correction_mode not in ("selective", "full"):
        raise ValueError(f"correction_mode must be 'selective' or 'full', got {correction_mode!r}")

    def encode(utt_id, hypothesis, transcript):
        """``(input ids, AED labels, AEC targets)`` of one utterance, as plain Python values."""
        text = text_of(hypothesis, transcript, text_source, utt_id)
        if not with_corrections:
            ids = encode_hypothesis(text, tokenizer, max_tokens, keep_punctuation)
            return ids, [IGNORE_INDEX] * len(ids), {}
        aligned = align_transcripts(text, transcript, tokenizer, max_tokens, keep_punctuation)
        targets = aligned.targets
        if correction_mode == "full":
            targets = {0: full_correction_target(transcript, tokenizer)}
        return aligned.input_ids, aligned.labels, targets

    @sb.utils.data_pipeline.takes("id", "hypothesis", "transcript")
    @sb.utils.data_pipeline.provides("input_ids", "aed_labels", "aec_targets")
    def text_pipeline(utt_id, hypothesis, transcript):
        key = (utt_id, hypothesis, transcript)
        item = memo.get(key) if memo is not None else None
        if item is None:
            item = encode(utt_id, hypothesis, transcript)
            if memo is not None:
                memo[key] = item
        ids, labels, targets = item
        yield torch.tensor(ids, dtype=torch.long)
        yield torch.tensor(labels, dtype=torch.long)
        yield dict(targets)  # a copy: a consumer that edits it leaves the memo intact

    return text_pipeline


def make_audio_pipeline(max_audio_seconds=None, random_crop=False):
    """Audio pipeline: 16 kHz mono waveform, cropped to ``max_audio_seconds`` when given.

    Arguments
    ---------
    max_audio_seconds : float, optional
        Longest waveform returned; None keeps the whole utterance.
    random_crop : bool
        Crop a window at a uniformly drawn start (seeded by torch's RNG) instead of the prefix.

    Returns
    -------
    callable
        A SpeechBrain dynamic item taking ``wav``, providing ``sig``.
    """

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return load_audio(wav, max_seconds=max_audio_seconds, random_crop=random_crop)

    return audio_pipeline


def dataio_prep(
    manifests,
    tokenizer,
    label_encoder_path,
    text_source="hypothesis",
    correction_mode="selective",
    max_audio_seconds=None,
    max_tokens=None,
    with_corrections=True,
    keep_punctuation=False,
):
    """Build the datasets and the label encoder from JSON manifests.

    Arguments
    ---------
    manifests : dict
        Split name -> manifest path (``train`` is required, it defines the label set).
    tokenizer : transformers tokenizer
        The text encoder's tokenizer.
    label_encoder_path : str
        Where the ``CategoricalEncoder`` is saved (``label_encoder.txt``).
    text_source, correction_mode, max_tokens, with_corrections, keep_punctuation : see
        :func:`make_text_pipeline`; the text items of every utterance are computed here, once
        (a missing hypothesis fails here, before training).
    max_audio_seconds : float, optional
        Crop longer ``train`` utterances to a random window of this many seconds (training
        memory; a new window each time an utterance is read, drawn with torch's RNG, which
        SpeechBrain seeds). Every other split (valid, test) reads the whole utterance, as the
        paper evaluates.

    Returns
    -------
    datasets : dict
        Split name -> ``DynamicItemDataset``.
    label_encoder : speechbrain.dataio.encoder.CategoricalEncoder
    """
    label_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("emo")
    @sb.utils.data_pipeline.provides("emo", "emo_encoded")
    def label_pipeline(emo):
        yield emo
        yield label_encoder.encode_label_torch(emo)

    if "train" not in manifests:
        raise ValueError(
            f"dataio_prep needs a 'train' manifest (it defines the label set), got splits "
            f"{sorted(manifests)}"
        )
    if max_audio_seconds is not None and max_audio_seconds <= 0:
        raise ValueError(
            f"max_audio_seconds must be > 0 (or null for no crop), got {max_audio_seconds}"
        )
    memo = {}
    text_pipeline = make_text_pipeline(
        tokenizer, text_source, correction_mode, max_tokens, with_corrections, memo,
        keep_punctuation,
    )
    audio_pipelines = {
        "train": make_audio_pipeline(max_audio_seconds, random_crop=True),
        "eval": make_audio_pipeline(None),  # valid/test: the whole utterance
    }
    datasets = {}
    for split, path in manifests.items():
        audio_pipeline = audio_pipelines["train" if split == "train" else "eval"]
        datasets[split] = sb.dataio.dataset.DynamicItemDataset.from_json(
            json_path=path,
            dynamic_items=[audio_pipeline, text_pipeline, label_pipeline],
            output_keys=["id", "sig", "emo_encoded", "input_ids", "aed_labels", "aec_targets"],
        )
    label_encoder.load_or_create(
        path=label_encoder_path, from_didatasets=[datasets["train"]], output_key="emo"
    )
    start = time.perf_counter()
    for dataset in datasets.values():  # the text items, once per utterance (audio untouched)
        with dataset.output_keys_as(["input_ids"]):
            for index in range(len(dataset)):
                dataset[index]
    logger.info("text items of %d utterances computed in %.1f s", len(memo),
                time.perf_counter() - start)
    return datasets, label_encoder
