"""Packaging without building: what each bundle holds, the smoke test's output checks, the bundle
entry point from source; and the smoke test of a built bundle when ``dist/`` holds one."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
TORCH_STACK = ("torch", "torchvision", "timm", "pytorch_grad_cam", "triton", "nvidia")


def load(name: str):
    """A script from ``packaging/`` as a module (the folder is no package: it would shadow PyPI's
    ``packaging``), leaving ``sys.path`` as it was."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location(f"cxr_packaging_{name}", PACKAGING / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = saved


@pytest.fixture(scope="module")
def bundles():
    return load("bundles")


@pytest.fixture(scope="module")
def smoke():
    return load("smoke_test")


class TestWhatEachBundleHolds:
    def test_lite_excludes_the_torch_stack_and_full_only_triton(self, bundles):
        lite, full = bundles.excludes("lite"), bundles.excludes("full")
        assert set(TORCH_STACK) <= set(lite)
        assert "triton" in full and not {"torch", "torchvision", "timm", "pytorch_grad_cam", "nvidia"} & set(full)
        assert "onnxruntime" not in lite + full and not any(name.startswith("cxr_") for name in lite + full)

    def test_every_data_file_exists(self, bundles):
        for variant in bundles.VARIANTS:
            files = bundles.data_files(variant)
            missing = [str(f.source) for f in files if not f.source.is_file()]
            assert not missing, f"{variant} spec names missing files: {missing}"
            assert {f.dest for f in files} >= {"resources/models", "resources/samples/study"}

    def test_lite_carries_each_models_onnx_and_card_but_no_safetensors(self, bundles):
        lite = {f.source.name for f in bundles.model_files("lite")}
        full = {f.source.name for f in bundles.model_files("full")}
        assert {"efficientnet-lite0.json", "efficientnet-lite0.onnx"} <= lite
        assert not any(name.endswith(".safetensors") for name in lite)
        assert {"efficientnet-lite0.json", "efficientnet-lite0.onnx", "efficientnet-lite0.safetensors"} <= full

    def test_an_averaged_model_ships_with_its_members_in_both_bundles(self, bundles):
        folder = Path(bundles.REPO) / "resources" / "models"
        averaged = [path for path in sorted(folder.glob("*.json"))
                    if json.loads(path.read_text(encoding="utf-8")).get("architecture") == "ensemble"]
        if not averaged:
            pytest.skip("no averaged model is bundled")
        for variant in ("lite", "full"):
            shipped = {f.source.name for f in bundles.model_files(variant)}
            for path in averaged:
                members = [m["card"] for m in json.loads(path.read_text(encoding="utf-8"))["members"]]
                assert path.name in shipped and {f"{m}.json" for m in members} <= shipped
                assert {f"{m}.onnx" for m in members} <= shipped

    def test_the_bundled_onnx_files_match_their_cards(self, bundles):
        for data in bundles.model_files("lite"):
            if data.source.suffix == ".json":
                card = json.loads(data.source.read_text(encoding="utf-8"))
                if card.get("torch_free") or card.get("architecture") == "ensemble":  # no ONNX export of their own
                    continue
                onnx = data.source.with_name(card["onnx_file"])
                assert hashlib.sha256(onnx.read_bytes()).hexdigest() == card["onnx_sha256"]

    def test_the_image_checks_ship_in_both_bundles(self, bundles):
        for variant in bundles.VARIANTS:
            names = {f.source.name for f in bundles.model_files(variant)}
            assert {"image-checks.json", "image-checks.mlp", "image-laterality.json", "image-laterality.mlp"} <= names, variant

    def test_a_card_without_an_onnx_export_stays_out_of_lite(self, bundles, tmp_path):
        (tmp_path / "a.json").write_text(json.dumps({"weights_file": "a.safetensors", "onnx_file": "a.onnx"}))
        (tmp_path / "b.json").write_text(json.dumps({"weights_file": "b.safetensors"}))
        assert [f.source.name for f in bundles.model_files("lite", tmp_path)] == ["a.json", "a.onnx"]
        assert [f.source.name for f in bundles.model_files("full", tmp_path)] == [
            "a.json", "a.safetensors", "a.onnx", "b.json", "b.safetensors"]
        with pytest.raises(ValueError, match="variant"):
            bundles.model_files("tiny")

    def test_spec_files_build_their_own_variant(self, bundles):
        for variant in bundles.VARIANTS:
            text = (PACKAGING / f"cxr_reader_{variant}.spec").read_text(encoding="utf-8")
            assert f'make_bundle("{variant}")' in text and "sys.path.insert(0, SPECPATH)" in text
        assert bundles.ENTRY_SCRIPT.is_file()

    @pytest.mark.parametrize("dest", [
        "PySide6/Qt/translations/qtbase_de.qm", "PySide6/Qt/plugins/platforms/libqvnc.so",
        "PySide6/Qt/lib/libQt6Network.so.6", "libQt6Network.so.6", "PySide6/Qt6Quick.dll",
        "PySide6/plugins/tls/qopensslbackend.dll", "PySide6/opengl32sw.dll"])
    def test_unused_qt_pieces_are_stripped(self, bundles, dest):
        assert bundles.is_stripped(dest)

    @pytest.mark.parametrize("dest", [
        "PySide6/Qt/lib/libQt6Core.so.6", "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/plugins/platforms/qwindows.dll", "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "PySide6/QtWidgets.abi3.so", "onnxruntime/capi/onnxruntime_pybind11_state.so"])
    def test_what_the_app_needs_is_kept(self, bundles, dest):
        assert not bundles.is_stripped(dest)

    def test_forbidden_entries_finds_torch_whatever_the_platform_names(self, bundles, tmp_path):
        for rel in ("torch/lib/libtorch_cpu.so", "nvidia/cudnn/lib/libcudnn.so.9", "c10.dll", "timm/__init__.pyc",
                    "onnxruntime/capi/onnxruntime.so", "cv2/cv2.abi3.so"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(b"")
        hits = bundles.forbidden_entries(tmp_path)
        assert {"torch", "nvidia", "c10.dll", "timm", "nvidia/cudnn/lib/libcudnn.so.9", "cv2"} <= set(hits)
        assert not [h for h in hits if h.startswith("onnxruntime")]

    def test_torch_free_requirements_leave_out_the_torch_stack(self):
        names = {load("torch_free_requirements").distribution(r)
                 for r in load("torch_free_requirements").torch_free_requirements()}
        assert not names & {"torch", "torchvision", "timm", "grad-cam", "safetensors"}
        assert {"onnxruntime", "pydicom", "pylibjpeg-openjpeg", "pyjpegls", "python-gdcm", "reportlab",
                "pytest"} <= names


class TestSmokeChecks:
    def write_png(self, path: Path, pixels: np.ndarray) -> Path:
        from PIL import Image

        Image.fromarray(pixels).save(path)
        return path

    def test_png_check(self, smoke, tmp_path):
        rng = np.random.default_rng(0)
        good = self.write_png(tmp_path / "good.png", rng.integers(0, 255, (700, 1200, 3), dtype=np.uint8))
        small = self.write_png(tmp_path / "small.png", rng.integers(0, 255, (50, 80, 3), dtype=np.uint8))
        blank = self.write_png(tmp_path / "blank.png", np.full((700, 1200, 3), 40, np.uint8))
        (tmp_path / "fake.png").write_bytes(b"not a png")
        (tmp_path / "cut.png").write_bytes(good.read_bytes()[:200])
        assert smoke.check_png(good) == []
        assert "expected at least" in smoke.check_png(small)[0]
        assert "blank" in smoke.check_png(blank)[0]
        assert "not a PNG" in smoke.check_png(tmp_path / "fake.png")[0]
        assert "does not decode" in smoke.check_png(tmp_path / "cut.png")[0]
        assert "not written" in smoke.check_png(tmp_path / "absent.png")[0]

    def test_pdf_check(self, smoke, tmp_path):
        pytest.importorskip("pypdf")
        canvas = pytest.importorskip("reportlab.pdfgen.canvas")

        def pdf(path: Path, text: str) -> Path:
            page = canvas.Canvas(str(path))
            page.drawString(72, 720, text)
            page.save()
            return path

        assert smoke.check_pdf(pdf(tmp_path / "ok.pdf", "Normal 93.6 % Pneumonia 0.7 % COVID-19 5.6 %")) == []
        problems = smoke.check_pdf(pdf(tmp_path / "partial.pdf", "Normal 100 %"))
        assert len(problems) == 2 and "'COVID-19'" in problems[1]
        (tmp_path / "fake.pdf").write_bytes(b"%PDF-1.4 nonsense")
        assert "does not parse" in smoke.check_pdf(tmp_path / "fake.pdf")[0]

    def test_info_check_holds_each_variant_to_its_promise(self, smoke):
        libraries = ["onnxruntime", "reportlab", "pydicom", "pylibjpeg", "openjpeg", "rle", "jpeg_ls", "gdcm",
                     "highdicom", "pynetdicom"]
        info = {"frozen": True, "importable": dict.fromkeys(libraries, True) | {"torch": False, "cv2": False},
                "decoders": {"jpeg_2000": ["gdcm", "pylibjpeg"]},
                "decoded": {"a.dcm": {"engine": "ok 10x10 uint16", "plugins": {"gdcm": "ok", "pylibjpeg": "error: x"}}}}
        reference = {"decoders": {"jpeg_2000": ["gdcm", "pillow", "pylibjpeg"]},
                     "decoded": {"a.dcm": {"plugins": {"gdcm": "ok", "pylibjpeg": "ok", "pillow": "error: y"}}}}
        assert smoke.check_info(info, "lite") == []
        problems = smoke.check_info(info, "lite", reference)
        assert len(problems) == 2 and "pillow" in problems[0] and "pylibjpeg decodes it from source" in problems[1]
        assert "cannot import torch" in smoke.check_info(info, "full")
        info["importable"]["torch"] = True
        assert "torch is importable, but the lite bundle must not hold it" in smoke.check_info(info, "lite")
        assert "cannot import cv2" in smoke.check_info(info, "full")  # the full bundle's Grad-CAM needs OpenCV
        info["importable"]["cv2"] = True
        assert "cv2 is importable, but the lite bundle must not hold it" in smoke.check_info(info, "lite")


def test_dicom_outputs_check(smoke):
    films = {"a.dcm": {f"{who}/{kind}": f"ok x; same study: {who == 'identified'}"
                       for who in ("identified", "deidentified") for kind in ("sc", "sr", "pdf")}}
    info = {"films": films, "network": "ok 86 retrieve contexts", "torch_imported": False}
    assert smoke.check_dicom_outputs(info, "lite") == []
    del films["a.dcm"]["deidentified/sr"]
    films["a.dcm"]["identified/sc"] = "ok x; same study: False"
    info["torch_imported"] = True
    problems = smoke.check_dicom_outputs(info, "lite")
    assert problems == ["a.dcm: identified sc: ok x; same study: False", "a.dcm: deidentified sr: missing",
                        "the DICOM outputs imported torch in the lite bundle"]
    assert smoke.check_dicom_outputs({"error": "boom"}, "lite") == ["the DICOM outputs could not start: boom"]


def test_dicom_outputs_from_source(tmp_path):
    """The bundles' ``--dicom-outputs`` check, run from source on one sample film."""
    pytest.importorskip("highdicom")
    pytest.importorskip("onnxruntime")
    sample = sorted((REPO / "resources" / "samples" / "study").glob("*.dcm"))[0]
    out = tmp_path / "dicom.json"
    proc = subprocess.run([sys.executable, str(PACKAGING / "cxr_reader.py"), "--dicom-outputs", str(out),
                           str(tmp_path / "objects"), str(sample)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(out.read_text())
    assert load("smoke_test").check_dicom_outputs(info, "lite") == []
    assert info["torch_imported"] is False


def test_bundle_info_from_source_lists_the_decoders(tmp_path):
    """The bundles' entry point, run from source: the smoke test compares a bundle against this."""
    pytest.importorskip("pydicom")
    sample = next((REPO / "resources" / "samples" / "study").glob("*j2k*.dcm"))
    out = tmp_path / "info.json"
    proc = subprocess.run([sys.executable, str(PACKAGING / "cxr_reader.py"), "--bundle-info", str(out), str(sample)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(out.read_text())
    assert info["frozen"] is False and "models/efficientnet-lite0.onnx" in info["resources"]
    assert {"pylibjpeg", "gdcm"} <= set(info["decoders"]["jpeg_2000"])
    assert "pyjpegls" in info["decoders"]["jpeg_ls_lossless"]
    assert info["decoded"][str(sample)]["engine"].startswith("ok 1841x1955")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lite", "full"])
def test_built_bundle_passes_its_smoke_test(smoke, variant, tmp_path):
    bundle = REPO / "dist" / f"cxr-reader-{variant}"
    if not bundle.is_dir():
        pytest.skip(f"{bundle.relative_to(REPO)} is not built (make bundle-{variant}); CI does not build bundles")
    pytest.importorskip("pypdf")
    report = smoke.smoke_test(bundle, variant, tmp_path, smoke.extra_dicoms(None), timeout_s=600)
    assert report.passed, "\n".join(report.problems)


def test_segment_lungs_from_source_finds_the_sample_study_lungs(smoke, tmp_path):
    """The bundles' --segment-lungs, run from source: the smoke test holds a bundle to the same check."""
    pytest.importorskip("onnxruntime")
    if not (REPO / "resources" / "models" / "lung-unet.json").exists():
        pytest.skip("no lung model bundled")
    samples = [str(p) for p in sorted((REPO / "resources" / "samples" / "study").glob("*.dcm"))]
    out = tmp_path / "lungs.json"
    proc = subprocess.run([sys.executable, str(PACKAGING / "cxr_reader.py"), "--segment-lungs", str(out), *samples],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(out.read_text())
    assert set(info["films"]) == set(samples) and not info["torch_imported"]
    assert smoke.check_lungs(info, "lite") == []
    broken = {"films": {"a.dcm": {"image": [10, 20], "mask": [20, 10], "found": True},
                        "b.dcm": {"image": [5, 5], "mask": [5, 5], "found": False, "warning": "lung fields not found"},
                        "c.dcm": {"error": "ValueError: x"}}, "torch_imported": True}
    problems = smoke.check_lungs(broken, "lite")
    assert len(problems) == 4 and "not the image's size" in problems[0] and "torch" in problems[3]
    assert smoke.check_lungs({"error": "ModelError: gone"}, "lite") == ["the lung model does not load: ModelError: gone"]
