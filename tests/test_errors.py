"""One error hierarchy: every error about one file, read or written, is a ``FileError`` with ``path``
and ``reason`` (cxr_engine.errors)."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from cxr_engine import errors
from cxr_engine.errors import CxrError, FileError, ImageReadError, ReportError

ROOT = Path(__file__).resolve().parents[1]


def test_every_error_the_engine_defines_lives_in_errors_or_is_not_about_one_file():
    """No module outside cxr_engine/errors.py defines its own "path + reason" error again."""
    own = []
    for path in (ROOT / "cxr_engine").rglob("*.py"):
        if path.name == "errors.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "Error(CxrError)" in text and "self.path = Path(path)" in text:
            own.append(str(path.relative_to(ROOT)))
    assert own == []


@pytest.mark.parametrize("cls", [c for _, c in inspect.getmembers(errors, inspect.isclass)
                                 if issubclass(c, FileError)])
def test_a_file_error_names_the_file_and_the_reason_on_one_line(cls):
    error = cls("/films/a.dcm", "damaged\nheader")
    assert isinstance(error, CxrError)
    assert error.path == Path("/films/a.dcm")
    assert error.reason == "damaged\\nheader"  # a control character from a file stays on one line
    assert str(error) == "/films/a.dcm: damaged\\nheader"


def test_reading_and_writing_raise_the_same_kind_of_error(tmp_path):
    from cxr_engine import read_image
    from cxr_engine.outputs.report import write_report

    with pytest.raises(ImageReadError) as read_error:
        read_image(ROOT / "pyproject.toml")
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    page = _any_report_page()
    with pytest.raises(ReportError) as write_error:
        write_report(blocked / "report.pdf", [page], model_card=None, deidentify=False)
    for error, path in ((read_error.value, ROOT / "pyproject.toml"), (write_error.value, blocked / "report.pdf")):
        assert isinstance(error, FileError) and error.path == path and error.reason
        assert str(error).startswith(f"{path}: ")


def _any_report_page():
    import numpy as np

    from cxr_engine.outputs.report import ReportPage

    return ReportPage(displayed=np.zeros((64, 64), np.uint8), not_classified_reason="not classified")
