"""The PDF export makes its pages on the GUI thread (``ReportExport._add_page``), and read each source's header
again there for Burned In Annotation (0028,0301), de-identified or not: a film on a slow network share blocked the
window for each page. The decoder now records it with the film (``ImageMetadata.burned_in_annotation``, across the
isolated decoder too), and a page reads no file.

Real DICOM films copied into tmp, the app's own export path, offscreen."""
from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import pydicom
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pypdf = pytest.importorskip("pypdf")

from cxr_desktop.report_export import ExportRequest  # noqa: E402

from test_desktop import MONO1, SIIM, WAIT_MS, card, make_window, open_and_wait, private_settings  # noqa: E402,F401


@pytest.fixture()
def burned_in_study(tmp_path, dicom_dir) -> Path:
    """Two real films; the first says its pixels carry text (Burned In Annotation YES)."""
    folder = tmp_path / "study"
    folder.mkdir()
    ds = pydicom.dcmread(dicom_dir / SIIM)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(folder / "a_siim.dcm")
    shutil.copy(dicom_dir / MONO1, folder / "b_mono1.dcm")
    return folder


@pytest.fixture()
def gui_thread_reads(monkeypatch):
    """The files ``pydicom.dcmread`` opens on the GUI (main) thread while the export makes a page."""
    from cxr_desktop.report_export import ReportExport

    reads, making = [], threading.local()
    real_read, real_page = pydicom.dcmread, ReportExport._page

    def dcmread(source, *args, **kwargs):
        if getattr(making, "page", False) and threading.current_thread() is threading.main_thread():
            reads.append(source)
        return real_read(source, *args, **kwargs)

    def page(self, *args, **kwargs):
        making.page = True
        try:
            return real_page(self, *args, **kwargs)
        finally:
            making.page = False

    monkeypatch.setattr(pydicom, "dcmread", dcmread)
    monkeypatch.setattr(ReportExport, "_page", page)
    return reads


def _export(qtbot, window, paths, destination: Path, deidentify: bool) -> str:
    with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS) as finished:
        window.start_export(ExportRequest(tuple(paths), destination, deidentify))
    assert Path(finished.args[0]) == destination
    reader = pypdf.PdfReader(io.BytesIO(destination.read_bytes()))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.mark.parametrize("deidentify", [False, True])
def test_the_export_reads_no_header_on_the_gui_thread(qtbot, make_window, burned_in_study, tmp_path,
                                                      gui_thread_reads, deidentify):
    window = make_window(show=True)
    open_and_wait(qtbot, window, burned_in_study)
    paths = sorted(burned_in_study.glob("*.dcm"))
    text = _export(qtbot, window, paths, tmp_path / "out" / "report.pdf", deidentify)
    assert gui_thread_reads == [], gui_thread_reads
    # De-identified, the film that says it has burned-in text is still said to (from the decoded film's metadata).
    assert ("BURNED-IN TEXT KEPT" in text) == deidentify
    assert ("burned into" in text) == deidentify
