"""Entry point of the PyInstaller bundles: the desktop app (``cxr_desktop.app.main``, same options).

``cxr-reader --bundle-info OUT.json [DICOM ...]`` writes what the bundle can do (which inference
libraries it can import, which pixel decoders pydicom finds, its resources, and for each DICOM
given: the engine's reading of it and a decode with every pydicom plugin that claims its transfer
syntax) and exits; the smoke test reads it. It needs no console, which a Windows bundle lacks.
``cxr-reader --segment-lungs OUT.json FILE ...`` runs the bundled lung model
(``cxr_engine.models.lung_fields``, ONNX Runtime) on each file and writes the mask size, whether two
plausible lungs were found, the lung share and whether torch was imported, for the smoke test.
``cxr-reader --dicom-outputs OUT.json DIR FILE ...`` classifies each DICOM file with the bundled
model (ONNX Runtime), writes its DICOM outputs (Secondary Capture, Comprehensive SR, Encapsulated
PDF; identified and de-identified) into DIR, reads each back and builds a DICOM network request
(no network is used), for the smoke test.
"""
from __future__ import annotations

import multiprocessing
import sys

#: Transfer syntaxes whose decoders the bundle must carry (see README, "Decoders and licences").
TRANSFER_SYNTAXES = {
    "jpeg_baseline": "1.2.840.10008.1.2.4.50",
    "jpeg_lossless_sv1": "1.2.840.10008.1.2.4.70",
    "jpeg_ls_lossless": "1.2.840.10008.1.2.4.80",
    "jpeg_ls_near_lossless": "1.2.840.10008.1.2.4.81",
    "jpeg_2000_lossless": "1.2.840.10008.1.2.4.90",
    "jpeg_2000": "1.2.840.10008.1.2.4.91",
    "htj2k_lossless": "1.2.840.10008.1.2.4.201",
    "rle_lossless": "1.2.840.10008.1.2.5",
}
LIBRARIES = ("torch", "torchvision", "timm", "pytorch_grad_cam", "triton", "onnxruntime", "cv2", "reportlab",
             "pydicom", "pylibjpeg", "openjpeg", "rle", "jpeg_ls", "gdcm", "highdicom", "pynetdicom")


def decode_check(path: str) -> dict:
    """``path`` read by the engine, then decoded by each pydicom plugin for its transfer syntax."""
    from pydicom import dcmread
    from pydicom.pixels import get_decoder, pixel_array

    from cxr_engine.reading.read import read_image

    result: dict = {"transfer_syntax": "", "engine": "", "plugins": {}}
    try:
        image = read_image(path)
        result["engine"] = f"ok {image.stored.shape[1]}x{image.stored.shape[0]} {image.stored.dtype}"
    except Exception as exc:
        result["engine"] = f"error: {type(exc).__name__}: {exc}"
    try:
        uid = dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        result["transfer_syntax"] = f"{uid} ({uid.name})"
        for plugin in sorted(get_decoder(uid).available_plugins):
            try:
                pixels = pixel_array(path, decoding_plugin=plugin)
                result["plugins"][plugin] = f"ok {pixels.shape[1]}x{pixels.shape[0]} {pixels.dtype}"
            except Exception as exc:
                result["plugins"][plugin] = f"error: {type(exc).__name__}: {exc}"
    except Exception as exc:
        result["plugins"]["?"] = f"error: {type(exc).__name__}: {exc}"
    return result


def bundle_info(dicoms: list[str] = ()) -> dict:
    """What this (frozen or source) program can import and decode; imports no inference library."""
    import logging

    logging.getLogger("pydicom").setLevel(logging.ERROR)
    from pydicom.pixels import get_decoder

    from cxr_engine.libraries import library_installed
    from cxr_engine.resources import resources_dir

    decoders = {}
    for name, uid in TRANSFER_SYNTAXES.items():
        try:
            decoders[name] = sorted(get_decoder(uid).available_plugins)
        except Exception as exc:  # report, do not hide, a decoder that breaks on import
            decoders[name] = [f"error: {type(exc).__name__}: {exc}"]
    root = resources_dir()
    return {
        "frozen": bool(getattr(sys, "frozen", False)),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "importable": {name: library_installed(name) for name in LIBRARIES},
        "decoders": decoders,
        "resources": sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
        "decoded": {path: decode_check(path) for path in dicoms},
    }


def segment_lungs_info(paths: list[str]) -> dict:
    """The bundled lung model on each file: {"films": {path: result}, "torch_imported": bool}."""
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.lung_fields import LungSegmenter, lung_card

    films = {}
    try:
        segmenter = LungSegmenter(lung_card(), backend="onnx").load()
    except Exception as exc:  # report, do not hide, a model that does not load
        return {"error": f"{type(exc).__name__}: {exc}", "films": {}, "torch_imported": "torch" in sys.modules}
    for path in paths:
        try:
            image = read_image(path)
            fields = segmenter.segment(image)
            films[path] = {"image": list(image.shape), "mask": list(fields.mask.shape), "found": fields.found,
                           "lung_share": round(float(fields.mask.mean()), 4), "warning": fields.warning or ""}
        except Exception as exc:
            films[path] = {"error": f"{type(exc).__name__}: {exc}"}
    return {"films": films, "torch_imported": any(m.split(".")[0] == "torch" for m in sys.modules)}


def dicom_outputs_info(folder: str, paths: list[str]) -> dict:
    """Each file's DICOM outputs written into ``folder`` and read back: {"films": {path: {kind: result}},
    "network": "ok" or the error, "torch_imported": bool}."""
    from pathlib import Path

    import highdicom
    import pydicom

    from cxr_engine.models.backends import create_classifier
    from cxr_engine.outputs.dicom_outputs import DicomOutputWriter
    from cxr_engine.reading.read import read_image
    from cxr_engine.models.model_card import default_card

    films: dict = {}
    try:
        card = default_card()
        classifier = create_classifier(card, backend="onnx", device="cpu")
        classifier.load()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "films": {}, "torch_imported": "torch" in sys.modules}
    writers = {"identified": DicomOutputWriter(Path(folder) / "identified", card),
               "deidentified": DicomOutputWriter(Path(folder) / "deidentified", card, deidentify=True)}
    for path in paths:
        result: dict = {}
        try:
            image = read_image(path)
            heatmap_result = classifier.predict_with_heatmap(image)
            for name, writer in writers.items():
                for obj in writer.write(image, heatmap_result, warnings=tuple(image.warnings)):
                    ds = pydicom.dcmread(obj.path)
                    if obj.kind == "sc":
                        detail = "x".join(str(n) for n in ds.pixel_array.shape)
                    elif obj.kind == "sr":
                        groups = highdicom.sr.srread(obj.path).content.get_image_measurement_groups()
                        detail = f"{len(groups[0].get_measurements())} probabilities"
                    else:
                        detail = f"{int(ds.EncapsulatedDocumentLength)} bytes of PDF" if bytes(
                            ds.EncapsulatedDocument).startswith(b"%PDF-") else "no PDF"
                    same_study = ds.StudyInstanceUID == image.metadata.study_instance_uid
                    result[f"{name}/{obj.kind}"] = f"ok {detail}; same study: {same_study}"
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        films[path] = result
    try:
        from cxr_engine.network.dicom_network import StudyQuery, retrieve_contexts

        StudyQuery(patient_id="X").identifier()
        network = f"ok {len(retrieve_contexts())} retrieve contexts"
    except Exception as exc:
        network = f"error: {type(exc).__name__}: {exc}"
    return {"films": films, "network": network,
            "torch_imported": any(m.split(".")[0] == "torch" for m in sys.modules)}


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "--dicom-outputs":
        import json
        from pathlib import Path

        info = dicom_outputs_info(sys.argv[3], sys.argv[4:])
        Path(sys.argv[2]).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "--segment-lungs":
        import json
        from pathlib import Path

        Path(sys.argv[2]).write_text(json.dumps(segment_lungs_info(sys.argv[3:]), indent=2) + "\n", encoding="utf-8")
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "--bundle-info":
        import json
        from pathlib import Path

        Path(sys.argv[2]).write_text(json.dumps(bundle_info(sys.argv[3:]), indent=2) + "\n", encoding="utf-8")
        return 0
    from cxr_desktop.app import main as app_main

    return app_main()


if __name__ == "__main__":
    # The engine may decode untrusted files in a spawned worker process; a frozen program must
    # let such a child run its task instead of starting another app.
    multiprocessing.freeze_support()
    raise SystemExit(main())
