"""The desktop app on real DICOM files (pytest-qt, offscreen): open, W/L, overlays, annotations,
worker classification, unreadable files, automation and PDF export."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_engine.models.model_card import below_bar_text  # noqa: E402
from cxr_engine.pixels.windowing import percentile_window  # noqa: E402
from cxr_desktop.annotation_model import RULER, TEXT, Annotation  # noqa: E402
from cxr_desktop.image_view import WINDOW_LEVEL  # noqa: E402
from cxr_desktop.main_window import MainWindow  # noqa: E402
from cxr_desktop.presets import DRAG_PIXELS_PER_AUTO_WIDTH  # noqa: E402
from cxr_desktop.qimage import to_rgb_array  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402
from cxr_desktop.settings import SETTINGS_ENV, AppSettings  # noqa: E402

from model_factory import make_random_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # CR, MONOCHROME2, PixelSpacing 0.168
MONO1 = "CR-MONO1-10-chest.dcm"  # CR, MONOCHROME1, no file meta
J2K16 = "JPEG2KLossless_1s_1f_u_16_16.dcm"  # DX, 16-bit, JPEG 2000
WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """Every test keeps its preferences in its own INI file, never the user's."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
    return path


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def study(tmp_path, dicom_dir) -> Path:
    folder = tmp_path / "study"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(dicom_dir / SIIM, folder / "siim.dcm")
    shutil.copy(dicom_dir / MONO1, folder / "sub" / "mono1.dcm")
    shutil.copy(dicom_dir / J2K16, folder / "j2k16.dcm")
    return folder


@pytest.fixture()
def make_window(qtbot, card, private_settings):
    """Builds main windows (hidden unless ``show=True``); fails if a top-level widget leaks."""
    app = QApplication.instance()
    before = {id(w) for w in app.topLevelWidgets()}
    windows = []

    def factory(show: bool = False, with_model: bool = True) -> MainWindow:
        window = MainWindow(AppSettings(QSettings(str(private_settings), QSettings.Format.IniFormat)),
                            model=str(card.path) if with_model else "", device="cpu",
                            models_dir=private_settings.parent / "no_models")
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        windows.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    yield factory
    for window in windows:
        window.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    leaked = [w for w in app.topLevelWidgets() if id(w) not in before]
    assert not leaked, f"top-level widgets leaked: {leaked}"


def open_and_wait(qtbot, window: MainWindow, folder: Path) -> Path:
    """Open ``folder`` and wait until its first image is on screen."""
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        window.open_paths([folder])
    return Path(shown.args[0])


def select(qtbot, window: MainWindow, path: Path) -> None:
    """Show ``path`` and wait until it is on screen."""
    if window.viewer.path == path:
        return
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        assert window.browser.select_path(path)


def wait_classified(qtbot, window: MainWindow) -> None:
    window.start_model()
    if window.viewer.heatmap is None:
        with qtbot.waitSignal(window.heatmapShown, timeout=WAIT_MS):
            pass


def mouse(view, kind, pos: QPointF, button=Qt.MouseButton.NoButton, buttons=Qt.MouseButton.NoButton):
    event = QMouseEvent(kind, pos, view.viewport().mapToGlobal(pos.toPoint()).toPointF(), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def drag(view, start: QPointF, end: QPointF, button=Qt.MouseButton.LeftButton, steps: int = 4):
    mouse(view, QEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        mouse(view, QEvent.Type.MouseMove, start + (end - start) * (i / steps), Qt.MouseButton.NoButton, button)
    mouse(view, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


# ---------------------------------------------------------------------------------------- tests


def test_window_appears_before_torch_is_imported(card, tmp_path):
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from cxr_desktop.main_window import MainWindow\n"
        f"w = MainWindow(model={str(card.path)!r}, device='cpu')\n"
        "w.show()\n"
        "print('torch' in sys.modules, w.isVisible())\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **{SETTINGS_ENV: str(tmp_path / "s.ini")})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_open_folder_of_real_dicoms(qtbot, make_window, study):
    window = make_window()
    first = open_and_wait(qtbot, window, study)
    paths = window.browser.image_paths()
    assert sorted(p.name for p in paths) == ["j2k16.dcm", "mono1.dcm", "siim.dcm"]
    assert first in paths and window.viewer.image is not None
    assert window.viewer.image.shape == window.scene.image_item.pixmap().size().toTuple()[::-1]
    assert window.problems.rowCount() == 0
    # Next / previous image by keyboard-bound actions.
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        window.acts.next_image.trigger()
    assert Path(shown.args[0]) == paths[1]
    # Thumbnails arrive from a worker.
    qtbot.waitUntil(lambda: all(not window.browser._images[p].icon(0).isNull() for p in paths), timeout=WAIT_MS)
    assert str(study) in window.settings.recent_folders


def test_welcome_panel_opens_the_sample_study_and_folders_can_be_dropped(qtbot, make_window, study):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    from cxr_engine.resources import samples_dir

    window = make_window(with_model=False)
    assert window.stack.currentWidget() is window.welcome
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.welcome.sample_button.click()
    assert {p.parent for p in window.browser.image_paths()} == {samples_dir() / "study"}
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(study))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.dropEvent(drop)
    assert len(window.browser.image_paths()) == 3 and window.viewer.path.is_relative_to(study)


@pytest.mark.parametrize("name", ["siim.dcm", "sub/mono1.dcm"])
def test_window_level_drag_changes_the_window_by_the_expected_amounts(qtbot, make_window, study, name):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / name)
    image, view = window.viewer.image, window.view
    start = window.viewer.voi
    step = percentile_window(image.modality).width / DRAG_PIXELS_PER_AUTO_WIDTH
    centre = QPointF(view.viewport().width() / 2, view.viewport().height() / 2)
    drag(view, centre, centre + QPointF(120, 40), Qt.MouseButton.RightButton)
    voi = window.viewer.voi
    assert voi.width == pytest.approx(start.width + 120 * step)
    # Down darkens the screen: a higher centre for MONOCHROME2, a lower one for MONOCHROME1.
    sign = -1 if image.invert else 1
    assert voi.center == pytest.approx(start.center + sign * 40 * step)
    shown = to_rgb_array(window.scene.image_item.pixmap().toImage())[..., 0]
    assert np.array_equal(shown, window.viewer.renderer.render(voi, image.invert))
    # The same gesture with the left button in W/L mode; then presets and reset.
    window.acts.tool[WINDOW_LEVEL].trigger()
    drag(view, centre, centre + QPointF(-60, 0))
    assert window.viewer.voi.width == pytest.approx(voi.width - 60 * step)
    window.apply_preset(next(p for p in _presets(window) if p.name == "Lung"))
    assert window.viewer.voi_name == "Lung"
    window.acts.reset.trigger()
    assert window.viewer.voi == image.default_voi()


def _presets(window):
    from cxr_desktop.presets import presets_for

    return presets_for(window.viewer.image)


def test_monochrome1_twin_is_shown_inverted_and_the_invert_toggle_restores_it(qtbot, make_window, study, dicom_dir):
    """Fake_MONOHR1 stores the SIIM pixels unchanged but says MONOCHROME1: shown as the header says."""
    shutil.copy(dicom_dir / "Fake_MONOHR1.dcm", study / "fake_mono1.dcm")
    window = make_window()
    open_and_wait(qtbot, window, study)

    def shown() -> np.ndarray:
        return to_rgb_array(window.scene.image_item.pixmap().toImage())[..., 0].astype(int)

    select(qtbot, window, study / "siim.dcm")
    siim = shown()
    select(qtbot, window, study / "fake_mono1.dcm")
    assert window.viewer.image.invert
    assert np.abs(shown() - (255 - siim)).max() <= 1  # the negative, up to 8-bit rounding
    window.acts.invert.trigger()
    assert window.viewer.display_inverted is False and np.array_equal(shown(), siim)


def test_corner_overlay_and_heatmap_toggle(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    wait_classified(qtbot, window)

    # the test model is below the bar: the panel says so, and why (here: where its card says)
    assert f"⚠ {below_bar_text(window.result.card, 'This model')} For testing only." in window.result_panel.warnings_label.text()
    view = window.view

    def corner() -> np.ndarray:
        return to_rgb_array(view.viewport().grab().toImage())[:60, :200]

    with_text = corner()
    window.acts.corner_overlay.trigger()
    assert window.viewer.corner_overlay is False
    assert not np.array_equal(with_text, corner())
    window.acts.corner_overlay.trigger()
    assert np.array_equal(with_text, corner())

    heat = window.scene.heatmap_item
    assert heat.parentItem() is window.scene.image_item  # aligned under zoom, pan, rotation, flip
    assert not heat.isVisible()
    window.acts.heatmap.trigger()
    assert window.viewer.heatmap_visible and heat.isVisible()
    assert heat.pixmap().size() == window.scene.image_item.pixmap().size()
    window.result_panel.opacity.setValue(30)
    assert heat.opacity() == pytest.approx(0.3)
    window.acts.rotate.trigger()
    assert heat.sceneBoundingRect() == window.scene.image_item.sceneBoundingRect()
    window.acts.heatmap.trigger()
    assert not heat.isVisible() and not window.result_panel.heatmap_button.isChecked()

    # The heat-map follows the predicted class by default and any class on request.
    assert window.viewer.heatmap_class == window.result.prediction.label
    combo = window.result_panel.heatmap_class
    with qtbot.waitSignal(window.heatmapShown, timeout=WAIT_MS):
        combo.activated.emit(combo.findData("normal"))
    assert window.viewer.heatmap_class == "normal" and combo.currentData() == "normal"


def test_annotations_add_move_delete_and_stay_with_their_image(qtbot, make_window, study):
    window = make_window(show=True)
    open_and_wait(qtbot, window, study)
    select(qtbot, window, study / "siim.dcm")
    path, view = window.viewer.path, window.view
    window.acts.tool[RULER].trigger()
    a, b = QPointF(200, 200), QPointF(400, 200)
    drag(view, a, b)
    (ruler,) = window.annotations.for_path(path)
    assert ruler.kind == RULER
    item = window.scene.annotation_items()[0]
    assert item.label_text().endswith(" px")  # its Pixel Spacing 0.168 mm gives a 172-mm field of view: set aside (a resized film), lengths in px
    (x1, y1), (x2, y2) = ruler.points
    assert float(item.label_text().split()[0]) == pytest.approx(np.hypot(x2 - x1, y2 - y1), abs=0.5)

    # Another image, then back: the ruler is still there; it was never written to the file.
    before = (study / "siim.dcm").read_bytes()
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.browser.select_next(1)
    assert window.scene.annotation_items() == []
    select(qtbot, window, path)
    assert len(window.scene.annotation_items()) == 1
    assert (study / "siim.dcm").read_bytes() == before

    # A text note: placed, edited, moved; every change reaches the store.
    note = window.scene.commit(Annotation(TEXT, ((50.0, 60.0),), "old"))
    note.set_text("check apex")
    note.setPos(note.pos() + QPointF(10, 5))
    stored = {a.kind: a for a in window.annotations.for_path(path)}
    assert stored[TEXT].text == "check apex" and stored[TEXT].points == ((60.0, 65.0),)

    for item in window.scene.annotation_items():
        item.setSelected(True)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert window.annotations.for_path(path) == []
    assert window.scene.annotation_items() == []


def test_classification_runs_in_a_worker_while_the_gui_keeps_running(qtbot, make_window, study):
    window = make_window(show=True)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    open_and_wait(qtbot, window, study)
    wait_classified(qtbot, window)  # model load (torch import) and one Grad-CAM pass
    timer.stop()
    assert len(ticks) >= 10, "the event loop stalled while the model loaded and classified"
    assert window.result.prediction is not None
    assert window.viewer.heatmap.shape == window.viewer.image.shape
    assert window.result_panel.top_label.text().startswith(window.result.prediction.display_label)
    # Classify all: each image gets a result in the tree.
    with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS) as done:
        window.classify_everything()
    assert done.args[0] == 3
    assert all(window.browser._images[p].text(1) for p in window.browser.image_paths())


def test_unreadable_files_are_listed_with_their_reason(qtbot, make_window, study, dicom_dir):
    data = (dicom_dir / "RG1_J2KI.dcm").read_bytes()
    (study / "truncated.dcm").write_bytes(data[: len(data) // 3])
    (study / "garbage.dcm").write_bytes(b"\x00\x01 not dicom at all " * 40)
    window = make_window(with_model=False)
    open_and_wait(qtbot, window, study)
    qtbot.waitUntil(lambda: {Path(p).name for p, _ in window.problems.problems()} >= {"garbage.dcm", "truncated.dcm"},
                    timeout=WAIT_MS)
    assert all(reason for _, reason in window.problems.problems())
    assert window.problems_button.isVisibleTo(window)
    assert window.viewer.image is not None  # the readable images are still shown
    assert window.result.state == "no_model" and "No model" in window.result_panel.top_label.text()


def test_dialogs_build_from_the_current_state(qtbot, make_window, card):
    from cxr_desktop.export_dialog import ExportDialog, default_file_name
    from cxr_desktop.settings_dialog import SettingsDialog

    window = make_window()
    settings = SettingsDialog([card], card.name, "cpu", window)
    assert settings.model() == card.name and settings.device() == "cpu"
    assert settings.model_box.itemText(1).count("below the project's bar") == 1 and "for testing only" in settings.model_box.itemText(1)
    assert settings.model_box.itemData(1, Qt.ItemDataRole.ToolTipRole) == below_bar_text(card, card.name)
    assert settings.model_box.itemText(0).endswith("(none bundled: choose one)")  # no card given meets the bar
    export = ExportDialog("2 image(s) from this study", "Dr Reader", window)
    assert export.reader.text() == "Dr Reader" and not export.deidentify.isChecked()
    assert default_file_name().startswith("cxr_report_") and default_file_name().endswith(".pdf")


def test_settings_names_the_model_the_default_choice_is_now(qtbot):
    from cxr_desktop.settings_dialog import DEFAULT_MODEL_TEXT, SettingsDialog
    from cxr_engine.models.model_card import default_card, list_bundled

    best = default_card()
    if best is None:
        pytest.skip("no bundled model meets the project's bar")
    dialog = SettingsDialog(list_bundled(), "", "cpu")
    qtbot.addWidget(dialog)
    assert dialog.model_box.itemText(0) == f"{DEFAULT_MODEL_TEXT} (now {best.name})" and dialog.model() == ""


def test_backend_setting_is_stored_and_used_to_load_the_model(qtbot, make_window, card, private_settings):
    from cxr_desktop.settings_dialog import SettingsDialog
    from cxr_engine.models.torch_backend import Classifier
    from cxr_engine.models.onnx_backend import OnnxClassifier

    bundled = str(REPO / "resources" / "models" / "efficientnet-lite0.json")
    window = make_window()
    assert window.settings.backend == "auto" and window.classification.backend == "auto"
    dialog = SettingsDialog([card], card.name, "cpu", window, backend="onnx")
    assert dialog.backend() == "onnx"
    assert [dialog.backend_box.itemData(i) for i in range(dialog.backend_box.count())] == ["auto", "torch", "onnx"]
    dialog.backend_box.setCurrentIndex(dialog.backend_box.findData("torch"))
    assert dialog.backend() == "torch"
    dialog.close()

    def stored() -> str:
        return AppSettings(QSettings(str(private_settings), QSettings.Format.IniFormat)).backend

    with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS) as ready:
        window.apply_settings(bundled, "cpu", "onnx")
    assert stored() == "onnx" and isinstance(window.service.classifier, OnnxClassifier)
    assert "ONNX Runtime" in ready.args[0]

    with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS) as ready:
        window.apply_settings(bundled, "cpu", "torch")
    assert stored() == "torch" and isinstance(window.service.classifier, Classifier)
    assert "PyTorch" in ready.args[0]

    # The test card has no ONNX export: insisting on ONNX Runtime fails with the reason.
    with qtbot.waitSignal(window.modelUnavailable, timeout=WAIT_MS) as failed:
        window.apply_settings(str(card.path), "cpu", "onnx")
    assert "ONNX" in failed.args[0] and window.service.classifier is None

    # A new window starts with the stored backend; the command line's --backend overrides it.
    assert make_window().classification.backend == "onnx"
    override = MainWindow(window.settings, model=str(card.path), backend="torch")
    override.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    assert override.classification.backend == "torch"
    override.close()


def test_screenshot_automation_writes_a_png(card, study, tmp_path):
    out = tmp_path / "shot.png"
    # On a 1600 x 1000 screen: the first window fits the screen it opens on (Qt's offscreen default is 800 x 800).
    screen = REPO / "docs" / "offscreen_1600x1000.json"
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={screen}", **{SETTINGS_ENV: str(tmp_path / "s.ini")})
    proc = subprocess.run(
        [sys.executable, "-m", "cxr_desktop", str(study), "--screenshot", str(out), "--overlay",
         "--model", str(card.path), "--device", "cpu", "--timeout", "240"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out) as shot:
        assert shot.size[0] >= 1000 and shot.size[1] >= 600


def test_automation_fails_cleanly_on_a_folder_without_images(tmp_path):
    from cxr_desktop.app import main

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    assert main([str(empty), "--screenshot", str(tmp_path / "x.png"), "--timeout", "60"]) == 1
    assert not (tmp_path / "x.png").exists()


def test_automation_fails_when_the_named_model_cannot_be_used(study, tmp_path, monkeypatch):
    """Tester (2026-11-30): ``cxr-desktop PATH --model nosuch --result-json OUT`` wrote a result without a
    model and exited 0, where ``cxr-classify`` exits 2. Without ``--model`` an unusable default still
    gives the image without a classification (exit 0; tests/test_desktop.py's no-model tests)."""
    from cxr_desktop.app import main

    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "s.ini"))
    out = tmp_path / "result.json"
    assert main([str(study), "--model", "nosuch", "--result-json", str(out), "--timeout", "120"]) == 1
    assert not out.exists()


# ---------------------------------------------------------------------------------------- PDF export

PATIENT = {"PatientName": "DOE^JANE", "PatientID": "PAT-4711", "AccessionNumber": "ACC-0815",
           "PatientBirthDate": "19700101"}


@pytest.fixture()
def identified_study(tmp_path, dicom_dir) -> Path:
    """Two images of one study of a (synthetic) named patient."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path / "named"
    folder.mkdir()
    study_uid = generate_uid()
    for number in (1, 2):
        ds = pydicom.dcmread(dicom_dir / SIIM)
        for keyword, value in PATIENT.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.InstanceNumber = study_uid, number
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / f"im{number}.dcm")
    return folder


def pdf_text(path: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def export(qtbot, window: MainWindow, request: ExportRequest) -> Path:
    with qtbot.waitSignal(window.exportFinished, timeout=WAIT_MS) as done:
        window.start_export(request)
    return Path(done.args[0])


def test_pdf_export_of_a_study_has_classes_probabilities_and_identifiers(qtbot, make_window, identified_study, tmp_path):
    pytest.importorskip("pypdf")
    from cxr_engine.display_text import format_percent

    window = make_window(show=True)
    first = open_and_wait(qtbot, window, identified_study)
    wait_classified(qtbot, window)
    window.acts.tool[RULER].trigger()
    drag(window.view, QPointF(150, 150), QPointF(300, 260))
    window.acts.heatmap.trigger()
    paths = window.browser.study_paths(first)
    assert len(paths) == 2
    request = ExportRequest(tuple(paths), tmp_path / "report.pdf", False, "Reader comment: check the left base")
    out = export(qtbot, window, request)
    pages, text = pdf_text(out)
    assert pages == 3  # two films, the model's known limits
    for name in ("Normal", "Pneumonia", "COVID-19"):
        assert name in text
    prediction = window.result.prediction
    for p in prediction.probabilities:
        assert format_percent(p) in text
    assert "DOE" in text and "PAT-4711" in text and "check the left base" in text
    assert "Research use only" in text


def test_pdf_legend_names_the_outline_only_in_outline_mode(qtbot, make_window, identified_study, tmp_path):
    """Finding 17: the PDF said "Outline mode: contour at 0.5" under a colour heat-map."""
    pytest.importorskip("pypdf")
    from cxr_engine.pixels.overlay import OUTLINE_NOTE

    window = make_window(show=True)
    first = open_and_wait(qtbot, window, identified_study)
    wait_classified(qtbot, window)
    _, colour = pdf_text(export(qtbot, window, ExportRequest((first,), tmp_path / "colour.pdf", False, "")))
    window.viewer.set_heatmap_style("outline")
    _, outline = pdf_text(export(qtbot, window, ExportRequest((first,), tmp_path / "outline.pdf", False, "")))
    assert "contour" not in colour
    assert " ".join(OUTLINE_NOTE.split()[:3]) in " ".join(outline.split())


def test_deidentified_pdf_export_holds_no_patient_name_or_id(qtbot, make_window, identified_study, tmp_path):
    pytest.importorskip("pypdf")
    window = make_window(show=True)
    first = open_and_wait(qtbot, window, identified_study)
    wait_classified(qtbot, window)
    out = export(qtbot, window, ExportRequest((first,), tmp_path / "anon.pdf", True, "Seen with Jane Doe's old film"))
    pages, text = pdf_text(out)
    assert pages == 2 and "COVID-19" in text
    for secret in ("DOE", "Doe", "JANE", "Jane", "PAT-4711", "ACC-0815", "1970"):
        assert secret not in text, secret
    assert not any(secret in str(out) for secret in ("DOE", "PAT-4711"))


def test_export_pdf_automation_deidentified(card, identified_study, tmp_path):
    pytest.importorskip("pypdf")
    from cxr_desktop.app import main

    out = tmp_path / "auto.pdf"
    code = main([str(identified_study), "--export-pdf", str(out), "--deidentify", "--model", str(card.path),
                 "--device", "cpu", "--timeout", "240"])
    assert code == 0
    pages, text = pdf_text(out)
    assert pages == 3 and "Pneumonia" in text and "PAT-4711" not in text and "DOE" not in text


def folder_snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` with its size, modification time and content hash."""
    import hashlib

    snapshot = {}
    for path in sorted(folder.rglob("*")):
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        snapshot[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns, digest)
    return snapshot


def test_the_app_never_writes_into_the_folder_it_reads(qtbot, make_window, study, tmp_path):
    pytest.importorskip("pypdf")
    before = folder_snapshot(study)
    for path in [study, *study.rglob("*")]:  # read-only, as on a CD: any write attempt would fail loudly
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        window = make_window(show=True)
        first = open_and_wait(qtbot, window, study)
        wait_classified(qtbot, window)
        window.acts.tool[RULER].trigger()
        drag(window.view, QPointF(150, 150), QPointF(300, 260))
        with qtbot.waitSignal(window.classifyAllFinished, timeout=WAIT_MS):
            window.classify_everything()
        out = export(qtbot, window, ExportRequest((first,), tmp_path / "out" / "report.pdf", True, ""))
        assert out.exists() and study not in out.parents
        assert not window.problems.problems()
    finally:
        for path in [study, *study.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert folder_snapshot(study) == before


def test_large_scans_fill_the_tree_in_steps(qtbot, study):
    from cxr_desktop.problems_panel import ProblemsPanel
    from cxr_desktop.study_browser import StudyBrowser
    from cxr_engine.reading.scanning import scan

    browser = StudyBrowser()
    qtbot.addWidget(browser)
    steps = list(browser.add_result_steps(scan(study), images_per_step=1))
    assert len(steps) >= 2 and browser.image_count() == 3
    assert set(browser.image_paths()) == {p for p in study.rglob("*.dcm")}
    problems = ProblemsPanel()
    qtbot.addWidget(problems)
    counts = []
    problems.countChanged.connect(counts.append)
    problems.add_many([(study / f"bad{i}.dcm", "empty file") for i in range(500)] + [(study / "bad0.dcm", "empty file")])
    assert problems.rowCount() == 500 and counts == [500]  # one signal, duplicates dropped
