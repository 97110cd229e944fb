"""The app's PDF export says what the out-of-scope heads found (tester: a child's film exported with a
``child-chest`` banner over "Image checks: No warnings"), in its banner, and does not repeat it in "Image checks"
(``image_checks.beside_banner``); with the bundled classifier on ONNX Runtime, on a real child's film from cxr3
(offscreen)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")
pytest.importorskip("pypdf")

from cxr_engine.models.image_checks import scope_warning  # noqa: E402
from cxr_engine.models.scope_heads import CHILD  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from conftest import kermany_children  # noqa: E402
from desktop_fixtures import card  # noqa: E402,F401  (fixture)
from test_desktop import WAIT_MS, export, make_window, open_and_wait, pdf_text, private_settings  # noqa: E402,F401


@pytest.fixture()
def child_study(tmp_path, shared_data):
    folder = tmp_path / "child"
    folder.mkdir()
    shutil.copy(kermany_children(shared_data, 1)[0], folder / "child.jpg")
    return folder


def test_pdf_of_a_child_film_names_the_child_head_under_its_banner(qtbot, make_window, child_study, tmp_path):
    window = make_window(show=True)
    window.classification.start()
    first = open_and_wait(qtbot, window, child_study)
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    assert window.result.out_of_scope == CHILD
    assert window.result_panel.scope_banner.isVisible()
    _, text = pdf_text(export(qtbot, window, ExportRequest((first,), tmp_path / "child.pdf", False, "")))
    text = " ".join(text.split())
    # the milder banner: a film that only looks like a child's may be an adult's, for whom it does not apply
    assert "Possibly outside what this model was trained for" in text
    assert "If the patient is an adult, the child's-chest check does not apply" in text
    assert "No warnings for this image" not in text
    assert " ".join(scope_warning(CHILD).split()[:10]) not in text  # the banner says it
