"""Comparison view (issue 18 item 1) on real DICOM files: 1×2 / 2×2 viewports, drags from the
study browser, linked window/level, zoom and pan, the prior study and the lateral offered, and
each viewport with its own heat-map and annotations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402

from cxr_desktop.annotation_model import ARROW, Annotation  # noqa: E402
from cxr_desktop.comparison import view_geometry  # noqa: E402
from cxr_desktop.presets import drag_start_window  # noqa: E402
from cxr_desktop.viewer_model import HEATMAP_OUTLINE  # noqa: E402

from test_desktop import (  # noqa: E402,F401  (fixtures)
    SIIM, WAIT_MS, card, drag, make_window, open_and_wait, private_settings, select, study, wait_classified,
)


def show_in(qtbot, viewport, path: Path) -> None:
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        viewport.show_path(path)


def window_of(model):
    return drag_start_window(model.image, model.voi)


@pytest.fixture()
def compared(qtbot, make_window, study):
    """A shown window in 1×2 with siim.dcm in the main viewer and mono1.dcm beside it."""
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "siim.dcm")
    window.desk.layouts["1x2"].trigger()
    viewport = window.comparison.viewports[0]
    show_in(qtbot, viewport, study / "sub" / "mono1.dcm")
    assert viewport.view.isVisible() and window.view.isVisible()
    return window, viewport


def test_linked_window_level_moves_both_viewports_by_the_same_amount(qtbot, compared):
    window, viewport = compared
    main, other = window.viewer, viewport.model
    view = window.view
    centre = QPointF(view.viewport().width() / 2, view.viewport().height() / 2)

    # Unlinked: a drag in the main viewer leaves the other alone.
    before = window_of(other)
    drag(view, centre, centre + QPointF(50, 20), Qt.MouseButton.RightButton)
    assert window_of(other) == before

    window.desk.link.trigger()
    assert window.comparison.linker.enabled
    start_main, start_other = window_of(main), window_of(other)
    drag(view, centre, centre + QPointF(120, 40), Qt.MouseButton.RightButton)
    moved_main, moved_other = window_of(main), window_of(other)
    d_centre, d_width = moved_main.center - start_main.center, moved_main.width - start_main.width
    assert abs(d_centre) > 1 and abs(d_width) > 1
    assert moved_other.center - start_other.center == pytest.approx(d_centre)
    assert moved_other.width - start_other.width == pytest.approx(d_width)

    # And the other way round: a drag in the comparison viewport moves the main viewer as much.
    other_view = viewport.view
    middle = QPointF(other_view.viewport().width() / 2, other_view.viewport().height() / 2)
    start_main, start_other = window_of(main), window_of(other)
    drag(other_view, middle, middle + QPointF(-30, 60), Qt.MouseButton.RightButton)
    d_centre = window_of(other).center - start_other.center
    d_width = window_of(other).width - start_other.width
    assert abs(d_centre) > 1
    assert window_of(main).center - start_main.center == pytest.approx(d_centre)
    assert window_of(main).width - start_main.width == pytest.approx(d_width)


def test_linked_zoom_and_pan_follow_relative_to_each_image(qtbot, compared):
    window, viewport = compared
    window.desk.link.trigger()
    window.view.zoom_by(2.0)
    main_zoom, main_centre = view_geometry(window.view)
    other_zoom, other_centre = view_geometry(viewport.view)
    assert main_zoom == pytest.approx(2.0, rel=0.05)  # fitInView leaves a small margin
    assert other_zoom == pytest.approx(main_zoom, rel=0.02)
    view = window.view
    start = QPointF(view.viewport().width() / 2, view.viewport().height() / 2)
    drag(view, start, start + QPointF(60, -40), Qt.MouseButton.MiddleButton)
    _, main_centre = view_geometry(window.view)
    _, other_centre = view_geometry(viewport.view)
    assert main_centre.x() != pytest.approx(0.5, abs=0.01)
    assert other_centre.x() == pytest.approx(main_centre.x(), abs=0.02)
    assert other_centre.y() == pytest.approx(main_centre.y(), abs=0.02)
    window.acts.fit.trigger()
    assert viewport.view.fit_mode

    window.desk.link.trigger()  # unlinked: zoom stays apart
    window.view.zoom_by(1.5)
    assert view_geometry(viewport.view)[0] == pytest.approx(1.0, rel=0.05)


def test_a_study_dragged_from_the_browser_shows_in_the_viewport_it_is_dropped_on(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    window.comparison.set_layout("2x2")
    browser = window.browser
    target = study / "sub" / "mono1.dcm"
    item = browser._images[target]
    study_item = item.parent().parent()  # image -> series -> study
    mime = browser.mime_for(study_item)
    assert browser.paths_under(study_item)[0] == target
    viewport = window.comparison.viewports[2]  # bottom right
    # Qt delivers a synthetic drop only during a real drag, so the viewport's drop handler gets it directly.
    port = viewport.view.viewport()
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    assert viewport.drop_target.eventFilter(port, enter) and enter.isAccepted()
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        assert viewport.drop_target.eventFilter(port, drop)
    assert viewport.model.path == target and viewport.view.isVisible()
    # A file dragged in from outside (no browser paths) is left to the window, which opens it.
    outside = QMimeData()
    outside.setUrls([QUrl.fromLocalFile(str(target))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, outside, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    assert not viewport.drop_target.eventFilter(port, enter)
    # Dropped on the main viewer, an image becomes the current one.
    siim = study / "siim.dcm"
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, browser.mime_for(browser._images[siim]),
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    if window.viewer.path != siim:
        with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
            window.comparison.main_drop_target.eventFilter(window.view.viewport(), drop)
    assert window.viewer.path == siim


@pytest.fixture()
def follow_up(tmp_path, dicom_dir) -> Path:
    """One patient with two studies (2023 and 2024, copies of a real film with new UIDs and dates)
    and, in the 2024 study, a second film marked LATERAL."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path / "follow_up"
    folder.mkdir()
    studies = {"20230115": generate_uid(), "20240301": generate_uid()}
    files = (("prior.dcm", "20230115", "PA"), ("current.dcm", "20240301", "PA"), ("lateral.dcm", "20240301", "LATERAL"))
    for number, (name, date, view) in enumerate(files, start=1):
        ds = pydicom.dcmread(dicom_dir / SIIM)
        ds.PatientID, ds.PatientName = "FU-1", "FOLLOW^UP"
        ds.StudyInstanceUID, ds.StudyDate = studies[date], date
        ds.SeriesInstanceUID = generate_uid() if view == "PA" else generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.ViewPosition, ds.InstanceNumber = view, number
        ds.save_as(folder / name)
    return folder


def test_the_prior_study_and_the_lateral_are_offered_and_shown_side_by_side(qtbot, make_window, follow_up):
    window = make_window(show=True)
    open_and_wait(qtbot, window, follow_up)
    offers = window.comparison.offers
    select(qtbot, window, follow_up / "current.dcm")
    assert offers.isVisible()
    assert offers.prior == follow_up / "prior.dcm" and "2023-01-15" in offers.label.text()
    assert offers.lateral == follow_up / "lateral.dcm"
    viewport = window.comparison.viewports[0]
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        offers.prior_button.click()
    assert window.comparison.layout_name == "1x2" and viewport.model.path == follow_up / "prior.dcm"
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        offers.lateral_button.click()
    assert viewport.model.path == follow_up / "lateral.dcm"
    # The prior itself has no earlier study; a lateral is not offered for a lateral.
    select(qtbot, window, follow_up / "prior.dcm")
    assert offers.prior is None and offers.lateral is None and not offers.isVisible()


def test_each_viewport_keeps_its_own_heatmap_and_annotations(qtbot, compared, study):
    window, viewport = compared
    wait_classified(qtbot, window)
    if viewport.model.heatmap is None:
        with qtbot.waitSignal(window.service.heatmapReady, timeout=WAIT_MS):
            pass
    qtbot.waitUntil(lambda: viewport.model.heatmap is not None, timeout=WAIT_MS)
    main_map, other_map = window.viewer.heatmap, viewport.model.heatmap
    assert main_map.shape == window.viewer.image.shape and other_map.shape == viewport.model.image.shape
    assert np.array_equal(other_map, window.service.cached_heatmap(viewport.model.path).heatmap)
    window.acts.heatmap.trigger()
    assert viewport.scene.heatmap_item.isVisible() and window.scene.heatmap_item.isVisible()
    heatmap_result = window.service.cached_heatmap(viewport.model.path)
    assert viewport.model.heatmap_probability == pytest.approx(heatmap_result.prediction.probability(heatmap_result.target_class))
    window.viewer.set_heatmap_style(HEATMAP_OUTLINE)  # one style for every viewport
    assert viewport.model.heatmap_style == HEATMAP_OUTLINE

    arrow = viewport.scene.commit(Annotation(ARROW, ((10.0, 10.0), (80.0, 90.0)))).annotation
    assert window.annotations.for_path(viewport.model.path) == [arrow]
    assert window.annotations.for_path(window.viewer.path) == []
    assert len(viewport.scene.annotation_items()) == 1 and window.scene.annotation_items() == []
    # The same image later shown in the main viewer brings its annotation along.
    select(qtbot, window, viewport.model.path)
    assert [item.annotation.id for item in window.scene.annotation_items()] == [arrow.id]


@pytest.fixture()
def icu_day(tmp_path, dicom_dir) -> Path:
    """One patient's two portable studies of one day (08:00 and 18:00, copies of a real film with new UIDs);
    the morning study's first film is a lateral, its second the AP."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path / "icu_day"
    folder.mkdir()
    studies = {"080000": generate_uid(), "180000": generate_uid()}
    files = (("morning_lat.dcm", "080000", "LATERAL"), ("morning_ap.dcm", "080000", "AP"),
             ("evening_ap.dcm", "180000", "AP"))
    for number, (name, time, view) in enumerate(files, start=1):
        ds = pydicom.dcmread(dicom_dir / SIIM)
        ds.PatientID, ds.PatientName = "ICU-7", "PORTABLE^PAT"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = studies[time], "20240301", time
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.ViewPosition, ds.InstanceNumber = view, number
        ds.save_as(folder / name)
    return folder


def test_a_same_day_study_is_the_prior_and_its_frontal_film_is_offered(qtbot, make_window, icu_day):
    """A reading radiologist's finding: the morning portable of the same day was not offered (dates only were
    compared), and a prior study whose first film is a lateral offered the lateral beside the current AP."""
    window = make_window(show=True)
    open_and_wait(qtbot, window, icu_day)
    select(qtbot, window, icu_day / "evening_ap.dcm")
    offers = window.comparison.offers
    assert offers.prior == icu_day / "morning_ap.dcm"
    select(qtbot, window, icu_day / "morning_ap.dcm")
    assert offers.prior is None  # nothing earlier
