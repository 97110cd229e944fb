"""One order of films for the app and the CLI: ``cxr-classify`` on a folder lists its rows in the order the
app's study tree shows the films (``ScanResult.image_files``: patients by name, then ID, ...), so the CSV's
first row is the film the app opens first (the CLI used to list them by path, the app by patient). Real
files: three RSNA DICOMs (each its own patient, named by its file's original stem) and a cxr3 JPEG, copied
under names whose path order is none of the tree's."""
from __future__ import annotations

import csv
import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("onnxruntime")

from cxr_engine.cli import main  # noqa: E402

from desktop_fixtures import card  # noqa: E402,F401  (fixture: the window's model, unused: no model loaded)
from model_factory import BUNDLED_CARD  # noqa: E402
from test_desktop import make_window, open_and_wait, private_settings  # noqa: E402,F401  (fixtures)

#: file name in the study -> the RSNA film copied there (its Patient's Name is the original stem): by path the
#: JPEG comes first and ``c.dcm`` last; by patient name (UUIDs: in text order, 0004cfab < 00313ee0 < 00f08de1),
#: ``b.dcm`` is first and the JPEG, which has no patient name, last.
RSNA_COPIES = {
    "a.dcm": "00313ee0-9eaa-42f4-b0ab-c148ed3241cd.dcm",
    "b.dcm": "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm",
    "c.dcm": "00f08de1-517e-4652-a04f-d1dc9ee48593.dcm",
}
JPEG_NAME = "0_film.jpg"
TREE_ORDER = ["b.dcm", "a.dcm", "c.dcm", JPEG_NAME]


@pytest.fixture()
def mixed_study(tmp_path, shared_data, cxr3_dir):
    folder = tmp_path / "study"
    folder.mkdir()
    for name, original in RSNA_COPIES.items():
        source = shared_data / "dicom_rsna" / original
        if not source.exists():
            pytest.skip(f"{source} not found")
        shutil.copy(source, folder / name)
    jpeg = next((cxr3_dir / "images" / "normal").glob("*.jpg"), None)
    if jpeg is None:
        pytest.skip(f"no JPEG in {cxr3_dir / 'images' / 'normal'}")
    shutil.copy(jpeg, folder / JPEG_NAME)
    assert sorted(p.name for p in folder.iterdir()) != TREE_ORDER  # path order is not the tree's
    return folder


def test_the_clis_first_row_is_the_apps_first_film(qtbot, make_window, mixed_study, tmp_path):
    out = tmp_path / "rows.csv"
    main([str(mixed_study), "--model", str(BUNDLED_CARD), "--backend", "onnx", "--device", "cpu",
          "--csv", str(out), "--no-isolation", "--quiet"])
    with open(out, newline="", encoding="utf-8") as handle:
        rows = [row["path"] for row in csv.DictReader(handle)]
    window = make_window(show=True, with_model=False)
    first = open_and_wait(qtbot, window, mixed_study)
    assert first.name == TREE_ORDER[0]
    assert rows[0] == str(first)
    assert rows == [str(path) for path in window.browser.image_paths()]
    assert [row.rsplit("/", 1)[-1] for row in rows] == TREE_ORDER
