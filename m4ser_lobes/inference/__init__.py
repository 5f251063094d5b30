"""Using a trained model: ``m4ser-export`` writes a shareable folder (:mod:`.export`),
:class:`M4SERClassifier` loads it (:mod:`.classifier`), ``m4ser-classify`` runs it over files
(:mod:`.classify`).

    from m4ser_lobes.inference import M4SERClassifier
"""

from m4ser_lobes.inference.classifier import (  # noqa: F401
    ASRUnavailableError,
    M4SERClassifier,
    TranscriptInfo,
)

__all__ = ["ASRUnavailableError", "M4SERClassifier", "TranscriptInfo"]
