"""Images that are not chest radiographs, from packages already installed, split by family.

Sources (each image's family keeps its variants, e.g. one MR slice stored eight ways, on one side):
- pydicom's bundled test files (``pydicom.data``, the folder only, never its download list): CT and MR
  slices, ultrasound (30 frames of one clip), nuclear-medicine whole-body scans, a segmentation,
  secondary captures (test patterns, a photograph), 32×32 character-set test images;
- scikit-image's bundled sample images (``skimage.data``'s folder): photographs, micrographs, text
  pages, a retina, the Shepp–Logan phantom, the moon, 200 faces (``lfw_subset.npy``);
- scikit-learn's two sample photographs (``sklearn.datasets.load_sample_images``).

No radiograph of another body part is among them (no hands, knees or pelves): the check set cannot say
how such films are flagged. Every image is returned as a 2-D uint8 array of presentation values (colour converted
to luma).
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

logger = logging.getLogger("training.non_chest")

#: Families held out for the check set (the rest train the head). Chosen so that each kind (CT, MR,
#: ultrasound, photographs, faces, documents) has members on both sides where there are two.
TEST_FAMILIES = {
    "pydicom:CT_small", "pydicom:J2K_pixelrep_mismatch", "pydicom:MR_small", "pydicom:examples_ybr_color",
    "pydicom:examples_rgb_color", "pydicom:SC_jpeg_no_color_transform", "pydicom:GDCMJ2K_TextGBR",
    "skimage:astronaut", "skimage:camera", "skimage:coins", "skimage:text", "skimage:retina", "skimage:moon",
    "skimage:horse", "skimage:coffee", "skimage:rocket", "skimage:motorcycle", "skimage:immunohistochemistry",
    "skimage:lfw-test", "sklearn:flower",
}

_PYDICOM_FAMILIES = (  # file-name prefix -> family (one content stored several ways)
    ("MR_small", "MR_small"), ("SC_rgb", "SC_rgb"), ("chr", "charset"), ("rtdose", "rtdose"),
    ("liver", "liver"), ("JPEG-lossy", "NM_whole_body"), ("JPEG2000.", "NM_whole_body"),
    ("JPGExtended", "NM_whole_body"), ("JPEGLSNearLossless", "JPEGLS_tiny"), ("SC_jpeg_no_color", "SC_jpeg_no_color_transform"),
    ("SC_rgb_jpeg_app14", "SC_jpeg_no_color_transform"), ("SC_rgb_jpeg_dcmd", "SC_jpeg_no_color_transform"),
)
#: Smaller than this (either side) is not an image a reader would open as a film.
MIN_SIDE = 24


@dataclass(frozen=True)
class NonChestImage:
    """One image: where it came from (``name``), its family, its kind and its pixels (uint8, 2-D)."""

    name: str
    family: str
    kind: str
    pixels: np.ndarray

    @property
    def split(self) -> str:
        return "test" if self.family in TEST_FAMILIES else "train"


def _grey(array: np.ndarray) -> np.ndarray:
    """uint8 2-D: colour (last axis 3 or 4) to luma, any range stretched to 0–255."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    array = array.astype(np.float64)
    low, high = float(array.min()), float(array.max())
    if high - low < 1e-9:
        return np.zeros(array.shape, np.uint8)
    return np.round((array - low) / (high - low) * 255).astype(np.uint8)


def _pydicom_family(file_name: str) -> str:
    for prefix, family in _PYDICOM_FAMILIES:
        if file_name.startswith(prefix):
            return "pydicom:" + family
    return "pydicom:" + os.path.splitext(file_name)[0]


def pydicom_images() -> Iterator[NonChestImage]:
    """Every decodable image frame in pydicom's bundled test-file folder (its chest films are download-only
    and so never present; ``CHEST`` body parts are skipped anyway)."""
    import pydicom
    import pydicom.data

    folder = os.path.dirname(pydicom.data.__file__)
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.dcm"), recursive=True)):
        try:
            ds = pydicom.dcmread(path, force=True)
            if "PixelData" not in ds or str(ds.get("BodyPartExamined", "")).upper() == "CHEST":
                continue
            frames = ds.pixel_array
        except Exception as exc:  # damaged test files are expected in that folder
            logger.debug("skipped %s: %s", path, exc)
            continue
        frames = np.asarray(frames)
        count = int(ds.get("NumberOfFrames", 1) or 1)
        colour = int(ds.get("SamplesPerPixel", 1)) > 1
        if count == 1:
            frames = frames[None]
        name = os.path.basename(path)
        family = _pydicom_family(name)
        for index, frame in enumerate(frames):
            grey = _grey(frame if colour or frame.ndim == 2 else frame[..., 0])
            if grey.ndim == 2 and min(grey.shape) >= MIN_SIDE:
                yield NonChestImage(f"pydicom:{name}#{index}", family, str(ds.get("Modality", "OT")), grey)


def skimage_images() -> Iterator[NonChestImage]:
    """scikit-image's bundled images (files in ``skimage.data``'s folder; nothing is downloaded)."""
    import skimage.data
    import skimage.io

    folder = os.path.dirname(skimage.data.__file__)
    for path in sorted(glob.glob(os.path.join(folder, "*.*"))):
        stem, suffix = os.path.splitext(os.path.basename(path))
        if suffix.lower() not in (".png", ".jpg"):
            continue
        family = "skimage:" + ("motorcycle" if stem.startswith("motorcycle") else
                               "immunohistochemistry" if stem == "ihc" else stem.split("_")[0])
        yield NonChestImage(f"skimage:{stem}", family, "photograph", _grey(skimage.io.imread(path)))
    faces = np.load(os.path.join(folder, "lfw_subset.npy"), allow_pickle=False)
    for index, face in enumerate(faces):  # 200 faces, 25×25: enlarged so that they pass MIN_SIDE
        import cv2

        big = cv2.resize(_grey(face), (100, 100), interpolation=cv2.INTER_CUBIC)
        side = "test" if index % 2 else "train"
        yield NonChestImage(f"skimage:lfw_subset#{index}", f"skimage:lfw-{side}", "face photograph", big)


def sklearn_images() -> Iterator[NonChestImage]:
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    for name, image in zip(bunch.filenames, bunch.images):
        stem = os.path.splitext(os.path.basename(name))[0]
        yield NonChestImage(f"sklearn:{stem}", f"sklearn:{stem}", "photograph", _grey(image))


def non_chest_images() -> list[NonChestImage]:
    """All of them, exact duplicates (same pixels) dropped."""
    seen, images = set(), []
    for image in (*pydicom_images(), *skimage_images(), *sklearn_images()):
        digest = hashlib.sha256(image.pixels.tobytes() + str(image.pixels.shape).encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            images.append(image)
    return images
