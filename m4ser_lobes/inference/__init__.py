"""Using a trained model: ``m4ser-export`` writes a shareable folder (:mod:`.export`: the packaged
``inference.yaml`` filled by :mod:`.hparams`, the ``model_card.md`` template filled by :mod:`.card`,
published by :mod:`.folder`), :class:`M4SERClassifier` loads it (:mod:`.classifier`, after
:mod:`.safety` checked its YAML; files read by :mod:`.windows`, the ASR loaded by :mod:`.asr`),
``m4ser-classify`` runs it over files (:mod:`.classify`).

    from m4ser_lobes.inference import M4SERClassifier
"""

from m4ser_lobes.inference.classifier import (  # noqa: F401
    ASRUnavailableError,
    M4SERClassifier,
    TranscriptInfo,
)

__all__ = ["ASRUnavailableError", "M4SERClassifier", "TranscriptInfo"]
