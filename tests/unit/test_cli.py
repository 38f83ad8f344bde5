"""The `anigan` command line: version, help for every command, overrides, one-line user errors."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from anigan import __version__
from anigan.cli import COMMANDS, cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version_is_printed():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_group_help_lists_every_registered_command():
    result = run("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name):
    result = run(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_a_bad_override_is_one_line_naming_the_key(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "anigan", "--params", str(tmp_path / "none.yaml"), "doctor"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.yaml'}: params file not found"]


def test_an_override_without_equals_is_a_usage_error():
    result = CliRunner().invoke(cli, ["-S", "lr", "doctor"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_an_out_of_range_override_names_key_and_allowed_values():
    proc = subprocess.run([sys.executable, "-m", "anigan", "-S", "lr=-3", "doctor"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "train.lr = -3: must be a number > 0.0" in proc.stderr
    assert "Traceback" not in proc.stderr
