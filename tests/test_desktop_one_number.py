"""One film, one number: the study tree, the result panel, the PDF export and ``classify_files`` (the CLI's
loop, reading files the CLI's way) give the same probabilities for a film, because the app's model reads
every film as ``DecodeRequest.for_model`` decodes it (``cxr_desktop.controllers.workspace.model_image``),
while the viewer shows it at full resolution with the heat-map of that same prediction."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.controllers.classification import model_request  # noqa: E402
from cxr_desktop.controllers.export_context import gather  # noqa: E402
from cxr_desktop.main_window import MainWindow  # noqa: E402
from cxr_desktop.settings import SETTINGS_ENV, AppSettings  # noqa: E402

from cxr_engine import classify_files  # noqa: E402
from cxr_engine.display_text import format_percent  # noqa: E402
from cxr_engine.reading.read import read_image  # noqa: E402

from conftest import film_folder  # noqa: E402
from model_factory import BUNDLED_CARD  # noqa: E402

WAIT_MS = 120_000
#: JPEG 2000 (reduced ×4 and ×2 for the model: resolution levels), JPEG baseline (×2: DCT scaling) and
#: native (no cheaper path: the full decode).
FILMS = ["966_fixed.dcm", "JPEG2KLossless_1s_1f_u_16_16.dcm",
         "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm", "CR-MONO1-10-chest.dcm"]


@pytest.fixture()
def films(tmp_path, dicom_dir) -> Path:
    missing = [name for name in FILMS if not (dicom_dir / name).exists()]
    if missing:
        pytest.skip(f"not in ../shared/data/dicom: {', '.join(missing)}")
    return film_folder(tmp_path, dicom_dir, FILMS)


def test_tree_panel_pdf_and_classify_files_give_one_probability_per_film(qtbot, films, tmp_path, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "settings.ini"))
    window = MainWindow(AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)),
                        model=str(BUNDLED_CARD), device="cpu", backend="onnx", models_dir=tmp_path / "no_models")
    try:
        with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
            window.open_paths([films])
        paths = sorted(window.browser.image_paths())
        assert sorted(p.name for p in paths) == sorted(FILMS)
        window.start_model()
        qtbot.waitUntil(lambda: window.classification.service.ready, timeout=WAIT_MS)
        service = window.classification.service
        with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS):
            window.classify_everything()
        tree = {p: service.results.prediction(p) for p in paths}
        tree_text = {p: window.browser.result_text(p) for p in paths}  # (text, tooltip)

        # The CLI's loop and the CLI's reading of the files, with the same classifier.
        classifier, card = service.classifier, service.card
        reader = functools.partial(read_image, request=model_request(card))
        cli = {event.path: event.prediction for event in classify_files(paths, classifier, reader=reader)
               if event.done}

        panel, reductions = {}, {}
        for path in paths:
            service.results.forget(path)  # the panel's own pass, not classify-all's stored prediction
            with qtbot.waitSignal(window.heatmapShown, timeout=WAIT_MS,
                                  check_params_cb=lambda shown, path=path: Path(shown) == path):
                window.show_image(path)
            panel[path] = window.result.prediction
            heatmap_result = service.results.heatmap(path)
            assert heatmap_result.prediction is panel[path]  # the heat-map shown belongs to the prediction shown
            assert window.viewer.heatmap is heatmap_result.heatmap and heatmap_result.heatmap.shape == window.viewer.image.shape
            assert window.viewer.image.reduction == 1  # the viewer keeps the full-resolution film
            reductions[path.name] = window.workspace.model_image(path, model_request(card)).reduction

        context = window.classification.export_context(window.workspace)
        pdf = {}
        for path, item, heatmap_result, reason in gather(context, paths, {}):  # every film classified for the PDF
            assert heatmap_result is not None, reason
            assert heatmap_result.heatmap.shape == item.image.shape and item.image.reduction == 1
            pdf[path] = heatmap_result.prediction

        for path in paths:
            expected = cli[path].probabilities
            assert tree[path].probabilities == expected, path.name
            assert panel[path].probabilities == expected, path.name
            assert pdf[path].probabilities == expected, path.name
            # out of the model's scope, the tree shows no score, its tooltip the same one, marked not reliable
            text, tip = tree_text[path]
            assert format_percent(max(expected)) in (tip if text.startswith("⚠ out of") else text), (path.name, text)
        # The films really were read at different resolutions for the model and the viewer.
        assert reductions == {"966_fixed.dcm": 4, "JPEG2KLossless_1s_1f_u_16_16.dcm": 2,
                              FILMS[2]: 2, "CR-MONO1-10-chest.dcm": 1}
    finally:
        window.close()
        window.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
