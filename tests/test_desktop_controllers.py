"""The desktop's Qt-free controllers (cxr_desktop.controllers): the study workspace and its one decode
cache, the one owner of classification results, and what a PDF export gathers. Real films; no Qt."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cxr_desktop.controllers.export_context import ExportContext, gather, known_heatmaps
from cxr_desktop.controllers.results import ClassificationResults
from cxr_desktop.controllers.workspace import StudyWorkspace
from cxr_engine import read_image
from cxr_engine.models.classifier import HeatmapResult, Prediction
from cxr_engine.reading.decode_cache import CachedDecoder
from cxr_engine.reading.reduced_decode import DecodeRequest

from conftest import film_folder

FILMS = ["966_fixed.dcm", "RG1_J2KI.dcm"]
CLASSES = ("Normal", "Pneumonia", "COVID-19")


class CountingPool:
    """Reads films in this process, counting each (file, size) decoded."""

    workers = 1

    def __init__(self):
        self.reads = Counter()

    def read(self, path, request):
        self.reads[(Path(path).name, request.min_side)] += 1
        return read_image(path, request)


@pytest.fixture()
def films(tmp_path, dicom_dir) -> Path:
    return film_folder(tmp_path, dicom_dir, FILMS)


def prediction(p_normal: float) -> Prediction:
    rest = (1.0 - p_normal) / 2
    return Prediction(CLASSES, (p_normal, rest, rest), "test-model")


def heatmap_result(target: str, p_normal: float = 0.6) -> HeatmapResult:
    return HeatmapResult(np.zeros((4, 4), np.float32), target, prediction(p_normal))


class TestStudyWorkspace:
    def test_scan_finds_the_films_and_names_the_damaged_file(self, films):
        workspace = StudyWorkspace(CachedDecoder(CountingPool()))
        workspace.open([films])
        workspace.set_scans(workspace.scan(progress=lambda _: None, should_cancel=lambda: False))
        found = sorted(p.name for scan in workspace.scans for p in scan.image_files())
        assert found == sorted(FILMS) and not workspace.cancelled
        assert [(p.name, bool(reason)) for p, reason in workspace.problems()] == [("damaged.dcm", True)]

    def test_scan_of_a_missing_path_names_it(self, tmp_path):
        workspace = StudyWorkspace(CachedDecoder(CountingPool()))
        workspace.open([tmp_path / "nowhere"])
        with pytest.raises(FileNotFoundError, match="nowhere"):
            workspace.scan(progress=lambda _: None, should_cancel=lambda: False)

    def test_a_film_is_decoded_once_per_size(self, films):
        pool = CountingPool()
        decoder = CachedDecoder(pool)
        workspace = StudyWorkspace(decoder, shown_cache_size=1)
        film = films / FILMS[0]
        shown = workspace.load(film)
        assert workspace.load(film) is shown  # kept with its renderer
        workspace.load(films / FILMS[1])  # pushes the first out of the films kept for the viewer...
        again = workspace.load(film)
        assert again is not shown and again.image is shown.image  # ...but not out of the decode cache
        model_copy = decoder.read(film, DecodeRequest(min_side=300))
        assert model_copy.shape != shown.image.shape
        assert pool.reads == Counter({(FILMS[0], None): 1, (FILMS[1], None): 1, (FILMS[0], 300): 1})

    def test_a_damaged_file_raises_with_its_name_and_is_not_kept(self, films):
        from cxr_engine.errors import ImageReadError

        workspace = StudyWorkspace(CachedDecoder(CountingPool()))
        with pytest.raises(ImageReadError, match="damaged.dcm"):
            workspace.load(films / "damaged.dcm")
        assert workspace.get(films / "damaged.dcm") is None

    def test_open_forgets_the_films_kept(self, films):
        workspace = StudyWorkspace(CachedDecoder(CountingPool()))
        workspace.load(films / FILMS[0])
        workspace.open([films])
        assert workspace.get(films / FILMS[0]) is None and workspace.opened == [films]


class TestClassificationResults:
    def test_a_heatmap_stores_its_prediction_under_both_classes(self, tmp_path):
        results, heard = ClassificationResults(), []
        results.subscribe(lambda path, p: heard.append((path.name, p.label)))
        shown = heatmap_result("Normal")
        results.add_heatmap(tmp_path / "a.dcm", "", shown)
        assert results.heatmap(tmp_path / "a.dcm") is shown and results.heatmap(tmp_path / "a.dcm", "Normal") is shown
        assert results.prediction(tmp_path / "a.dcm") is shown.prediction
        assert heard == [("a.dcm", "Normal")]

    def test_heatmaps_are_bounded_but_predictions_kept(self, tmp_path):
        results = ClassificationResults(heatmap_cache_size=2)
        for index in range(3):
            results.add_heatmap(tmp_path / f"{index}.dcm", "Normal", heatmap_result("Normal"))
        assert results.heatmap(tmp_path / "0.dcm", "Normal") is None
        assert results.heatmap(tmp_path / "2.dcm", "Normal") is not None
        assert all(results.prediction(tmp_path / f"{index}.dcm") is not None for index in range(3))

    def test_forget_drops_prediction_and_heatmaps_of_one_film(self, tmp_path):
        results = ClassificationResults()
        results.add_heatmap(tmp_path / "a.dcm", "", heatmap_result("Normal"))
        results.add_prediction(tmp_path / "b.dcm", prediction(0.2))
        results.forget(tmp_path / "a.dcm")
        assert results.prediction(tmp_path / "a.dcm") is None and results.heatmap(tmp_path / "a.dcm") is None
        assert results.prediction(tmp_path / "b.dcm").label == "Pneumonia"


def context(workspace, results, current=None, current_class="", classifier=None) -> ExportContext:
    return ExportContext(workspace, results, classifier, None, "no model here", current, current_class, None,
                         lambda image: None)


class TestExportContext:
    def test_the_film_on_screen_uses_its_shown_heatmap_class(self, tmp_path):
        results = ClassificationResults()
        on_screen, other = tmp_path / "a.dcm", tmp_path / "b.dcm"
        results.add_heatmap(on_screen, "COVID-19", heatmap_result("COVID-19"))
        results.add_heatmap(other, "", heatmap_result("Normal"))
        ctx = context(StudyWorkspace(CachedDecoder(CountingPool())), results, on_screen, "COVID-19")
        known = known_heatmaps(ctx, [on_screen, other])
        assert known[on_screen].target_class == "COVID-19" and known[other].target_class == "Normal"

    def test_gather_without_a_model_decodes_once_and_gives_reasons(self, films):
        pool = CountingPool()
        workspace = StudyWorkspace(CachedDecoder(pool))
        workspace.load(films / FILMS[0])  # on screen already
        paths = [films / FILMS[0], films / "damaged.dcm", films / FILMS[1]]
        pages = list(gather(context(workspace, ClassificationResults()), paths, {}))
        assert [p.name for p, *_ in pages] == [FILMS[0], "damaged.dcm", FILMS[1]]
        (_, first, _, why_first), (_, damaged, _, why_damaged), (_, second, _, _) = pages
        assert first is workspace.get(films / FILMS[0]) and why_first == "no model here"
        assert damaged is None and why_damaged and second is not None
        assert pool.reads[(FILMS[0], None)] == 1 and pool.reads[(FILMS[1], None)] == 1


def test_the_controllers_import_no_qt():
    """The import contract in pyproject.toml, checked at run time too: loading the controllers (and the
    worker functions they use) brings in neither PySide6 nor superqt."""
    code = ("import sys; import cxr_desktop.controllers.workspace, cxr_desktop.controllers.results, "
            "cxr_desktop.controllers.classification, cxr_desktop.controllers.export_context; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'superqt', 'qtpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_the_window_module_loads_superqt_only_with_the_first_worker():
    """Importing superqt loads all its widgets (a few tenths of a second): the window must not wait for it."""
    pytest.importorskip("PySide6")
    pytest.importorskip("superqt")
    code = ("import sys; import cxr_desktop.main_window; before = 'superqt' in sys.modules; "
            "from cxr_desktop.workers import create_worker; create_worker(print); print(before, 'superqt' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["False", "True"], out.stderr
