"""The AED tag set and the label-padding index, defined once for the whole package.

M4SER's ASR error detection (AED, paper Eqs. 2-3) tags every WordPiece token of the ASR
hypothesis as KEEP, DELETE or CHANGE (docs/design.md §4). Labels that no loss must read
([SEP], padding, a cut AEC target) carry ``IGNORE_INDEX``, the ``ignore_index`` of
``torch.nn.functional.cross_entropy``.

Example
-------
>>> [int(tag) for tag in AEDTag], NUM_AED_TAGS, LABEL_NAMES
([0, 1, 2], 3, ('keep', 'delete', 'change'))
>>> AEDTag.CHANGE == 2, IGNORE_INDEX
(True, -100)
"""

from enum import IntEnum

__all__ = ["AEDTag", "NUM_AED_TAGS", "LABEL_NAMES", "IGNORE_INDEX"]


class AEDTag(IntEnum):
    """AED tag of one hypothesis token (Eq. 2); the value is the class index of the AED head."""

    KEEP = 0  # the token is right
    DELETE = 1  # the token is an ASR insertion (or a non-final piece of a CHANGE word)
    CHANGE = 2  # the token must become its AEC target


#: Number of AED classes, the output width of :class:`m4ser_lobes.heads.AEDHead`.
NUM_AED_TAGS = len(AEDTag)
#: Lowercase tag names in class order, as in label statistics.
LABEL_NAMES = tuple(tag.name.lower() for tag in AEDTag)
#: Label of positions no loss reads (``F.cross_entropy``'s ``ignore_index``).
IGNORE_INDEX = -100
