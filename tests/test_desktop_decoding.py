"""The app decodes each film once per size: the viewer, the thumbnails, the current film's classification,
"classify all" and the PDF export share one pool of isolated decoding workers and its cache
(cxr_desktop.image_jobs.shared_decoder, behind cxr_desktop.controllers.workspace.StudyWorkspace)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.image_jobs import shared_decoder  # noqa: E402
from cxr_desktop.main_window import MainWindow  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402
from cxr_desktop.settings import SETTINGS_ENV, AppSettings  # noqa: E402

from cxr_engine.reading.reduced_decode import DecodeRequest  # noqa: E402

from conftest import film_folder  # noqa: E402
from model_factory import BUNDLED_CARD  # noqa: E402

WAIT_MS = 120_000
FILMS = ["966_fixed.dcm", "RG1_J2KI.dcm", "Fake_MONOHR1.dcm", "CR-MONO1-10-chest.dcm"]
#: Films whose thumbnail-sized decode is their full decode (440×440, uncompressed).
FELL_BACK = {"CR-MONO1-10-chest.dcm"}
#: Films whose thumbnail-sized decode is the model's too (RG1_J2KI: only its ×2 level is usable, 978×921).
THUMBNAIL_SERVES_MODEL = FELL_BACK | {"RG1_J2KI.dcm"}


@pytest.fixture()
def films(tmp_path, dicom_dir) -> Path:
    return film_folder(tmp_path, dicom_dir, FILMS)


class CountingPool:
    """The shared decoder's pool, counting what reaches it per (file, size)."""

    def __init__(self, pool):
        self.pool, self.workers, self.reads = pool, pool.workers, Counter()

    def read(self, path, request):
        self.reads[(Path(path).name, request.min_side)] += 1
        return self.pool.read(path, request)


def test_a_film_is_decoded_once_per_size_when_opened_viewed_classified_and_exported(qtbot, films, tmp_path, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    decoder = shared_decoder()
    decoder.clear()
    counting = CountingPool(decoder.pool)
    monkeypatch.setattr(decoder, "pool", counting)
    window = MainWindow(AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)),
                        model=str(BUNDLED_CARD), device="cpu", backend="onnx", models_dir=tmp_path / "no_models")
    try:
        with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):  # opened: the first film is viewed
            window.open_paths([films])
        paths = window.browser.image_paths()
        assert sorted(p.name for p in paths) == sorted(FILMS)
        shown = window.viewer.path
        window.start_model()
        qtbot.waitUntil(lambda: all(not window.browser._images[p].icon(0).isNull() for p in paths), timeout=WAIT_MS)
        thumbnail_px = min(size for (_, size) in counting.reads if size is not None)
        card = window.classification.card
        model_px = DecodeRequest.for_model(card.input_size, card.preprocessing_version).min_side
        assert model_px not in (None, thumbnail_px)
        # The damaged file was refused by the scan, never decoded; the film on screen once more at full size
        # (unless its thumbnail's decode was the full one), and perhaps already at the model's size (its heat-map).
        reads = Counter(counting.reads)
        assert reads.pop((shown.name, None), 0) == 1 or shown.name in FELL_BACK
        reads.pop((shown.name, model_px), None)
        assert reads == Counter({(p.name, thumbnail_px): 1 for p in paths})
        if window.viewer.heatmap is None:  # the current film's classification uses the film on screen
            with qtbot.waitSignal(window.heatmapShown, timeout=WAIT_MS):
                pass
        for _ in range(2):  # the second "classify all" finds every film in the cache
            with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS) as done:
                window.classify_everything()
            assert done.args[0] == len(FILMS)
        assert all(window.browser._images[p].text(1) for p in paths)
        with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS):  # the film on screen, as it is shown
            window.start_export(ExportRequest((shown,), tmp_path / "report.pdf", False))
        assert (tmp_path / "report.pdf").stat().st_size > 0
        # A film whose thumbnail decode is at the model's reduction too is not decoded again for the model.
        want = Counter({**{(p.name, thumbnail_px): 1 for p in paths},
                        **{(p.name, model_px): 1 for p in paths if p.name not in THUMBNAIL_SERVES_MODEL}})
        reads = Counter(counting.reads)
        assert reads.pop((shown.name, None), 0) == 1 or shown.name in FELL_BACK
        assert reads == want, "a film was decoded twice"
        # The model's copies are reduced where the syntax allows (J2K and JPEG), the others full.
        request = DecodeRequest.for_model(card.input_size, card.preprocessing_version)
        reductions = {p.name: decoder.read(p, request).reduction for p in paths}
        assert reductions == {"966_fixed.dcm": 4, "RG1_J2KI.dcm": 2, "Fake_MONOHR1.dcm": 2, "CR-MONO1-10-chest.dcm": 1}
        assert Counter(counting.reads) - Counter({(shown.name, None): 1}) == want
    finally:
        window.close()
        window.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
