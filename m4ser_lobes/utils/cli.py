"""What the console scripts share (``m4ser-classify``, ``m4ser-export``, ``m4ser-asr`` ...).

Every command names itself as it was started (:func:`cli_prog`), shows each option's default in
``--help`` (:class:`HelpFormatter`) and logs to the console in one format
(:func:`log_to_console`); :func:`command_parser` builds such a parser.

Example
-------
>>> parser = command_parser("m4ser-asr", "m4ser_lobes.text.asr", "Transcribe manifests.")
>>> _ = parser.add_argument("--batch-size", type=int, default=8, help="utterances per batch")
>>> "(default: 8)" in parser.format_help()
True
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` of the m4ser commands: every option shows its default.

    ``(default: X)`` is appended to an option with a default value; options without one (None)
    and on/off flags say in their own help what happens when they are not given.
    """

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


def cli_prog(console_script, module):
    """The name a command gives itself in ``--help`` and errors.

    The console script name when run as one (``sys.argv[0]`` is ``.../m4ser-classify``),
    else ``python -m <module>`` (run as a module, or ``main()`` called from Python).

    Example
    -------
    >>> import sys
    >>> monkeypatch = getfixture("monkeypatch")
    >>> monkeypatch.setattr(sys, "argv", ["/venv/bin/m4ser-classify", "--help"])
    >>> cli_prog("m4ser-classify", "m4ser_lobes.inference.classify")
    'm4ser-classify'
    >>> monkeypatch.setattr(sys, "argv", ["/repo/m4ser_lobes/inference/classify.py", "--help"])
    >>> cli_prog("m4ser-classify", "m4ser_lobes.inference.classify")
    'python -m m4ser_lobes.inference.classify'
    """
    name = Path(sys.argv[0] if sys.argv and sys.argv[0] else "").name
    if name in (console_script, f"{console_script}.exe", f"{console_script}-script.py"):
        return console_script
    return f"python -m {module}"


def command_parser(console_script, module, description):
    """The argument parser of a console script: its name (:func:`cli_prog`), :class:`HelpFormatter`.

    Arguments
    ---------
    console_script : str
        The entry point's name (``"m4ser-export"``).
    module : str
        The module that runs with ``python -m`` (``"m4ser_lobes.inference.export"``).
    description : str
        First paragraph of ``--help``.

    Returns
    -------
    argparse.ArgumentParser
    """
    return argparse.ArgumentParser(prog=cli_prog(console_script, module),
                                   formatter_class=HelpFormatter, description=description)


def log_to_console():
    """INFO and above on stderr as ``LEVEL logger: message`` (a command's first step)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
