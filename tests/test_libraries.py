"""cxr_engine.libraries.library_installed: the one check for an optional library (used by the
backend choice, the lung fields, the settings dialog and the bundle's self-report)."""
from __future__ import annotations

import sys
from pathlib import Path

from cxr_engine.libraries import library_installed

ROOT = Path(__file__).resolve().parents[1]


def test_an_installed_library_is_found_without_importing_it():
    sys.modules.pop("tomllib", None)
    assert library_installed("tomllib")
    assert "tomllib" not in sys.modules
    assert library_installed("numpy.linalg")


def test_a_missing_or_malformed_name_is_not_installed():
    assert not library_installed("no_such_library_for_cxr_reader")
    assert not library_installed("numpy.no_such_submodule")
    assert not library_installed("no_such_parent.child")  # find_spec raises ModuleNotFoundError here
    assert not library_installed(".relative")  # find_spec raises ValueError here


def test_no_other_module_of_the_program_asks_importlib_itself():
    """The program's code (the build scripts under packaging/ aside, which need a spec's location)."""
    program = [*(p for folder in ("cxr_engine", "cxr_desktop", "training") for p in (ROOT / folder).rglob("*.py")),
               ROOT / "packaging" / "cxr_reader.py"]
    askers = [str(p.relative_to(ROOT)) for p in program
              if "find_spec(" in p.read_text(encoding="utf-8") and p.name != "libraries.py"]
    assert askers == []
