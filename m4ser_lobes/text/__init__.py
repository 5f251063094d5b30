"""The text side (paper §III-C, §III-D): normalisation, AED labels and AEC targets from the
alignment of an ASR hypothesis with its reference, and the Whisper transcribers that make the
hypotheses."""
