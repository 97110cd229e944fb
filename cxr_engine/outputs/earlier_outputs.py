"""Files an earlier ``cxr-classify`` run left in an output folder (``--heatmap-dir``, ``--lung-mask-dir``,
``--dicom-out``).

Outputs are numbered by input (``00000_<stem>_cam.png``, ``00000_<stem>_sc.dcm``): a second run into the same
folder overwrote the files whose names it reused and left the others, so an earlier run's heat-maps lay
beside this run's with nothing to tell them apart. A folder holding such files is refused unless
``--overwrite`` is given; then those files, and only those (``cxr_engine.outputs.own_outputs`` recognises
them by name and content), are removed before the run starts. The user's other files are never touched.
A CSV (``--csv``) is one file written whole and replaced atomically, so nothing of an earlier run can mix
into it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .own_outputs import is_own_dicom, is_own_png, png_kind

logger = logging.getLogger(__name__)


def earlier_outputs(folder: Path) -> list[Path]:
    """The files directly in ``folder`` (sorted) that this program wrote: heat-map and lung-mask PNGs,
    DICOM objects of ``cxr_engine.outputs.dicom_outputs``. ``[]`` for a folder that does not exist yet;
    a file that cannot be read is not one (it is left alone)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.is_symlink() and _is_own(path))


def earlier_outputs_problem(folder: Path) -> str | None:
    """Why ``folder`` is refused without ``--overwrite`` (None when it holds nothing of an earlier run)."""
    found = earlier_outputs(folder)
    if not found:
        return None
    return (f"holds {len(found)} file(s) an earlier run wrote (e.g. {found[0].name}); choose an empty folder, "
            "or add --overwrite to replace them (only those files are removed, other files are left alone)")


def remove_earlier_outputs(folder: Path) -> int:
    """Remove the files :func:`earlier_outputs` finds in ``folder``; the number removed. Raises ``OSError``."""
    found = earlier_outputs(folder)
    for path in found:
        path.unlink()
    if found:
        logger.info("removed %d file(s) an earlier run wrote in %s", len(found), folder)
    return len(found)


def _is_own(path: Path) -> bool:
    try:
        if png_kind(path) is not None:
            from PIL import Image

            with Image.open(path) as image:
                return is_own_png(path, image)
        if path.suffix.lower() == ".dcm":
            import pydicom

            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Manufacturer", "SoftwareVersions"])
            return is_own_dicom(header)
    except Exception:  # noqa: BLE001 - a file that cannot be read is not ours to remove
        return False
    return False
