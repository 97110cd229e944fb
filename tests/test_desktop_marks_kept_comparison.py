"""A mark drawn in a comparison viewport joins the film's kept marks (reviewer's finding: the viewport never put
the kept marks back, so drawing there made the next write keep only its own marks: a ruler kept in one session was
gone from the film's file after an arrow was drawn on it beside another film in the next). Real films, two windows
one after the other (a restart)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from cxr_desktop.annotation_autosave import annotations_folder, film_digest  # noqa: E402
from cxr_desktop.annotation_model import ARROW, RULER, Annotation  # noqa: E402

from test_desktop import (WAIT_MS, card, make_window, open_and_wait, private_settings,  # noqa: E402,F401
                          select, study)

RULER_MARK = Annotation(RULER, ((100.0, 120.0), (300.0, 120.0)))
ARROW_MARK = Annotation(ARROW, ((50.0, 50.0), (150.0, 200.0)))


def kept_kinds(private_settings, film) -> list[str]:
    saved = annotations_folder(str(private_settings)) / f"{film_digest(film)}.json"
    return [m["kind"] for m in json.loads(saved.read_text(encoding="utf-8"))["marks"]]


def _first_session(qtbot, make_window, study, private_settings):
    """A ruler kept on a film that is not the one shown first on opening (on disk: the next window, a restart, reads
    it from there; nothing of this window's memory reaches it)."""
    first = make_window(show=True)
    shown = open_and_wait(qtbot, first, study)
    film = next(p for p in first.browser.image_paths() if p != shown)
    select(qtbot, first, film)
    first.scene.commit(RULER_MARK)
    assert first.autosave.save_now() == set()
    assert kept_kinds(private_settings, film) == [RULER]
    return film


def test_a_mark_drawn_in_a_comparison_viewport_keeps_the_films_kept_marks(qtbot, make_window, study,
                                                                          private_settings):
    film = _first_session(qtbot, make_window, study, private_settings)
    second = make_window(show=True)
    assert open_and_wait(qtbot, second, study) != film  # the film is never in the main viewer this session
    viewport = second.comparison.viewports[0]
    with qtbot.waitSignal(viewport.shown, timeout=WAIT_MS):
        second.comparison.compare_with(film)
    # the kept ruler is shown in the viewport, and the arrow drawn there joins it
    assert [m.kind for m in second.annotations.for_path(film)] == [RULER]
    assert len(viewport.scene.annotation_items()) == 1
    viewport.scene.commit(ARROW_MARK)
    assert second.autosave.save_now() == set()
    assert kept_kinds(private_settings, film) == [RULER, ARROW]


def test_a_mark_added_to_a_film_never_shown_keeps_its_kept_marks(qtbot, make_window, study, private_settings):
    """Whatever draws on a film whose kept marks were not put back, the write keeps them with the new mark."""
    film = _first_session(qtbot, make_window, study, private_settings)
    second = make_window(show=True)
    assert open_and_wait(qtbot, second, study) != film
    second.annotations.add(film, ARROW_MARK)
    assert second.autosave.save_now() == set()
    assert sorted(kept_kinds(private_settings, film)) == sorted([RULER, ARROW])
