"""A new user's findings on the app (offscreen, real films of ../shared/data; skipped, saying why, without them):

1. ``cxr-desktop .`` kept ``recent=.``: started later from another folder, File → Recent opened another patient's
   film. The recent list and the last folder hold absolute paths, a relative entry of an earlier version is left out,
   and an unattended run (``--result-json``, ``--export-pdf``, ``--screenshot``) adds nothing to them.
2. The settings file, which names the folders opened, was 0644 in a 0755 folder: it is 0600 (its folder 0700 when
   the app's own or new), also after QSettings rewrites it.
3. An unattended run waited for every thumbnail of a 13,891-film folder before writing its JSON, and its time limit
   named a film already classified: the result is written once it is ready; a screenshot waits only for the
   thumbnails in view, and the time limit names what was still awaited.
4. Model box: "a COVID-19 call was right 34 of 37 times" under "Not reliable: COVID-19 93.7 %" (the inverted
   Fake_MONOHR1.dcm): withheld, saying why, as the calibration line is.
5. A folder holding only this program's outputs said "no DICOM, PNG or JPEG image was found": it says how many
   files were skipped and why, as ``cxr-classify`` does.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop import study_opening  # noqa: E402
from cxr_desktop.automation import Automation, AutomationTask  # noqa: E402
from cxr_desktop.settings import SETTINGS_ENV, AppSettings, open_settings  # noqa: E402

from conftest import real_films  # noqa: E402
from desktop_fixtures import FRONTAL, INVERTED_FILM, card  # noqa: E402,F401  (fixture)
from test_desktop import WAIT_MS, make_window, private_settings  # noqa: E402,F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def recorded_exit(monkeypatch) -> list[int]:
    """An unattended run's end, recorded: a real ``QApplication.exit`` would end the event loops of later tests."""
    exits: list[int] = []
    monkeypatch.setattr(QApplication, "exit", staticmethod(lambda code=0: exits.append(code)))
    return exits


@pytest.fixture()
def stuck_thumbnails(monkeypatch):
    """The thumbnails' job of the films opened next answers nothing until the test ends (as a folder of 13,891
    films whose thumbnails take half a minute)."""
    released = threading.Event()

    def stuck(paths, decoder):
        released.wait(120)
        return
        yield  # a generator worker, as ``image_jobs.thumbnails``

    monkeypatch.setattr(study_opening, "thumbnails", stuck)
    yield
    released.set()


# ------------------------------------------------------------------------------- 1. recent folders

def test_opening_dot_keeps_the_folder_itself_not_dot(qtbot, make_window, tmp_path, dicom_dir, monkeypatch):
    named = real_films(tmp_path / "named", dicom_dir, [INVERTED_FILM])
    window = make_window(with_model=False)
    monkeypatch.chdir(named)
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths([Path(".")])
    assert window.settings.recent_folders == [str(named.resolve())]
    assert window.settings.last_folder == str(named.resolve())
    monkeypatch.chdir(tmp_path)  # started later from elsewhere: the entry still names the same folder
    assert (Path(window.settings.recent_folders[0]) / INVERTED_FILM).is_file()
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS):
        window.open_paths([Path("named") / INVERTED_FILM])  # a file, relative: its absolute path, its folder
    assert window.settings.recent_folders[0] == str(named.resolve() / INVERTED_FILM)
    assert window.settings.last_folder == str(named.resolve())


def test_relative_entries_of_an_earlier_version_are_left_out(tmp_path, dicom_dir):
    kept = real_films(tmp_path / "kept", dicom_dir, [FRONTAL]).resolve()
    store = QSettings(str(tmp_path / "old.ini"), QSettings.Format.IniFormat)
    store.setValue("files/recent", [".", "resources/samples/study", str(kept)])
    store.setValue("files/last_folder", ".")
    store.setValue("files/last_export_folder", "out")
    settings = AppSettings(store)
    assert settings.recent_folders == [str(kept)]
    assert settings.last_folder == "" and settings.last_export_folder == ""


def test_an_unattended_run_leaves_the_recent_folders_alone(qtbot, make_window, tmp_path, dicom_dir, recorded_exit):
    earlier = real_films(tmp_path / "earlier", dicom_dir, [FRONTAL]).resolve()
    script = real_films(tmp_path / "script", dicom_dir, [INVERTED_FILM])
    window = make_window(with_model=False)
    window.settings.add_recent(earlier)
    automation = Automation(window, AutomationTask(result_json=tmp_path / "out" / "result.json", timeout_s=120))
    window.open_paths([script])
    qtbot.waitUntil(lambda: automation.exit_code is not None, timeout=WAIT_MS)
    assert automation.exit_code == 0 and recorded_exit == [0]
    assert json.loads((tmp_path / "out" / "result.json").read_text())["path"] == str(script / INVERTED_FILM)
    assert window.settings.recent_folders == [str(earlier)] and window.settings.last_folder == str(earlier)


# ------------------------------------------------------------------------------- 2. the settings file

def test_the_settings_file_is_this_users_only_after_each_rewrite(tmp_path, dicom_dir, monkeypatch):
    folder = real_films(tmp_path / "films", dicom_dir, [INVERTED_FILM])
    path = tmp_path / "new folder" / "settings.ini"
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    settings = AppSettings(open_settings())
    settings.add_recent(folder)
    settings.sync()
    assert str(folder.resolve()) in path.read_text()
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    settings.heatmap_opacity = 0.7  # QSettings writes a temporary file and renames it over the settings
    settings.sync()
    assert _mode(path) == 0o600 and "0.7" in path.read_text()

    older = tmp_path / "older.ini"  # an earlier version's file, readable by all, in a folder the user chose
    older.write_text(f"[files]\nrecent={folder.resolve()}\n")
    older.chmod(0o644)
    before = _mode(tmp_path)
    assert AppSettings(QSettings(str(older), QSettings.Format.IniFormat)).recent_folders == [str(folder.resolve())]
    assert _mode(older) == 0o600 and _mode(tmp_path) == before  # the user's own folder is left as it is


def test_the_platform_settings_folder_is_this_users_only(tmp_path, dicom_dir):
    folder = real_films(tmp_path / "films", dicom_dir, [INVERTED_FILM])
    config = tmp_path / "config"
    own = config / "CXR Reader"
    own.mkdir(parents=True)
    own.chmod(0o755)  # as QSettings made it
    code = ("import sys\n"
            "from cxr_desktop.settings import AppSettings\n"
            "s = AppSettings()\n"
            "s.add_recent(sys.argv[1])\n"
            "s.sync()\n"
            "print(s.store.fileName())\n")
    env = {k: v for k, v in os.environ.items() if k != SETTINGS_ENV}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(config), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path == own / "CXR Reader.conf" and str(folder.resolve()) in path.read_text()
    assert _mode(path) == 0o600 and _mode(own) == 0o700


# ------------------------------------------------------------------------------- 3. waiting for what is needed

def test_the_result_is_written_without_waiting_for_the_thumbnails(qtbot, make_window, tmp_path, dicom_dir,
                                                                  recorded_exit, stuck_thumbnails):
    films = real_films(tmp_path / "films", dicom_dir, [INVERTED_FILM, FRONTAL])
    window = make_window()
    automation = Automation(window, AutomationTask(result_json=tmp_path / "result.json", timeout_s=60))
    window.start_model()  # as showing the window does
    window.open_paths([films])
    qtbot.waitUntil(lambda: automation.exit_code is not None, timeout=90_000)
    assert automation.exit_code == 0, automation._pending()
    shown = json.loads((tmp_path / "result.json").read_text())
    assert shown["prediction"] is not None
    assert window.opening.thumbnails_to_come(window.browser.image_paths())  # none had come


def test_a_screenshot_waits_for_the_thumbnails_in_view_and_the_time_limit_names_them(
        qtbot, make_window, tmp_path, dicom_dir, recorded_exit, stuck_thumbnails, caplog):
    films = real_films(tmp_path / "films", dicom_dir, [INVERTED_FILM, FRONTAL])
    window = make_window(show=True)
    automation = Automation(window, AutomationTask(screenshot=tmp_path / "shot.png", timeout_s=300))
    window.open_paths([films])
    qtbot.waitUntil(lambda: "thumbnails" in automation._pending(), timeout=90_000)
    in_view = window.browser.paths_in_view()
    assert sorted(p.name for p in in_view) == sorted([INVERTED_FILM, FRONTAL])
    with caplog.at_level(logging.ERROR, logger="cxr_desktop.automation"):
        automation._timer.start(0)  # the time limit, now
        qtbot.waitUntil(lambda: automation.exit_code is not None, timeout=10_000)
    assert automation.exit_code == 1 and not (tmp_path / "shot.png").exists()
    [message] = [r.getMessage() for r in caplog.records if "automation failed" in r.getMessage()]
    assert message == (f"automation failed: timed out after 300 s waiting for the thumbnails of 2 of the 2 film(s) "
                       f"in view in the study tree (the first: {in_view[0]})")


# ------------------------------------------------------------------------------- 5. this program's own outputs

def test_a_folder_of_this_programs_outputs_says_what_was_skipped(qtbot, make_window, tmp_path, cxr3_dir):
    from PIL import Image

    from cxr_desktop.formatting import no_image_text

    film = next(iter(sorted((cxr3_dir / "images" / "covid").glob("*.jpg"))), None)
    mask = next(iter(sorted((cxr3_dir / "lung_masks").glob("*.png"))), None)
    if film is None or mask is None:
        pytest.skip(f"no cxr3 covid film or lung mask under {cxr3_dir}")
    outputs = tmp_path / "heatmaps"
    outputs.mkdir()
    Image.open(film).convert("RGB").save(outputs / f"00000_{film.stem}_cam.png")  # as cxr-classify names them
    Image.open(mask).convert("L").point(lambda v: 255 if v > 127 else 0).save(outputs / f"00001_{mask.stem}_lungs.png")
    window = make_window(with_model=False)
    with qtbot.waitSignal(window.scanFinished, timeout=WAIT_MS) as scanned:
        window.open_paths([outputs])
    said = f"skipped 2 file(s) this program wrote (heat-maps, lung masks, AI result DICOM objects), e.g. {outputs}"
    assert said in window.view.message and window.view.message.startswith("No DICOM, PNG or JPEG images found here")
    assert said in window.statusBar().currentMessage()
    assert no_image_text(scanned.args[0]).startswith(
        f"no DICOM, PNG or JPEG image was found in the paths given: {said}")


# ------------------------------------------------------------------------------- 4. an out-of-scope film's figures

def test_an_out_of_scope_film_gets_no_calls_right_figure_in_the_model_box(qtbot, card, dicom_dir):
    from PySide6.QtGui import QAction

    from cxr_desktop.limits_panel import LimitsPanel
    from cxr_desktop.result_model import ResultModel
    from cxr_desktop.result_panel import OUT_OF_SCOPE_TOP, ResultPanel
    from cxr_desktop.viewer_model import ViewerModel
    from cxr_engine.models.backends import create_classifier
    from cxr_engine.models.image_checks import banner_is_firm, check_image, default_checker
    from cxr_engine.models.model_limits import OUT_OF_SCOPE_CALIBRATION, OUT_OF_SCOPE_CALLS
    from cxr_engine.reading.read import read_image

    film = dicom_dir / INVERTED_FILM
    if not film.exists():
        pytest.skip(f"not in {dicom_dir}: {INVERTED_FILM}")
    image = read_image(film)
    model = create_classifier(card, backend="onnx", device="cpu")
    model.load()
    prediction = model.predict([image])[0]

    def panels(check):
        result = ResultModel()
        panel, limits = ResultPanel(result, ViewerModel(), QAction("Heat-map")), LimitsPanel(result)
        qtbot.addWidget(panel)
        qtbot.addWidget(limits)
        result.set_model(card.name, card.summary(), tuple(card.classes), not card.meets_bar, card)
        result.set_ready("CPU")
        result.set_image((), header=image.metadata, path=image.path)
        result.set_image_check(check)
        result.set_prediction(prediction)
        return result, panel, limits

    result, panel, limits = panels(check_image(image, default_checker()))
    assert banner_is_firm(result.out_of_scope) and panel.top_label.text().startswith(OUT_OF_SCOPE_TOP)
    assert limits.text().splitlines()[0] == OUT_OF_SCOPE_CALIBRATION  # the calibration line, withheld
    lines = panel.model_label.text().splitlines()
    assert not [line for line in lines if "call was right" in line] and OUT_OF_SCOPE_CALLS in lines
    assert lines[1].startswith("Test accuracy: adults with a recorded age")  # the test set's figures stay

    _, in_scope, _ = panels(None)  # the same call on a film not checked: its figure is given
    called = prediction.display_label
    assert f"In adults with a recorded age, a {called} call was right" in in_scope.model_label.text()
