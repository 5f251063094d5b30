"""M4SER for SpeechBrain: the paper's modules, its corpora, training runs and inference.

The layout of the package: ``docs/design.md`` §12. This module holds what every part may say
about the project itself, and nothing that costs an import: the distribution's name and how to
install it (:func:`install_command`). The project is published on no package index (``pip
install m4ser-speechbrain`` finds nothing): it is installed from a copy of its source tree.

Importing the package also quiets one misleading SpeechBrain warning (:func:`_quiet_torchvision`).

Example
-------
>>> DISTRIBUTION, install_command(), install_command("faster-whisper")
('m4ser-speechbrain', 'pip install -e .', 'pip install -e ".[faster-whisper]"')
"""

import logging

#: The distribution's name (``setup.py`` ``name``; tests/unit/inference/test_install_and_help.py
#: keeps them equal).
DISTRIBUTION = "m4ser-speechbrain"

__all__ = ["DISTRIBUTION", "install_command", "install_hint"]


def install_command(extra=None):
    """The command that installs this project, run in a copy of its source tree.

    Arguments
    ---------
    extra : str, optional
        An extra of ``setup.py`` (``faster-whisper``, ``test``, ``dev``).

    Returns
    -------
    str
    """
    return f'pip install -e ".[{extra}]"' if extra else "pip install -e ."


def install_hint(extra=None):
    """Where and how to install this project (with ``extra``): one clause for messages and help.

    Example
    -------
    >>> install_hint("faster-whisper")
    'in a copy of the m4ser-speechbrain source tree (it is on no package index):
     pip install -e ".[faster-whisper]"'
    """
    return (f"in a copy of the {DISTRIBUTION} source tree (it is on no package index): "
            f"{install_command(extra)}")


class _DropMessage(logging.Filter):
    """Drops the records whose message starts with ``prefix``."""

    def __init__(self, prefix):
        super().__init__()
        self.prefix = prefix

    def filter(self, record):
        return not str(record.msg).startswith(self.prefix)


def _quiet_torchvision():
    """Silence SpeechBrain's "torchvision is not available - cannot save figures".

    ``speechbrain.utils.train_logger`` logs it when it is imported without torchvision (the
    training YAML's ``FileTrainLogger`` imports it). The figures of this project (confusion
    matrices, loss curves) are drawn with matplotlib and are all saved; torchvision would only
    serve SpeechBrain's ``ProgressSampleLogger`` image saver, which M4SER does not use.
    """
    logging.getLogger("speechbrain.utils.train_logger").addFilter(
        _DropMessage("torchvision is not available")
    )


_quiet_torchvision()
