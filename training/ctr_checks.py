"""The proposed cardiothoracic ratio (``cxr_engine.models.cardiothoracic.propose_ctr``) on groups of real
frontal films: its distribution per group, whether each cardiac end lies on a density edge, and a
contact sheet of the proposed lines to look at.

    python -m training.ctr_checks --out training/work/ctr_checks

Groups (cxr3 films drawn with a fixed seed from its manifest): 20 adult normals (NIH ChestX-ray14
"No Finding", adults), 10 adult COVID-19 (Cohen et al. collection, adults), 10 adult pneumonia (RSNA,
radiologists' "Lung Opacity", adults), 10 Kermany children (normal; children's hearts are relatively
larger, a CTR up to about 0.6 is normal), and the real DICOM files of ``dicom/`` and ``dicom_rsna/``.
Each film is measured as the app offers it (``suitability.lung_fields_refusal``): a DICOM that is not a
projection radiograph is skipped with the reason; a film the bundled image checks find inverted or
turned is measured on the film corrected (``image_checks.reoriented``), as the app measures it once the
reader views it corrected, with its ratio as stored beside it (``ctr_as_stored``: what the app showed
before it refused such films).
Writes ``ctr_checks.csv`` (one row per film: the ratio, the image checks' reasons undone (``corrected``),
the density step at each cardiac end as a share of the film's range, positive = denser medially), ``ctr_sheet.jpg`` (lung outline green,
thoracic line blue, cardiac line orange, the ratio under each film) and ``summary.txt`` (the median,
range and count within 0.35-0.60 per group, also printed, under the command that made it).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from cxr_engine import find_images
from cxr_engine.models.cardiothoracic import CardiothoracicRatio, CtrNotFound, propose_ctr
from cxr_engine.models.image_checks import check_image, reoriented
from cxr_engine.models.suitability import lung_fields_refusal
from cxr_engine.reading.read import read_image
from cxr_engine.models.lung_fields import LungSegmenter, lung_card

DEFAULT_DATA = Path(os.environ.get("CXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TILE = 256
#: cxr3 groups: name -> (source, label, age_group, count).
CXR3_GROUPS = {
    "adult_normal": ("nih_cxr14", "normal", "adult", 20),
    "adult_covid": ("ieee8023_covid_chestxray", "covid", "adult", 10),
    "adult_pneumonia": ("rsna_pneumonia", "pneumonia", "adult", 10),
    "kermany_children": ("kermany_pediatric", "normal", "pediatric", 10),
}
#: A density edge: the mean display value over ``EDGE_SPAN`` of the thorax's width medial to a cardiac
#: end exceeds the mean over the same span lateral to it by this share of the film's range.
EDGE_SPAN = 0.03
EDGE_STEP = 0.03


def cxr3_films(data: Path, source: str, label: str, age_group: str, count: int, seed: int = 0) -> list[Path]:
    """``count`` cxr3 films of one source, label and age group, drawn with ``seed``."""
    with open(data / "cxr3" / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle)
                if (r["source"], r["label"], r["age_group"]) == (source, label, age_group)]
    picked = np.random.default_rng(seed).choice(len(rows), size=min(count, len(rows)), replace=False)
    return [data / "cxr3" / rows[i]["file"] for i in sorted(picked)]


def groups(data: Path, seed: int = 0) -> dict[str, list[Path]]:
    """The films of every group (a group whose folder is missing is left out)."""
    out = {}
    if (data / "cxr3" / "manifest.csv").is_file():
        out = {name: cxr3_films(data, *spec, seed=seed) for name, spec in CXR3_GROUPS.items()}
    for folder in ("dicom", "dicom_rsna"):
        if (data / folder).is_dir():
            out[folder] = find_images([data / folder]).files
    return out


def border_step(display: np.ndarray, point: tuple[float, float], medial_sign: int, span: int) -> float:
    """Mean display value over ``span`` columns medial to ``point`` (x, y) minus the mean over ``span``
    columns lateral to it, on the point's row; ``medial_sign`` +1 when medial is to the right."""
    x, row = int(round(point[0])), int(point[1])
    line = np.asarray(display[row], dtype=np.float64)
    right = line[x:x + span]
    left = line[max(0, x - span):x]
    if not right.size or not left.size:
        return float("nan")
    medial, lateral = (right, left) if medial_sign > 0 else (left, right)
    return float(medial.mean() - lateral.mean())


def edge_steps(display: np.ndarray, mask: np.ndarray, ctr: CardiothoracicRatio) -> tuple[float, float]:
    """The density step at the cardiac line's two ends (right border, left border) as a share of the
    film's range within the lungs (1st-99th percentile); positive = denser medially, as a heart border is."""
    grey = np.asarray(display, dtype=np.float64)
    low, high = np.percentile(grey[mask], (1, 99))
    span = max(2, int(round(EDGE_SPAN * ctr.thoracic.transverse_px)))
    scale = max(high - low, 1e-9)
    return (border_step(grey, ctr.cardiac.start, +1, span) / scale,
            border_step(grey, ctr.cardiac.end, -1, span) / scale)


def measure(path: Path, segmenter: LungSegmenter) -> tuple[dict, np.ndarray | None]:
    """One film's record and tile (None when the film is skipped)."""
    image = read_image(path)
    record = {"file": path.name, "found": "", "ctr": "", "corrected": "", "ctr_as_stored": "", "right_step": "",
              "left_step": "", "reason": lung_fields_refusal(image)}
    if record["reason"]:  # not a projection radiograph
        return record, None
    check = check_image(image)
    refusal = lung_fields_refusal(image, check.scope_reasons if check is not None else "")
    if refusal:
        if not check.correctable:
            return dict(record, reason=refusal), None
        as_stored, _ = propose(image, segmenter)
        image = reoriented(image, check.correction)
        again = check_image(image)
        still = lung_fields_refusal(image, again.scope_reasons if again is not None else "")
        record.update(corrected=check.correction, ctr_as_stored=round(as_stored.ratio, 3) if as_stored else "")
        if still:
            return dict(record, reason=f"corrected for {check.correction}, still: {still}"), None
    display = image.display()
    ctr, fields = propose(image, segmenter, record)
    record["found"] = fields.found
    if ctr is not None:
        steps = edge_steps(display, fields.mask, ctr)
        record.update(ctr=round(ctr.ratio, 3), right_step=round(steps[0], 3), left_step=round(steps[1], 3))
    return record, draw_tile(display, fields.mask if fields.found else None, ctr, path.name, record)


def propose(image, segmenter: LungSegmenter, record: dict | None = None):
    """``image``'s proposed ratio (None when there is none; the reason then goes into ``record``) and its
    lung fields."""
    fields = segmenter.segment(image)
    reason = fields.warning if not fields.found else ""
    ctr = None
    if fields.found:
        try:
            ctr = propose_ctr(fields.mask, image.display(), image.spacing_mm)
        except CtrNotFound as exc:
            reason = str(exc)
    if record is not None:
        record["reason"] = reason
    return ctr, fields


def draw_tile(display: np.ndarray, mask: np.ndarray | None, ctr: CardiothoracicRatio | None, name: str,
              record: dict) -> np.ndarray:
    scale = TILE / max(display.shape)
    size = (max(1, round(display.shape[1] * scale)), max(1, round(display.shape[0] * scale)))
    grey = cv2.resize(np.asarray(display, np.float32), size, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor((np.clip(grey, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if mask is not None:
        small = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(rgb, contours, -1, (80, 200, 80), 1)
    if ctr is not None:
        for line, colour in ((ctr.thoracic, (255, 160, 40)), (ctr.cardiac, (40, 140, 255))):
            a = tuple(int(round(v * scale)) for v in line.start)
            b = tuple(int(round(v * scale)) for v in line.end)
            cv2.line(rgb, a, b, colour, 1)
            for end in (a, b):
                cv2.circle(rgb, end, 2, colour, -1)
    canvas = np.zeros((TILE + 36, TILE, 3), np.uint8)
    canvas[:size[1], :size[0]] = rgb
    cv2.putText(canvas, name[:34], (2, TILE + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1)
    text = f"CTR {record['ctr']:.2f}" if record["ctr"] != "" else (record["reason"] or "")[:36]
    if record.get("corrected"):
        text += " (corrected)"
    cv2.putText(canvas, text, (2, TILE + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 255, 0), 1)
    return canvas


def sheet(tiles: list[np.ndarray], columns: int = 8) -> np.ndarray:
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    blank = np.zeros_like(tiles[0])
    return np.vstack([np.hstack(row + [blank] * (columns - len(row))) for row in rows])


def summary(records: list[dict], group: str) -> str:
    ratios = np.array([r["ctr"] for r in records if r["group"] == group and r["ctr"] != ""], float)
    total = sum(1 for r in records if r["group"] == group)
    if not ratios.size:
        return f"{group}: no ratio on {total} films"
    in_range = int(((ratios >= 0.35) & (ratios <= 0.6)).sum())
    corrected = sum(1 for r in records if r["group"] == group and r.get("corrected") and r["ctr"] != "")
    skipped = sum(1 for r in records if r["group"] == group and r.get("found") == "" and r["ctr"] == "")
    return (f"{group}: {ratios.size} of {total} films with a ratio; median {np.median(ratios):.2f}, "
            f"range {ratios.min():.2f}-{ratios.max():.2f}, 0.35-0.60: {in_range}"
            + (f"; {corrected} measured on the film corrected per the image checks" if corrected else "")
            + (f"; {skipped} skipped (see reason)" if skipped else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ctr_checks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    segmenter = LungSegmenter(lung_card()).load()
    records, tiles = [], []
    for group, paths in groups(args.data, args.seed).items():
        for path in paths:
            try:
                record, canvas = measure(path, segmenter)
            except Exception as exc:  # a film the engine refuses is listed, not fatal
                record, canvas = {"file": path.name, "ctr": "", "reason": f"not read: {exc}"}, None
            records.append(dict(record, group=group))
            if canvas is not None:
                tiles.append(canvas)
        print(summary(records, group))
    cv2.imwrite(str(args.out / "ctr_sheet.jpg"), sheet(tiles), [cv2.IMWRITE_JPEG_QUALITY, 85])
    command = "python -m training.ctr_checks " + " ".join(sys.argv[1:] if argv is None else argv)
    (args.out / "summary.txt").write_text("\n".join([f"command: {command}", *(
        summary(records, group) for group in dict.fromkeys(r["group"] for r in records))]) + "\n", encoding="utf-8")
    with open(args.out / "ctr_checks.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["group", "file", "found", "ctr", "corrected", "ctr_as_stored",
                                                    "right_step", "left_step", "reason"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
