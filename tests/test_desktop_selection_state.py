"""A result belongs to the film and the model named beside it (new-user test, findings 1 and 2).

Offscreen, the real event loop, the bundled classifier on ONNX Runtime and copies of real DICOM films:
when the reader selects another film, the film and the AI result shown before leave the screen at once
(``Loading ‹file name›…`` instead) and a late result of the previous film is never shown for the new one.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from cxr_desktop.qimage import to_rgb_array  # noqa: E402
from cxr_engine.display_text import format_percent  # noqa: E402

from conftest import real_films  # noqa: E402
from desktop_fixtures import card  # noqa: E402,F401  (fixture)
from test_desktop import WAIT_MS, make_window, private_settings, select  # noqa: E402,F401

#: A film that decodes fast, and a JPEG 2000 film that takes about a second to decode on a shared CPU.
FIRST, SLOW = "CR-MONO1-10-chest.dcm", "RG1_J2KI.dcm"


@pytest.fixture()
def films(tmp_path, dicom_dir):
    return real_films(tmp_path / "films", dicom_dir, (FIRST, SLOW))


def shown_and_classified(qtbot, window, path) -> None:
    """Select ``path`` and wait until its film, its prediction and its heat-map are on screen."""
    select(qtbot, window, path)
    qtbot.waitUntil(lambda: window.viewer.path == path and window.result.prediction is not None
                    and window.viewer.heatmap is not None, timeout=WAIT_MS)


def viewport_pixels(view) -> np.ndarray:
    return to_rgb_array(view.viewport().grab().toImage())


def test_selecting_another_film_clears_the_previous_film_and_result_at_once(qtbot, make_window, films):
    window = make_window(show=True)
    window.resize(1200, 800)
    window.classification.start()
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths([films])
    qtbot.waitUntil(lambda: window.classification.service.ready, timeout=WAIT_MS)
    first, slow = films / FIRST, films / SLOW
    shown_and_classified(qtbot, window, first)
    panel = window.result_panel
    assert "%" in panel.top_label.text() and window.viewer.heatmap is not None
    assert viewport_pixels(window.view).mean() > 20  # the film is on screen
    first_result = window.classification.service.cached_heatmap(first)
    assert first_result is not None

    assert window.browser.select_path(slow)
    # At once, before the slow film's decode can end: nothing of the first film is left.
    assert window.workspace.get(slow) is None, "the slow film must still be decoding for this test"
    assert window.viewer.image is None and window.viewer.heatmap is None
    assert window.result.prediction is None and window.result.path == slow
    assert panel.top_label.text() == "—"
    assert panel.status_label.text() == f"Loading {SLOW}…"
    assert all(row.value.text() == "–" for row in panel.bars.values())
    assert "Where the " not in panel.heatmap_caption.text()
    assert window.view.message == f"Loading {SLOW}…"
    pixels = viewport_pixels(window.view)
    assert pixels.mean() < 3, "the first film (or its corner overlay) is still drawn"

    # The first film's result arriving late (e.g. its heat-map request finishing now) is not shown.
    window.classification.service.heatmapReady.emit(first, first_result)
    assert window.result.prediction is None and window.viewer.heatmap is None
    assert panel.top_label.text() == "—"

    with qtbot.waitSignal(window.heatmapShown, timeout=WAIT_MS, check_params_cb=lambda p: p == slow):
        pass
    assert window.viewer.path == slow and window.result.path == slow
    assert window.result.prediction is window.classification.service.cached_heatmap(slow).prediction
    assert panel.status_label.text() != f"Loading {SLOW}…"
    assert viewport_pixels(window.view).mean() > 20
    # And once the new film is shown, the first one's late result still does not replace it.
    window.classification.service.heatmapReady.emit(first, first_result)
    assert window.result.path == slow and window.viewer.path == slow
    assert window.result.prediction is window.classification.service.cached_heatmap(slow).prediction


def test_a_comparison_viewport_clears_its_film_while_the_next_decodes(qtbot, make_window, films):
    window = make_window(show=True)
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths([films])
    window.desk.layouts["1x2"].trigger()
    viewport = window.comparison.viewports[0]
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        viewport.show_path(films / FIRST)
    assert viewport.model.image is not None
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        viewport.show_path(films / SLOW)
        assert viewport.model.image is None and viewport.view.message == f"Loading {SLOW}…"
    assert viewport.model.path == films / SLOW


def test_switching_the_model_drops_every_result_of_the_previous_one(qtbot, make_window, films):
    """Classified with efficientnet-lite0, then Settings → Model efficientnet-b1: no film keeps a lite0
    result, the heat-map and its caption go at once, a late lite0 batch item is dropped, and the shown
    film gets b1's own call."""
    from cxr_engine import classify_files, load_classifier
    from cxr_engine.models.model_card import ModelCard

    from model_factory import BUNDLED_CARD

    other = BUNDLED_CARD.with_name("efficientnet-b1.json")
    if not other.exists():
        pytest.skip(f"second bundled model not found: {other}")
    assert ModelCard.load(other).name != ModelCard.load(BUNDLED_CARD).name
    window = make_window(show=True)
    window.classification.start()
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths([films])
    qtbot.waitUntil(lambda: window.classification.service.ready, timeout=WAIT_MS)
    first = films / FIRST
    shown_and_classified(qtbot, window, first)
    with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS):
        old_batch = window.classify_everything()
    paths = window.browser.image_paths()
    old_predictions = {p: window.result.results.prediction(p) for p in paths}
    assert all(old_predictions.values())
    assert all("%" in window.browser.result_text(p)[0] for p in paths)
    panel = window.result_panel
    assert panel.heatmap_caption.text().startswith("Where the ")

    with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
        window.apply_settings(str(other), "cpu", "onnx")
        # At once: nothing lite0 said is on screen.
        assert [window.browser.result_text(p)[0] for p in paths] == ["…"] * len(paths)
        assert window.viewer.heatmap is None and window.view.heatmap_caption() == ""
        assert "Where the " not in panel.heatmap_caption.text()
        assert window.result.prediction is None and panel.top_label.text() == "—"
        assert all(window.result.results.prediction(p) is None for p in paths)
        assert window.result.image_check is None
        assert window.result.model_name == ModelCard.load(other).name
    # A lite0 batch item delivered late (its worker was stopped by the switch) changes nothing.
    old_batch.yielded.emit((1, len(paths), first, old_predictions[first], "", ""))
    assert window.browser.result_text(first)[0] == "…" and window.result.results.prediction(first) is None

    qtbot.waitUntil(lambda: window.result.prediction is not None and window.viewer.heatmap is not None,
                    timeout=WAIT_MS)
    b1 = load_classifier(str(other), backend="onnx", device="cpu")
    expected = next(e for e in classify_files([first], b1) if e.done).prediction
    shown = window.result.prediction
    np.testing.assert_allclose(shown.probabilities, expected.probabilities, atol=1e-4)
    text, tip = window.browser.result_text(first)
    assert format_percent(max(expected.probabilities)) in text and f"({expected.model_name})" in tip
    assert panel.heatmap_caption.text().startswith("Where the ")
