"""The console scripts that setup.cfg declares: each names a command that exists."""

import configparser
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nengo_actions.config import PROJECT_ROOT


def console_scripts():
    cfg = configparser.ConfigParser()
    cfg.read(PROJECT_ROOT / "setup.cfg")
    lines = [line.strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines() if line.strip()]
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_every_command_has_a_console_script_that_imports():
    scripts = console_scripts()
    assert set(scripts) == {
        "nengo-actions-train", "nengo-actions-extract", "nengo-actions-prepare-events",
        "nengo-actions-sweep", "nengo-actions-gui", "nengo-actions-cross-validate", "nengo-actions-export",
    }
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target


#: Console scripts are installed beside the interpreter of the environment.
PREPARE = shutil.which("nengo-actions-prepare-events", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(PREPARE is None, reason="the package is not installed in this environment")
def test_an_installed_console_script_runs_and_reports_bad_input(tmp_path):
    proc = subprocess.run([PREPARE, "-c", str(tmp_path / "absent.json")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "absent.json" in proc.stderr
