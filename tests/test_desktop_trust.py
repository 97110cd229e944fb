"""Heat-maps a reader can trust and the model's limits in the AI panel and the PDF (issue 18, items 3-4).

Real film (``RG1_J2KI.dcm``), the bundled classifier on ONNX Runtime, the app's own scene and panels.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF  # noqa: E402

from cxr_desktop.annotation_model import AnnotationStore  # noqa: E402
from cxr_desktop.heatmap import heatmap_rgba  # noqa: E402
from cxr_desktop.heatmap_layer import OUTLINE_PX  # noqa: E402
from cxr_desktop.image_scene import ImageScene  # noqa: E402
from cxr_desktop.limits_panel import LimitsPanel  # noqa: E402
from cxr_desktop.result_model import ResultModel  # noqa: E402
from cxr_desktop.result_panel import ResultPanel  # noqa: E402
from cxr_desktop.viewer_model import HEATMAP_OUTLINE, ViewerModel  # noqa: E402
from cxr_engine.models.model_card import ModelCard  # noqa: E402
from cxr_engine.models.model_limits import model_limits  # noqa: E402
from cxr_engine.models.suitability import age_group_of  # noqa: E402
from cxr_engine.pixels.overlay import OUTLINE_LEVEL, shown_heat  # noqa: E402

from model_factory import BUNDLED_CARD  # noqa: E402

FILM = "RG1_J2KI.dcm"


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.load(BUNDLED_CARD)


@pytest.fixture(scope="module")
def classified(dicom_dir, card):
    """The film, its renderer, and the heat-maps of its most and least probable classes."""
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.reading.read import read_image
    from cxr_engine.pixels.rendering import Renderer

    image = read_image(dicom_dir / FILM)
    classifier = create_classifier(card, backend="onnx", device="cpu")
    classifier.load()
    top = classifier.predict_with_heatmap(image)
    order = np.argsort(top.prediction.probabilities)
    weak = classifier.predict_with_heatmap(image, card.classes[order[0]])
    return image, Renderer(image), top, weak


def scene_for(qtbot, image, renderer):
    viewer = ViewerModel()
    scene = ImageScene(viewer, AnnotationStore())
    viewer.set_image(image, renderer)
    viewer.set_heatmap_visible(True)
    return viewer, scene


def tint(scene) -> float:
    """Mean absolute RGB difference the heat-map layer makes to the exported rendering."""
    with_map = scene.render_image(512, heatmap=True, annotations=False).astype(np.float32)
    without = scene.render_image(512, heatmap=False, annotations=False).astype(np.float32)
    return float(np.abs(with_map - without).mean())


def test_a_class_at_2_percent_is_drawn_fainter_than_one_at_97(qtbot, classified):
    image, renderer, top, weak = classified
    p_top = top.prediction.probability(top.target_class)
    p_weak = weak.prediction.probability(weak.target_class)
    assert p_top >= 0.9 and p_weak <= 0.05, (p_top, p_weak)  # the film is a confident call
    viewer, scene = scene_for(qtbot, image, renderer)
    viewer.set_heatmap(top.heatmap, top.target_class, p_top)
    strong_tint = tint(scene)
    viewer.set_heatmap(weak.heatmap, weak.target_class, p_weak)
    weak_tint = tint(scene)
    assert strong_tint > 5.0 and weak_tint < 0.05 * strong_tint, (strong_tint, weak_tint)
    # Both raw maps reach 1 (min-max within the image): only the scaling tells them apart.
    assert top.heatmap.max() == pytest.approx(1.0, abs=0.02) and weak.heatmap.max() == pytest.approx(1.0, abs=0.02)


def test_the_same_map_is_fainter_at_2_than_at_97_percent(classified):
    heat = classified[2].heatmap
    faint, strong = heatmap_rgba(heat, 0.02), heatmap_rgba(heat, 0.97)
    assert faint[..., 3].max() == 0 and strong[..., 3].max() == 255
    assert np.array_equal(heatmap_rgba(heat, 1.0), heatmap_rgba(heat))


def test_outline_mode_draws_one_contour_at_the_stated_level(qtbot, classified, card):
    image, renderer, top, weak = classified
    p_top = top.prediction.probability(top.target_class)
    viewer, scene = scene_for(qtbot, image, renderer)
    viewer.set_heatmap_style(HEATMAP_OUTLINE)
    viewer.set_heatmap(top.heatmap, top.target_class, p_top)
    layer = scene.heatmap_layer
    assert layer.outline_item.isVisible() and not layer.pixmap_item.isVisible()
    path = layer.outline_item.path()
    shown = shown_heat(top.heatmap, p_top)
    row, col = np.unravel_index(np.argmax(shown), shown.shape)
    assert path.contains(QPointF(col + 0.5, row + 0.5))
    row, col = np.unravel_index(np.argmin(shown), shown.shape)
    assert not path.contains(QPointF(col + 0.5, row + 0.5))
    inside = [(r, c) for r, c in zip(*np.nonzero(shown >= OUTLINE_LEVEL + 0.1))][::997]
    assert inside and all(path.contains(QPointF(c + 0.5, r + 0.5)) for r, c in inside)
    outside = [(r, c) for r, c in zip(*np.nonzero(shown < OUTLINE_LEVEL - 0.1))][::997]
    assert not any(path.contains(QPointF(c + 0.5, r + 0.5)) for r, c in outside)
    assert tint(scene) > 0.1  # exported with the heat-map
    scene.render_image(2048, heatmap=True)  # a large rendering draws the outline thicker ...
    assert layer.outline_item.pen().widthF() == OUTLINE_PX  # ... and the screen's line is back afterwards

    viewer.set_heatmap(weak.heatmap, weak.target_class, weak.prediction.probability(weak.target_class))
    assert layer.outline_item.path().isEmpty()

    result = ResultModel()
    panel = ResultPanel(result, viewer, _dummy_action())
    qtbot.addWidget(panel)
    assert "never, at this probability" in panel.heatmap_caption.text()
    assert panel.heatmap_style.currentData() == HEATMAP_OUTLINE


def _dummy_action():
    from PySide6.QtGui import QAction

    return QAction("Heat-map")


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_limits_text_in_the_panel_and_the_pdf_equals_the_cards(qtbot, classified, card):
    from cxr_engine.outputs.report import ReportPage, build_report_pdf

    image, renderer, top, _ = classified
    result = ResultModel()
    panel = LimitsPanel(result)
    qtbot.addWidget(panel)
    assert panel.text() == ""
    result.set_model(card.name, card.summary(), tuple(card.classes), not card.meets_bar, card)
    result.set_ready("CPU")
    result.set_image((), header=image.metadata, path=image.path)
    result.set_prediction(top.prediction)
    expected = model_limits(card, top.prediction, age_group_of(image.metadata), result.out_of_scope)
    assert panel.text_label.text() == expected.text() == panel.text()

    # The figures are the card's own, read here straight from its JSON.
    table = card.validation_metrics.get("reliability")
    if table is not None:
        cls = top.prediction.label
        p = top.prediction.probabilities[top.prediction.index]
        b = min(int(p * 10), 9)
        # The patient's age group's own bin; both side by side when the film gives no age.
        for group in [age_group_of(image.metadata)] if age_group_of(image.metadata) else ["adult", "pediatric"]:
            row = table["by_age_group"][group]["by_class"][cls]
            count, positives = row["count"][b], row["positives"][b]
            assert f"{positives} of {count} " in panel.text().splitlines()[0] or count == 0
    result_panel = ResultPanel(result, ViewerModel(), _dummy_action())
    qtbot.addWidget(result_panel)
    notice = result_panel.notice
    assert notice.text() == expected.intended_use == card.intended_use

    page = ReportPage.for_image(image, renderer.render(), heatmap_result=top)
    pdf = build_report_pdf([page], model_card=card, deidentify=True)
    from io import BytesIO

    from pypdf import PdfReader

    # the film's page holds its calibration line; the last page the card's known limits, once for all films
    film_page, limits_page = (_words(page.extract_text()) for page in PdfReader(BytesIO(pdf)).pages)
    assert _words(expected.intended_use) in film_page and _words(expected.calibration) in film_page
    for line in expected.limits:
        assert _words(line) in limits_page
