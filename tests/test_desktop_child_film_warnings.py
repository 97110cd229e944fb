"""The real RSNA film of a 6-year-old (``00aecb01…``, Patient's Age 6, a secondary capture) in the app, with the
bundled classifier on ONNX Runtime (offscreen): flagged by its age and the image checks.

- The panel says the age once: the red banner lists it as a reason, and the orange warning lines no longer
  repeat it (``image_checks.beside_banner``); the other warnings stay.
- The app's PDF lists the film's warnings in the CSV's order less those its banner says (the image checks'
  note, the age), as the panel."""
from __future__ import annotations

import re
import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from cxr_engine.models.image_checks import ATYPICAL, describe  # noqa: E402
from cxr_engine.models.suitability import AGE_OUTSIDE_TRAINING, AGE_WARNING, TRAINING_AGES  # noqa: E402
from cxr_desktop.report_export import ExportRequest  # noqa: E402

from desktop_fixtures import card  # noqa: E402,F401  (fixture)
from model_factory import classify_one_to_csv, default_card_path  # noqa: E402
from real_films import rsna_study  # noqa: E402
from test_desktop import WAIT_MS, export, make_window, open_and_wait, pdf_text, private_settings  # noqa: E402,F401

CHILD = "00aecb01-a116-45a2-956c-08d2fa55433f.dcm"


@pytest.fixture()
def child_study(tmp_path, shared_data):
    return rsna_study(shared_data, CHILD, tmp_path / "child", "the RSNA film of a 6-year-old")


def _classified(qtbot, window, folder):
    window.classification.start()
    first = open_and_wait(qtbot, window, folder)
    qtbot.waitUntil(lambda: window.result.image_check is not None and window.result.prediction is not None,
                    timeout=WAIT_MS)
    return first


def _age_mentions(text: str) -> int:
    """How often ``text`` says "age" as a word (not inside "image" or "percentage")."""
    return len(re.findall(r"\bage\b", text, flags=re.IGNORECASE))


def test_the_panel_states_the_age_once_in_the_banner(qtbot, make_window, child_study):
    window = make_window(show=True)
    _classified(qtbot, window, child_study)
    panel = window.result_panel
    assert window.result.out_of_scope == f"{AGE_OUTSIDE_TRAINING};{ATYPICAL}"
    assert AGE_WARNING in window.result.warnings  # the film's warnings hold it; the panel shows it once
    banner, lines = panel.scope_banner.text(), panel.warnings_label.text()
    assert panel.scope_banner.isVisible() and describe(AGE_OUTSIDE_TRAINING) in banner
    shown = f"{banner}\n{lines}" if panel.warnings_label.isVisible() else banner
    assert _age_mentions(shown) == 1, shown
    assert shown.count(TRAINING_AGES) == 1, shown
    assert "secondary capture" in lines and panel.warnings_label.isVisible()  # the other warnings stay


def test_the_apps_pdf_lists_the_warnings_in_the_csvs_order(qtbot, make_window, child_study, tmp_path):
    row = classify_one_to_csv(child_study / CHILD, tmp_path / "row.csv")
    expected = row["warnings"].split("; ")
    assert len(expected) >= 3 and expected[0].startswith("image check: ")  # the classification's note first
    assert AGE_WARNING in expected  # the CSV keeps every warning
    window = make_window(show=True)
    first = _classified(qtbot, window, child_study)
    _, text = pdf_text(export(qtbot, window, ExportRequest((first,), tmp_path / "child.pdf", False, "")))
    text = " ".join(text.split())
    checks = text[text.index("Image checks"):text.index("Reader's comment")]
    said = [expected[0], AGE_WARNING]  # what the banner lists: left out under it
    starts = [" ".join(warning.split()[:5]) for warning in expected if warning not in said]
    assert starts and all(" ".join(warning.split()[:5]) not in checks for warning in said), checks
    assert all(checks.count(start) == 1 for start in starts), (starts, checks)
    positions = [checks.index(start) for start in starts]
    assert positions == sorted(positions), (starts, checks)
    assert text[:text.index("Reader's comment")].count(TRAINING_AGES) == 1, text  # in the banner only


@pytest.mark.parametrize("source", [f"dicom_rsna/{CHILD}", "dicom/RG1_J2KI.dcm"])
def test_the_result_json_gives_the_csvs_warnings(shared_data, tmp_path, source):
    """Tester: ``--result-json`` gave the panel's warning lines, which leave to the banner what the image checks
    and the model found: for the child's film (out of scope: age, atypical film) the JSON lacked "image check:
    unlike the upright frontal chest films…", for ``RG1_J2KI`` (``uncertain``) "note: the model is unsure…".
    The JSON is a record, as the CSV row: the same warnings, in the same order."""
    import json

    from test_automation_unreadable import run_app

    film = shared_data / source
    if not film.exists():
        pytest.skip(f"{film} not found")
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(film, folder / film.name)
    card = default_card_path()  # the app's and the CLI's model without --model, as the tester ran them
    row = classify_one_to_csv(folder / film.name, tmp_path / "row.csv", card)
    proc, _, result = run_app(folder, tmp_path, card)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = json.loads(result.read_text(encoding="utf-8"))
    assert shown["out_of_scope"] == row["out_of_scope"] != ""
    assert "; ".join(shown["warnings"]) == row["warnings"]  # the CSV's column joins them ("; " is in some too)
    said = "image check: " if film.name == CHILD else "note: the model is unsure"
    assert any(warning.startswith(said) for warning in shown["warnings"]), shown["warnings"]
