"""Quitting ``cxr-desktop`` with Ctrl+Q (File ▸ Quit) is clean and exits 0 from every state.

Issue 15: Ctrl+Q closed the window, which deletes itself on close (``WA_DeleteOnClose``); then
``app.main`` called ``window.close()`` on the deleted window and the process ended with
``RuntimeError: Internal C++ object (MainWindow) already deleted`` and exit status 1.

Each case runs the real entry point (``cxr_desktop.app.main``) in a subprocess, offscreen, with a
small driver that waits for the state (idle, scanning, classifying, exporting) and then triggers
the window's Quit action, the action Ctrl+Q is bound to; the driver reports that the scan, batch or
export was still running at that moment. The bundled classifier runs on ONNX Runtime, so the
subprocess never imports torch (seconds per start, not tens of seconds).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from cxr_desktop.settings import SETTINGS_ENV  # noqa: E402

from model_factory import BUNDLED_CARD  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

DRIVER = r'''
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

app = QApplication(sys.argv[:1])

from cxr_desktop import app as desktop_app
from cxr_desktop.main_window import MainWindow
from cxr_desktop.report_export import ExportRequest

state, folder, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
steps = {"started": False}


def window():
    return next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)), None)


def quit_now(w, why):
    shortcut = w.acts.quit.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
    print(f"QUIT {why} shortcut={shortcut}", flush=True)
    w.acts.quit.trigger()  # what Ctrl+Q does


def poll():
    w = window()
    if w is None:
        QTimer.singleShot(20, poll)
        return
    if state == "idle":
        quit_now(w, "idle")
        return
    if state == "scanning":
        if not steps["started"]:
            steps["started"] = True
            w.open_paths([folder])
        worker = w.scan_worker
        quit_now(w, f"scanning (scan finished: {bool(worker and worker.done)})")
        return
    ready = w.service.ready and w.browser.image_paths() and w.viewer.image is not None
    if not ready:
        if not steps["started"]:
            steps["started"] = True
            w.open_paths([folder])
        QTimer.singleShot(20, poll)
        return
    if state == "classifying":
        worker = w.classify_everything()
        quit_now(w, f"classifying (batch running: {worker is not None and not worker.done})")
    elif state == "exporting":
        export = w.start_export(ExportRequest(tuple(w.browser.image_paths()), out, False))
        quit_now(w, f"exporting (export running: {not export.worker.done})")


QTimer.singleShot(0, poll)
code = desktop_app.main(sys.argv[4:])
print(f"EXIT {code}", flush=True)
sys.exit(code)
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory, dicom_dir) -> Path:
    """Enough images that scanning, classifying and exporting are still running when Quit comes."""
    out = tmp_path_factory.mktemp("study")
    for name in ("CR-MONO1-10-chest.dcm", "966_fixed.dcm", "Fake_MONOHR1.dcm", "RG1_J2KI.dcm"):
        for copy in range(3):
            shutil.copy(dicom_dir / name, out / f"{copy}_{name}")
    return out


#: What the driver prints when Quit comes in each state: the work was still going on.
BUSY = {"idle": "idle", "scanning": "scan finished: False", "classifying": "batch running: True",
        "exporting": "export running: True"}


@pytest.mark.parametrize("state", list(BUSY))
def test_ctrl_q_quits_cleanly_with_status_0(state, folder, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **{SETTINGS_ENV: str(tmp_path / "settings.ini")})
    args = ["--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu"]
    if state != "idle":
        args.insert(0, str(folder))
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, state, str(folder), str(tmp_path / "report.pdf"), *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert f"QUIT {state}" in proc.stdout and BUSY[state] in proc.stdout, output[-3000:]
    assert "shortcut=Ctrl+Q" in proc.stdout, output[-3000:]
    assert proc.returncode == 0, output[-3000:]
    assert "EXIT 0" in proc.stdout, output[-3000:]
    for bad in ("Traceback", "RuntimeError", "already deleted"):
        assert bad not in output, output[-3000:]
