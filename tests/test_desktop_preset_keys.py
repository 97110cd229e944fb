"""The shortcuts sheet names the window presets the keys 2–9 apply ("Window preset: Lung = 2"), not
"Window preset 1" (tester finding 17)."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_desktop.presets import presets_for  # noqa: E402
from cxr_desktop.shortcuts import shortcut_rows  # noqa: E402

from cxr_engine.reading.read import read_image  # noqa: E402

from test_desktop import card, make_window, open_and_wait, private_settings, select, study  # noqa: E402,F401


def test_the_sheet_names_each_preset_key(qtbot, make_window, study):
    window = make_window(show=True, with_model=False)
    open_and_wait(qtbot, window, study)
    names = [p.name for p in presets_for(window.viewer.image, window.settings.window_presets)]
    rows = {what: keys for _, what, keys in shortcut_rows(window)}
    assert rows.get(f"Window preset: {names[0]}") == "2", rows
    assert not any(what.startswith("Window preset 1") for what in rows)


def test_a_file_window_outside_the_films_values_is_marked(dicom_dir):
    """A reading radiologist's finding: the 16-bit JPEG 2000 film (stored values 32744-65535) carries the window
    2725/5310, which renders all white; it stays in the menu, marked, while a window that fits is not."""
    names = [p.name for p in presets_for(read_image(dicom_dir / "JPEG2KLossless_1s_1f_u_16_16.dcm"))]
    assert any(n.startswith("File window 1: 2725/5310 (outside this film's values: shows nothing)") for n in names)
    fitting = [p.name for p in presets_for(read_image(dicom_dir / "966_fixed.dcm")) if p.name.startswith("File window")]
    assert fitting and not any("shows nothing" in n for n in fitting)


def test_a_key_means_the_same_preset_on_every_film_and_a_chosen_one_carries_over(qtbot, make_window, dicom_dir,
                                                                                  tmp_path):
    """A reading radiologist's findings: key 5 applied Lung on one film and Auto on the next (the file's own
    windows came first and shifted the rest), and Lung chosen on one film gave Default on the next."""
    import shutil

    folder = tmp_path / "films"
    folder.mkdir()
    names = ("CR-MONO1-10-chest.dcm", "966_fixed.dcm", "JPEG2KLossless_1s_1f_u_16_16.dcm")  # no window, one, a dead one
    for name in names:
        shutil.copy(dicom_dir / name, folder / name)
    keyed = {name: [p.name for p in presets_for(read_image(folder / name))][:5] for name in names}
    assert all(names == ["Default", "Auto", "Full range", "Lung", "Mediastinum"] for names in keyed.values()), keyed

    window = make_window(show=True, with_model=False)
    first = open_and_wait(qtbot, window, folder)
    lung = next(p for p in presets_for(window.viewer.image) if p.name == "Lung")
    window.apply_preset(lung)
    other = next(p for p in sorted(folder.iterdir()) if p != first)
    select(qtbot, window, other)
    assert window.viewer.voi_name == "Lung"  # carried to the next film, computed for it
    assert window.viewer.voi == lung.voi_for(window.viewer.image)
    window.reset_view()
    select(qtbot, window, first)
    assert window.viewer.voi_name == "Default"  # Reset ends the carrying
