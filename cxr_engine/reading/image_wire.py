"""A pickle-free wire format for ``CxrImage``, used across the decoding-isolation boundary.

The decoding worker process parses untrusted files with native decoders; if one of them were
subverted, a pickle sent back to the parent could run code there. So the worker replies with a
JSON header plus raw array bytes, and the parent rebuilds the image from plain values only.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..pixels.image import CxrImage, ImageMetadata
from ..pixels.windowing import VoiLut, Window

#: Array dtypes the parent accepts back from the worker.
ALLOWED_DTYPES = frozenset({"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64",
                            "int64", "uint64", "bool"})


def encode_image(image: CxrImage) -> tuple[bytes, list[bytes]]:
    """(JSON header, array buffers) for ``image``; arrays are referenced by index in the header."""
    arrays: list[bytes] = []

    def array(values: np.ndarray) -> dict:
        values = np.ascontiguousarray(values)
        arrays.append(values.tobytes())
        # dtype.str keeps the byte order ('>i2'); dtype.name ('int16') would drop it.
        return {"array": len(arrays) - 1, "dtype": values.dtype.str, "shape": list(values.shape)}

    def voi(item: Window | VoiLut | None) -> dict | None:
        if item is None:
            return None
        if isinstance(item, Window):
            return {"window": asdict(item)}
        return {"lut": {"first_mapped": item.first_mapped, "table": array(item.table), "bits": item.bits,
                        "explanation": item.explanation}}

    header = {
        "path": str(image.path),
        "stored": array(image.stored),
        "modality": None if image.modality is image.stored else array(image.modality),
        "photometric": image.photometric,
        "invert": image.invert,
        "bits_stored": image.bits_stored,
        "windows": [voi(w) for w in image.windows],
        "voi_luts": [voi(v) for v in image.voi_luts],
        "spacing_mm": list(image.spacing_mm) if image.spacing_mm else None,
        "spacing_source": image.spacing_source,
        "metadata": asdict(image.metadata),
        "source_format": image.source_format,
        "warnings": list(image.warnings),
        "preferred_voi": voi(image.preferred_voi),
        "padding": None if image.padding is None else array(image.padding),
        # the padding mask itself when the film has no padding (``display_shutter.not_image_data``): sent once
        "shutter": None if image.shutter is None else "padding" if image.shutter is image.padding
        else array(image.shutter),
        "shutter_value": image.shutter_value,
        "pixel_aspect_ratio": list(image.pixel_aspect_ratio) if image.pixel_aspect_ratio else None,
        "reduction": image.reduction,
    }
    return json.dumps(header).encode("utf-8"), arrays


def decode_image(header_bytes: bytes, arrays: list[bytes]) -> CxrImage:
    """Rebuild a ``CxrImage`` from :func:`encode_image`'s output; raises ``ValueError`` on anything malformed."""
    header = json.loads(header_bytes.decode("utf-8"))

    def array(ref: dict) -> np.ndarray:
        """The referenced array, in native byte order whatever order it was sent in."""
        shape = tuple(int(n) for n in ref["shape"])
        try:
            dtype = np.dtype(str(ref["dtype"]))
        except TypeError as exc:
            raise ValueError(f"unexpected array dtype {ref['dtype']!r} from the decoding worker") from exc
        if dtype.name not in ALLOWED_DTYPES:
            raise ValueError(f"unexpected array dtype {ref['dtype']!r} from the decoding worker")
        values = np.frombuffer(arrays[int(ref["array"])], dtype=dtype).reshape(shape)
        return values.astype(dtype.newbyteorder("="))  # always a copy, writeable and native

    def voi(item: dict | None) -> Window | VoiLut | None:
        if item is None:
            return None
        if "window" in item:
            w = item["window"]
            return Window(float(w["center"]), float(w["width"]), str(w["function"]), str(w["explanation"]))
        lut = item["lut"]
        return VoiLut(int(lut["first_mapped"]), array(lut["table"]), int(lut["bits"]), str(lut["explanation"]))

    stored = array(header["stored"])
    modality = stored if header["modality"] is None else array(header["modality"])
    padding = None if header.get("padding") is None else array(header["padding"]).astype(bool)
    spacing = header["spacing_mm"]
    return CxrImage(
        path=Path(header["path"]),
        stored=stored,
        modality=modality,
        photometric=str(header["photometric"]),
        invert=bool(header["invert"]),
        bits_stored=int(header["bits_stored"]),
        windows=tuple(voi(w) for w in header["windows"]),
        voi_luts=tuple(voi(v) for v in header["voi_luts"]),
        spacing_mm=(float(spacing[0]), float(spacing[1])) if spacing else None,
        spacing_source=header["spacing_source"],
        metadata=ImageMetadata(**{k: str(v) for k, v in header["metadata"].items()}),
        source_format=str(header["source_format"]),
        warnings=tuple(str(w) for w in header["warnings"]),
        preferred_voi=voi(header["preferred_voi"]),
        padding=padding,
        shutter=padding if header.get("shutter") == "padding" else None if header.get("shutter") is None
        else array(header["shutter"]).astype(bool),
        shutter_value=int(header.get("shutter_value", 0)),
        pixel_aspect_ratio=(float(ratio[0]), float(ratio[1])) if (ratio := header.get("pixel_aspect_ratio")) else None,
        reduction=int(header.get("reduction", 1)),
    )
