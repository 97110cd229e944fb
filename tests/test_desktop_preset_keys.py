"""The shortcuts sheet names the window presets the keys 2–9 apply ("Window preset: Lung = 2"), not
"Window preset 1" (tester finding 17)."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_desktop.presets import presets_for  # noqa: E402
from cxr_desktop.shortcuts import shortcut_rows  # noqa: E402

from test_desktop import card, make_window, open_and_wait, private_settings, study  # noqa: E402,F401


def test_the_sheet_names_each_preset_key(qtbot, make_window, study):
    window = make_window(show=True, with_model=False)
    open_and_wait(qtbot, window, study)
    names = [p.name for p in presets_for(window.viewer.image, window.settings.window_presets)]
    rows = {what: keys for _, what, keys in shortcut_rows(window)}
    assert rows.get(f"Window preset: {names[0]}") == "2", rows
    assert not any(what.startswith("Window preset 1") for what in rows)
