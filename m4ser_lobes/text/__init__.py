"""The text side (paper §III-C, §III-D): normalisation, AED labels and AEC targets from the
alignment of an ASR hypothesis with its reference, and the Whisper transcribers that make the
hypotheses.

==================  ===========================================================================
module              holds
==================  ===========================================================================
``tags``            the AED tag set :class:`~m4ser_lobes.text.tags.AEDTag` and ``IGNORE_INDEX``
``normalize``       the one text normaliser (WER, alignment, text encoder; punctuation kept)
``tokens``          tokenisation with a word index per token; ``encode_text``, ``encode_hypothesis``
``alignment``       AED labels and AEC targets of one utterance; ``reconstruct``, ``correct``
``targets``         AEC decoder batches (``CorrectionBatch``), ``DEFAULT_AEC_MAX_LEN``
``statistics``      WER and label statistics of a corpus
``transcribers``    Whisper transcribers (``transformers`` and ``faster-whisper`` backends)
``hypotheses``      the JSON hypothesis cache: transcribe once, validate, WER
``provenance``      what a run's text read: the cache's ASR and emptiness, checked against the paper
``asr``             the ``m4ser-asr`` command line
==================  ===========================================================================
"""
