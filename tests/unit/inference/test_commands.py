"""The command lines (issue 8 §5): what every m4ser command shares (options, help, entry points).

``m4ser-classify`` on a trained model: ``tests/integration/test_classify.py``.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from m4ser_lobes.testing import mini_iemocap as mini_corpus
from m4ser_lobes.inference import classify, export
from m4ser_lobes.text import asr

#: console script -> (module, its parser builder); the scripts of setup.py's entry points.
COMMANDS = {
    "m4ser-asr": ("m4ser_lobes.text.asr", asr.build_parser),
    "m4ser-mini-corpus": ("m4ser_lobes.testing.mini_iemocap", mini_corpus.build_parser),
    "m4ser-export": ("m4ser_lobes.inference.export", export.build_parser),
    "m4ser-classify": ("m4ser_lobes.inference.classify", classify.build_parser),
}


def test_entry_points_are_the_commands_tested_here():
    setup = (Path(__file__).resolve().parents[3] / "setup.py").read_text()
    for script, (module, _) in COMMANDS.items():
        assert f'"{script}={module}:main"' in setup


def _parsers(parser):
    """The parser and its sub-command parsers."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_every_option_is_documented_with_its_default_in_one_style(script):
    _, build = COMMANDS[script]
    for parser in _parsers(build()):
        formatter = parser._get_formatter()
        # one of a required group must be given (m4ser-asr --model | --hparams): no default
        groups = parser._mutually_exclusive_groups
        chosen = {a for group in groups if group.required for a in group._group_actions}
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{script}: {name} has no help"
            for option in action.option_strings:
                assert option.startswith("--") and "_" not in option, f"{script}: {option}"
            flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            if action.option_strings and not action.required and not flag and action not in chosen:
                text = formatter._expand_help(action)
                assert "default" in text, f"{script} {name}: no default in {text!r}"
                if action.default not in (None, [], False):
                    assert f"(default: {action.default})" in text, (script, name, text)


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_help_names_the_command_as_it_was_run(script, monkeypatch):
    module, build = COMMANDS[script]
    monkeypatch.setattr(sys, "argv", [str(Path(sys.executable).parent / script), "--help"])
    assert build().format_usage().startswith(f"usage: {script} ")
    monkeypatch.setattr(sys, "argv", [f"/somewhere/{module.replace('.', '/')}.py", "--help"])
    assert build().format_usage().startswith(f"usage: python -m {module} ")


def test_help_of_the_module_and_of_the_console_script():
    """Real processes: ``python -m`` names the module, the installed script its own name."""
    run = subprocess.run(
        [sys.executable, "-m", "m4ser_lobes.inference.classify", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.startswith("usage: python -m m4ser_lobes.inference.classify ")
    assert "--asr-model" in run.stdout and "--asr-backend" in run.stdout
    script = Path(sys.executable).parent / "m4ser-classify"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e .)")
    run = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("usage: m4ser-classify ")
