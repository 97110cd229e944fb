"""Issue 16: the public engine API (``from cxr_engine import ...``), one test or more per public name,
and the rule that outside callers never import a private (``_x``) name of the engine.

Model tests use the bundled ONNX classifier (``--backend onnx`` never imports torch); films come from
``../shared/data/dicom`` (skipped with the reason when absent).
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cxr_engine
from cxr_engine import (CxrImage, FileEvent, FoundImages, ModelCard, ModelError, Prediction, ReportPage, ScanResult,
                        choose_card, classify_files, find_images, load_classifier, read_image, scan, write_report)

from model_factory import BUNDLED_CARD

ROOT = Path(__file__).resolve().parents[1]
CR = "CR-MONO1-10-chest.dcm"
SIIM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
J2K = "JPEG2KLossless_1s_1f_u_16_16.dcm"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def classifier():
    loaded = load_classifier(BUNDLED_CARD, backend="onnx", device="cpu")
    yield loaded
    loaded.close()


@pytest.fixture
def films(tmp_path, dicom_dir) -> list[Path]:
    """Three real films and a damaged file named like a DICOM file, in that order."""
    folder = tmp_path / "films"
    folder.mkdir()
    paths = [Path(shutil.copy(dicom_dir / name, folder / name)) for name in (CR, SIIM, J2K)]
    broken = folder / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    return [paths[0], broken, paths[1], paths[2]]


# ----------------------------------------------------------------------------- the package


def test_import_cxr_engine_imports_no_model_library():
    code = ("import sys, cxr_engine; names = cxr_engine.__all__; "
            "cxr_engine.find_images; cxr_engine.classify_files; cxr_engine.load_classifier; "
            "heavy = {'torch', 'timm', 'onnxruntime'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", cxr_engine.__all__)
def test_every_public_name_is_documented_and_lives_in_a_public_module(name):
    value = getattr(cxr_engine, name)
    assert value.__doc__ and value.__doc__.strip(), f"{name} has no docstring"
    assert not any(part.startswith("_") for part in value.__module__.split("."))
    assert name in dir(cxr_engine)


def test_dir_gives_the_public_api_only():
    # Not the module's helpers and imports (importlib, _PUBLIC, annotations) nor the subpackages that
    # importing the engine's modules sets on it (reading, pixels, ...): those are the engine's inside.
    names = dir(cxr_engine)
    assert names == sorted([*cxr_engine.__all__, "__version__"])
    assert all(getattr(cxr_engine, name) is not None for name in names)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'classify'"):
        cxr_engine.classify  # noqa: B018


# ----------------------------------------------------------------------------- reading


def test_read_image_gives_the_stored_values_and_the_header(dicom_dir):
    image = read_image(dicom_dir / CR)
    assert isinstance(image, CxrImage)
    assert image.shape == (440, 440) and image.stored.dtype == np.uint16  # CR-MONO1: 440 × 440, 10-bit stored
    assert image.metadata.modality == "CR"


def test_read_image_names_the_file_and_the_reason(films):
    with pytest.raises(cxr_engine.ImageReadError, match="broken.dcm"):
        read_image(films[1])


def test_scan_gives_the_tree(dicom_dir):
    result = scan(dicom_dir)
    assert isinstance(result, ScanResult)
    assert len(result.image_files()) == 8 and result.errors == ()


def test_find_images_lists_folders_in_walk_order_and_named_files_always(tmp_path, films):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    found = find_images([films[0].parent, notes, tmp_path / "missing.dcm"])
    assert isinstance(found, FoundImages)
    assert sorted(found.files[:4]) == sorted(films) and found.files[4:] == [notes, tmp_path / "missing.dcm"]
    assert set(found.problems) == {films[1], notes, tmp_path / "missing.dcm"}  # the scan's reasons (the app's words)
    assert found.problems[notes] == "a text file: this program reads DICOM, PNG and JPEG files only"  # it never claimed to be DICOM
    assert found.problems[tmp_path / "missing.dcm"] == "no such file or folder"
    assert len(found.scans) == 2 and not found.cancelled  # the missing file is not scanned


def test_find_images_leaves_out_the_excluded_folders(tmp_path, films):
    outputs = films[0].parent / "out"
    outputs.mkdir()
    shutil.copy(films[0], outputs / "copy.dcm")
    found = find_images([films[0].parent])  # a copy of films[0]: one of the two is listed, the other named
    assert outputs / "copy.dcm" in [*found.files, *(p for copies in found.copies.values() for p in copies)]
    excluded = find_images([films[0].parent], exclude=[outputs])
    assert outputs / "copy.dcm" not in excluded.files and not excluded.copies
    assert films[0] in excluded.files  # the copy in the excluded folder never stands for it


def test_find_images_can_be_cancelled(films):
    calls = []

    def should_cancel():
        calls.append(1)
        return len(calls) > 3

    found = find_images([films[0].parent], should_cancel=should_cancel)
    assert found.cancelled and len(found.files) < 4


def test_the_cli_and_the_desktop_find_the_same_files(tmp_path, dicom_dir):
    """A folder with ``IM0001.ima``, a UID-named file without a suffix, a DICOMDIR, a PNG and a
    symbolic-link loop: ``cxr-classify`` classifies exactly the images the app's study tree shows."""
    import csv

    import cv2
    import pydicom
    from pydicom.fileset import FileSet
    from pydicom.uid import generate_uid

    from cxr_desktop.scan_job import scan_paths
    from cxr_engine.cli import main

    folder = tmp_path / "study"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(dicom_dir / "Fake_MONOHR1.dcm", folder / "IM0001.ima")
    shutil.copy(dicom_dir / CR, folder / "1.2.392.200036.9125.0.19950720112207")
    cv2.imwrite(str(folder / "film.png"), np.tile(np.linspace(0, 255, 300).astype(np.uint8), (300, 1)))  # has content
    (folder / "sub" / "loop").symlink_to("..")
    ds = pydicom.dcmread(dicom_dir / SIIM)
    for keyword, value in (("StudyID", "1"), ("SeriesNumber", 1), ("InstanceNumber", 1)):
        if not ds.get(keyword):
            setattr(ds, keyword, value)  # what a DICOMDIR record needs (PS3.3 F.5)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "staged.dcm")
    fileset = FileSet()
    fileset.add(tmp_path / "staged.dcm")
    fileset.write(folder / "cd")

    out = tmp_path / "results.csv"
    assert main([str(folder), "--model", str(BUNDLED_CARD), "--backend", "onnx", "--no-isolation", "--csv", str(out),
                 "-q"]) == 0
    with open(out, newline="") as handle:
        cli = [Path(row["path"]) for row in csv.DictReader(handle)]
    (desktop,) = scan_paths([folder], progress=lambda value: None, should_cancel=lambda: False)
    names = sorted(path.relative_to(folder).parts[0] for path in cli)
    assert names == ["1.2.392.200036.9125.0.19950720112207", "IM0001.ima", "cd", "film.png"]
    assert len(cli) == len(set(cli)), "each file once, though the loop and the DICOMDIR reach them again"
    assert set(cli) == {inst.path for inst in desktop.all_instances() if inst.is_image}


# ----------------------------------------------------------------------------- models


def test_choose_card_by_name_path_and_environment(monkeypatch):
    monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
    assert choose_card("efficientnet-lite0").name == "efficientnet-lite0"
    assert choose_card(BUNDLED_CARD).path == BUNDLED_CARD
    monkeypatch.setenv("CXR_MODEL_CARD", str(BUNDLED_CARD))
    assert choose_card().name == "efficientnet-lite0"
    assert isinstance(choose_card(), ModelCard)
    with pytest.raises(ModelError, match="no bundled model named 'nosuch'"):
        choose_card("nosuch")


def test_naming_a_model_below_the_bar_warns_with_the_checks_it_fails(monkeypatch, caplog):
    from cxr_engine.models.model_card import bar_failures

    monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
    with caplog.at_level("WARNING", logger="cxr_engine.models.loading"):
        card = choose_card(BUNDLED_CARD)
    if card.meets_bar:
        assert not caplog.records
        return
    message = caplog.records[-1].getMessage()
    assert message.startswith(f"model {card.name} is below the project's bar") and message.endswith("For testing only.")
    assert all(f in message for f in bar_failures(card))


def test_choose_card_without_a_choice_names_the_bundled_models(monkeypatch, tmp_path):
    monkeypatch.delenv("CXR_MODEL_CARD", raising=False)
    with pytest.raises(ModelError, match=r"no bundled model meets the project's bar.*bundled: none"):
        choose_card(models_dir=tmp_path)


def test_a_card_with_an_unknown_preprocessing_version_is_refused_at_load(tmp_path):
    card = json.loads(BUNDLED_CARD.read_text())
    card["preprocessing_version"] = "cxr-pre-99"
    path = tmp_path / "future.json"
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"future.json.*unknown preprocessing_version 'cxr-pre-99'"):
        load_classifier(path, backend="onnx")


def test_load_classifier_loads_on_the_chosen_backend_and_device(classifier):
    assert classifier.name == "efficientnet-lite0" and classifier.device == "cpu"
    assert "onnxruntime" in sys.modules and classifier.load_warning == ""


def test_load_classifier_falls_back_to_the_cpu_only_when_asked():
    with pytest.raises(ValueError, match="cuda:7"):
        load_classifier(BUNDLED_CARD, backend="onnx", device="cuda:7")
    fallback = load_classifier(BUNDLED_CARD, backend="onnx", device="cuda:7", cpu_fallback=True)
    assert fallback.device == "cpu" and "using the CPU" in fallback.load_warning
    with pytest.raises(ValueError, match="backend must be one of"):
        load_classifier(BUNDLED_CARD, backend="tensorflow", cpu_fallback=True)


# ----------------------------------------------------------------------------- classifying


def test_classify_files_yields_each_stage_in_order_with_reasons(films, classifier):
    events = list(classify_files(films, classifier, batch_size=2))
    assert all(isinstance(event, FileEvent) for event in events)
    final = [event for event in events if event.done]
    assert [event.path for event in final] == films
    assert [event.stage for event in final] == ["classified", "failed", "classified", "classified"]
    assert final[1].reason and final[1].image is None  # the reason, in words
    decoded = [event.index for event in events if event.stage == "decoded"]
    assert decoded == [0, 2, 3]
    first = final[0]
    assert isinstance(first.prediction, Prediction) and first.prediction.classes == tuple(classifier.classes)
    assert abs(sum(first.prediction.probabilities) - 1.0) < 1e-6 and first.heatmap is None
    assert isinstance(first.warnings, tuple)
    # each file's decoded event comes before its final one
    order = [(event.index, event.stage) for event in events]
    assert all(order.index((i, "decoded")) < order.index((i, "classified")) for i in (0, 2, 3))


def test_a_single_path_string_is_one_path_not_its_characters(films, classifier):
    """A plain ``str`` (or ``Path``) given where a list is expected means that one file or folder."""
    assert [Path(p) for p in find_images(str(films[0])).files] == [films[0]]
    assert len(find_images(films[0].parent).files) == len(find_images([films[0].parent]).files)
    final = [event for event in classify_files(str(films[0]), classifier) if event.done]
    assert [(event.path, event.stage) for event in final] == [(films[0], "classified")]


def test_classify_files_gives_heat_maps_in_the_image_geometry(films, classifier):
    (event,) = [e for e in classify_files(films[:1], classifier, heatmaps=True) if e.done]
    heatmap = event.heatmap.heatmap
    assert heatmap.dtype == np.float32 and heatmap.shape == event.image.shape[:2]
    assert 0.0 <= heatmap.min() and heatmap.max() <= 1.0
    assert event.heatmap.prediction == event.prediction


def test_classify_files_agrees_with_predict(films, classifier):
    """By default the film is read as the model input needs it (``model_reader``: the reduced decode
    ``cxr-classify`` and the app use); with a full-resolution reader it is the full film's prediction."""
    from cxr_engine.classification import model_reader

    (event,) = [e for e in classify_files(films[2:3], classifier) if e.done]
    (direct,) = classifier.predict([model_reader(classifier.card)(films[2])])
    assert event.prediction.probabilities == pytest.approx(direct.probabilities, abs=1e-6)
    (full,) = [e for e in classify_files(films[2:3], classifier, reader=read_image) if e.done]
    (direct,) = classifier.predict([read_image(films[2])])
    assert full.prediction.probabilities == pytest.approx(direct.probabilities, abs=1e-6)


def test_classify_files_stops_when_the_caller_stops(films, classifier):
    reads = []

    def reader(path):
        reads.append(path)
        return read_image(path)

    events = classify_files(films[2:] + films[:1], classifier, reader=reader, batch_size=8)
    first = next(events)
    assert first.stage == "decoded"
    events.close()
    assert reads == [films[2]]
    assert list(events) == []


def test_classify_files_reads_the_next_batch_while_the_model_runs(films, classifier):
    import threading

    second_read = threading.Event()
    seen = []

    def reader(path):
        if path == films[3]:
            second_read.set()
        return read_image(path)

    class Recording:
        card, name, classes = classifier.card, classifier.name, classifier.classes

        def predict(self, images):
            # the first batch waits (bounded) until the next file is being read: only an overlap sets it
            seen.append((threading.current_thread() is threading.main_thread(), second_read.wait(timeout=10)))
            return classifier.predict(images)

    events = [e for e in classify_files([films[2], films[3]], Recording(), reader=reader, batch_size=1) if e.done]
    assert [e.path for e in events] == [films[2], films[3]] and {e.stage for e in events} == {"classified"}
    assert seen[0] == (False, True)  # in the model's own thread, the next read already started


def test_a_classification_failure_keeps_the_image_and_says_why(films, classifier):
    class Broken:
        card, name, classes = classifier.card, classifier.name, classifier.classes

        def predict(self, images):
            raise RuntimeError("out of memory")

    events = [e for e in classify_files(films[2:], Broken(), batch_size=2) if e.done]
    assert [e.stage for e in events] == ["failed", "failed"]
    assert events[0].image is not None and events[0].reason == "classification failed: RuntimeError: out of memory"


# ----------------------------------------------------------------------------- the report


def test_write_report_writes_a_pdf_from_classify_files(tmp_path, films, classifier):
    from cxr_engine.pixels.rendering import render

    (event,) = [e for e in classify_files(films[:1], classifier, heatmaps=True) if e.done]
    page = ReportPage.for_image(event.image, render(event.image), heatmap_result=event.heatmap)
    path = write_report(tmp_path / "report.pdf", [page], model_card=classifier.card, deidentify=True)
    assert path.read_bytes().startswith(b"%PDF") and path.stat().st_size > 10_000


# ----------------------------------------------------------------------------- private names


def _python_files(*folders: str):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "work" not in path.relative_to(ROOT).parts:
                yield path


def _private_uses(path: Path) -> list[str]:
    """``from cxr_engine... import _x``, a private module, or ``engine_module._x``, in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    engine_names: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cxr_engine"):
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append(f"{path.name}:{node.lineno} imports {node.module}")
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno} imports {alias.name} from {node.module}")
                engine_names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("cxr_engine"):
                    engine_names.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in engine_names):
            found.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_outside_callers_never_use_a_private_name_of_the_engine():
    uses = [use for path in _python_files("cxr_desktop", "training", "benchmarks", "packaging", "docs")
            for use in _private_uses(path)]
    assert uses == []


def test_the_private_name_check_catches_each_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from cxr_engine.reading.scanning import _walk\n"
                      "from cxr_engine.reading import scanning\n"
                      "import cxr_engine.reading.read as read\n"
                      "scanning._Scanner\nread._starts_as_raster\nscanning.scan\n")
    assert len(_private_uses(sample)) == 3
