"""Using a trained model: ``m4ser-export`` writes a shareable folder (:mod:`.export`: the packaged
``inference.yaml`` filled by :mod:`.config`, the ``model_card.md`` template filled by :mod:`.card`),
:class:`M4SERClassifier` loads it (:mod:`.classifier`, with :mod:`.folder` and :mod:`.windows`),
``m4ser-classify`` runs it over files (:mod:`.classify`).

    from m4ser_lobes.inference import M4SERClassifier
"""

from m4ser_lobes.inference.classifier import (  # noqa: F401
    ASRUnavailableError,
    M4SERClassifier,
    TranscriptInfo,
)

__all__ = ["ASRUnavailableError", "M4SERClassifier", "TranscriptInfo"]
