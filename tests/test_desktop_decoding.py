"""The app decodes each film once per size: thumbnails and "classify all" share one pool of isolated
decoding workers and its cache (cxr_desktop.image_jobs.shared_decoder)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.image_jobs import shared_decoder  # noqa: E402
from cxr_desktop.main_window import MainWindow  # noqa: E402
from cxr_desktop.settings import SETTINGS_ENV, AppSettings  # noqa: E402

from model_factory import BUNDLED_CARD  # noqa: E402

WAIT_MS = 120_000
FILMS = ["966_fixed.dcm", "RG1_J2KI.dcm", "Fake_MONOHR1.dcm", "CR-MONO1-10-chest.dcm"]


@pytest.fixture()
def films(tmp_path, dicom_dir) -> Path:
    folder = tmp_path / "films"
    folder.mkdir()
    for name in FILMS:
        shutil.copy(dicom_dir / name, folder / name)
    (folder / "damaged.dcm").write_bytes(b"DICM" * 40)
    return folder


def test_thumbnails_and_classify_all_decode_each_film_once_per_size(qtbot, films, tmp_path, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    decoder = shared_decoder()
    before = decoder.decodes
    window = MainWindow(AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)),
                        model=str(BUNDLED_CARD), device="cpu", backend="onnx", models_dir=tmp_path / "no_models")
    try:
        with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
            window.open_paths([films])
        paths = window.browser.image_paths()
        assert sorted(p.name for p in paths) == sorted(FILMS)
        window.start_model()
        qtbot.waitUntil(lambda: all(not window.browser._images[p].icon(0).isNull() for p in paths), timeout=WAIT_MS)
        after_thumbnails = decoder.decodes - before
        assert after_thumbnails == len(FILMS)  # the damaged file was refused by the scan, never decoded
        qtbot.waitUntil(lambda: window.classification.service.ready, timeout=WAIT_MS)
        for _ in range(2):  # the second "classify all" finds every film in the cache
            with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS) as done:
                window.classify_everything()
            assert done.args[0] == len(FILMS)
        assert decoder.decodes - before == 2 * len(FILMS)  # one decode per film for thumbnails, one for the model
        assert all(window.browser._images[p].text(1) for p in paths)
        # The model's copies are reduced where the syntax allows (J2K and JPEG), the others full.
        from cxr_engine.reading.reduced_decode import DecodeRequest

        card = window.classification.card
        request = DecodeRequest.for_model(card.input_size, card.preprocessing_version)
        reductions = {p.name: decoder.read(p, request).reduction for p in paths}
        assert reductions == {"966_fixed.dcm": 4, "RG1_J2KI.dcm": 2, "Fake_MONOHR1.dcm": 2, "CR-MONO1-10-chest.dcm": 1}
        assert decoder.decodes - before == 2 * len(FILMS)
    finally:
        window.close()
        window.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
