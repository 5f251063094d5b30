"""AEC targets: the decoder sequences of a batch, one per CHANGE token (Eqs. 4-7).

:func:`m4ser_lobes.text.alignment.align_transcripts` gives each utterance its targets (CHANGE
position -> the reference WordPiece ids it must become); :func:`batch_correction_targets` stacks
the K targets of a batch into teacher-forcing tensors for :class:`m4ser_lobes.aec.
SelectiveAECDecoder`, cut at :data:`DEFAULT_AEC_MAX_LEN` target tokens unless the caller passes
the configured cap (``aec_max_len`` of ``hparams/m4ser.yaml``). The "w/o AED" ablation (Table IV
C1) uses :func:`full_correction_target` instead: the whole reference, hosted by [CLS].

Shape legend: K CHANGE tokens of a batch, L decoder length (target length + 1).

Example
-------
>>> cb = batch_correction_targets([{1: [7, 8]}, {}], bos_id=2, eos_id=3, pad_id=0)
>>> cb.num_sequences, cb.decoder_input.tolist(), cb.decoder_labels.tolist()
(1, [[2, 7, 8]], [[7, 8, 3]])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from m4ser_lobes.text.normalize import normalize_text
from m4ser_lobes.text.tags import IGNORE_INDEX
from m4ser_lobes.text.tokens import tokenize_words

__all__ = [
    "DEFAULT_AEC_MAX_LEN",
    "full_correction_target",
    "CorrectionBatch",
    "batch_correction_targets",
]

#: Cap on the target tokens of one selective AEC sequence (docs/design.md §4); the YAML's
#: ``aec_max_len`` gives the value a run uses, this is the default of every function.
DEFAULT_AEC_MAX_LEN = 16


def full_correction_target(reference, tokenizer):
    """Target of the "w/o AED" ablation (Table IV C1): the whole normalised reference.

    The host of this single sequence is [CLS] (position 0), i.e. use ``{0: ids}`` as the targets.
    The target is not cut here; :func:`batch_correction_targets` caps it (at ``max_tokens`` in
    training) and counts the cut sequences.

    Arguments
    ---------
    reference : str
        Raw human transcript.
    tokenizer : transformers.PreTrainedTokenizerFast

    Returns
    -------
    list of int
        WordPiece ids without special tokens.

    Example
    -------
    >>> from m4ser_lobes.testing.models import save_wordpiece_tokenizer
    >>> tok = save_wordpiece_tokenizer(getfixture("tmp_path"))
    >>> tok.convert_ids_to_tokens(full_correction_target("Okay. [LAUGHTER] Yes!", tok))
    ['okay', 'yes']
    """
    ids, _, _ = tokenize_words(normalize_text(reference), tokenizer, False)
    return ids


@dataclass
class CorrectionBatch:
    """The K decoder sequences of a batch, one per CHANGE token (docs/design.md §4).

    Arguments
    ---------
    batch_index : torch.LongTensor
        [K] utterance b of each sequence.
    positions : torch.LongTensor
        [K] token position j of the host in the utterance (0 = [CLS]).
    decoder_input : torch.LongTensor
        [K, L] ``[BOS] z_1 .. z_c`` padded with ``pad_id``.
    decoder_labels : torch.LongTensor
        [K, L] ``z_1 .. z_c [EOS]`` padded with -100. A target cut by ``max_len`` ends with -100
        instead of [EOS], so the decoder is never taught to stop inside a longer span.
    decoder_pad_mask : torch.BoolTensor
        [K, L] True = padding.
    num_truncated : int
        Sequences (not tokens) whose target is longer than ``max_len``.
    """

    batch_index: torch.Tensor
    positions: torch.Tensor
    decoder_input: torch.Tensor
    decoder_labels: torch.Tensor
    decoder_pad_mask: torch.Tensor
    num_truncated: int = 0

    @property
    def num_sequences(self):
        """K, the number of decoder sequences."""
        return self.decoder_input.shape[0]

    def to(self, device):
        """Return a copy with every tensor on ``device``."""
        return CorrectionBatch(
            self.batch_index.to(device),
            self.positions.to(device),
            self.decoder_input.to(device),
            self.decoder_labels.to(device),
            self.decoder_pad_mask.to(device),
            self.num_truncated,
        )


def batch_correction_targets(
    targets_per_utt, bos_id, eos_id, pad_id, max_len=DEFAULT_AEC_MAX_LEN
):
    """Stack the AEC targets of a batch into teacher-forcing tensors (Eqs. 4-7).

    Sequences are ordered by utterance, then by position. ``L = min(longest target, max_len) + 1``;
    with K = 0 the tensors have shape [0, 1] and [0].

    Arguments
    ---------
    targets_per_utt : list of dict of int to list of int
        ``Alignment.targets`` of each utterance of the batch (B dicts).
    bos_id, eos_id, pad_id : int
        [BOS] (= [CLS]), [EOS] (= [SEP]) and padding ids of the text vocabulary.
    max_len : int
        Cap on the number of target tokens c: ``aec_max_len`` (default
        :data:`DEFAULT_AEC_MAX_LEN`) for selective correction, the text length limit
        ``max_tokens`` for the whole-utterance targets of :func:`full_correction_target`.

    Returns
    -------
    CorrectionBatch

    Example
    -------
    >>> cb = batch_correction_targets([{3: [7, 8]}, {}, {0: [9], 2: [5, 6, 7]}], 2, 3, 0, max_len=2)
    >>> cb.batch_index.tolist(), cb.positions.tolist(), cb.num_truncated
    ([0, 2, 2], [3, 0, 2], 1)
    >>> cb.decoder_input.tolist()
    [[2, 7, 8], [2, 9, 0], [2, 5, 6]]
    >>> cb.decoder_labels.tolist()
    [[7, 8, 3], [9, 3, -100], [5, 6, -100]]
    >>> cb.decoder_pad_mask.tolist()
    [[False, False, False], [False, False, True], [False, False, False]]
    >>> batch_correction_targets([{}, {}], 2, 3, 0).decoder_input.shape
    torch.Size([0, 1])
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1 target token, got {max_len}")
    rows, num_truncated = [], 0
    for b, targets in enumerate(targets_per_utt):
        for position in sorted(targets):
            z = [int(t) for t in targets[position]]
            cut = len(z) > max_len
            num_truncated += cut
            rows.append((b, int(position), z[:max_len], cut))
    length = max((len(z) for _, _, z, _ in rows), default=0) + 1
    k = len(rows)
    decoder_input = torch.full((k, length), pad_id, dtype=torch.long)
    decoder_labels = torch.full((k, length), IGNORE_INDEX, dtype=torch.long)
    pad_mask = torch.ones((k, length), dtype=torch.bool)
    for row, (_, _, z, cut) in enumerate(rows):
        c = len(z)
        decoder_input[row, : c + 1] = torch.tensor([bos_id] + z, dtype=torch.long)
        decoder_labels[row, : c + 1] = torch.tensor(z + [IGNORE_INDEX if cut else eos_id])
        pad_mask[row, : c + 1] = False
    return CorrectionBatch(
        torch.tensor([r[0] for r in rows], dtype=torch.long),
        torch.tensor([r[1] for r in rows], dtype=torch.long),
        decoder_input,
        decoder_labels,
        pad_mask,
        num_truncated,
    )
