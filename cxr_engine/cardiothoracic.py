"""The cardiothoracic ratio (CTR) proposed from a lung mask, measured from two lines, and worded.

Definition (Danzer 1919, "The cardiothoracic ratio: an index of cardiac enlargement", Am J Med Sci
157:513–521): CTR = transverse cardiac diameter / internal thoracic diameter on a frontal film.

- The **internal thoracic diameter** is the widest horizontal distance between the inner margins of
  the ribs; on a lung mask, between the lungs' outer (lateral) edges, taken here at the row where
  that distance is greatest within the lower half of the lungs (above the costophrenic angles).
- The **transverse cardiac diameter** is MRD + MLD: the greatest distance from the midline to the
  right heart border plus the greatest distance from the midline to the left heart border, each
  on its own row. On a lung mask the heart borders are the lungs' inner (medial) edges; the
  midline is the middle of the thoracic diameter. MRD + MLD is the horizontal extent between the
  two border points, whatever the midline, so a line from one border point to the other carries
  the measurement.

Normal on a PA film: CTR < 0.5. An AP film (the tube in front, the heart far from the detector)
magnifies the heart, so the CTR is overestimated there; a lateral film has no CTR.

Lines are in the image's own pixel grid, as the viewer's annotations: (x, y) = (column, row) with
pixel (row r, column c) covering [c, c+1) x [r, r+1). A diameter is a line's **transverse extent**
|x2 - x1| (Danzer's diameters are horizontal; the rows of the two ends do not count), in mm by the
column spacing when the image has pixel spacing. numpy and OpenCV only: no Qt, no torch.

The lung model's masks cover the lung behind the heart too, so the medial edges found on them lie
at or inside the true heart borders: the proposal is a starting point, and the reader drags each
end onto the borders seen on the film.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: A normal PA film has a CTR below this (Danzer 1919).
NORMAL_PA_LIMIT = 0.5
#: Rows from this fraction of the lungs' height down (0 = apex, 1 = base) are searched.
LOWER_PART_FROM = 0.5
#: A row counts only where each lung is at least this share of its own widest row: lower down,
#: the lung's edges are the diaphragm's dome and the costophrenic recess, not the ribs and heart.
MIN_ROW_WIDTH_SHARE = 0.5

AP_NOTE = "AP magnifies the heart: CTR overestimated"
LATERAL_NOTE = "no cardiothoracic ratio on a lateral film"

_FRONTAL = {"PA": "PA", "AP": "AP", "PA ERECT": "PA", "AP ERECT": "AP", "AP SUPINE": "AP", "AP SEMI-ERECT": "AP"}
_LATERAL = {"LL", "RL", "LAT", "LATERAL", "LLAT", "RLAT", "L", "R"}

Point = tuple[float, float]


class CtrNotFound(ValueError):
    """No ratio can be proposed from this mask (the reason says why)."""


@dataclass(frozen=True)
class Line:
    """A diameter drawn from ``start`` to ``end``, (x, y) image pixel coordinates."""

    start: Point
    end: Point

    @property
    def transverse_px(self) -> float:
        """The horizontal extent |x2 - x1| in pixels (columns)."""
        return abs(float(self.end[0]) - float(self.start[0]))

    def transverse_mm(self, spacing_mm: tuple[float, float] | None) -> float | None:
        """The horizontal extent in mm by the column spacing (``spacing_mm`` is (row, column)); None without."""
        return self.transverse_px * float(spacing_mm[1]) if spacing_mm else None

    def with_end(self, index: int, point: Point) -> "Line":
        """This line with end ``index`` (0 = start, 1 = end) moved to ``point``."""
        point = (float(point[0]), float(point[1]))
        return replace(self, start=point) if index == 0 else replace(self, end=point)


@dataclass(frozen=True)
class CardiothoracicRatio:
    """The two diameters, the ratio and (with pixel spacing) their lengths in mm."""

    thoracic: Line
    cardiac: Line
    spacing_mm: tuple[float, float] | None = None
    midline_x: float | None = None  # where the proposal put the midline (None once measured by hand)

    @property
    def ratio(self) -> float:
        """cardiac / thoracic transverse extent (nan when the thoracic line has no width)."""
        thoracic = self.thoracic.transverse_px
        return self.cardiac.transverse_px / thoracic if thoracic > 0 else float("nan")

    @property
    def thoracic_mm(self) -> float | None:
        """The internal thoracic diameter in mm (column spacing); None without pixel spacing."""
        return self.thoracic.transverse_mm(self.spacing_mm)

    @property
    def cardiac_mm(self) -> float | None:
        """The transverse cardiac diameter (MRD + MLD) in mm (column spacing); None without pixel spacing."""
        return self.cardiac.transverse_mm(self.spacing_mm)

    def with_lines(self, thoracic: Line | None = None, cardiac: Line | None = None) -> "CardiothoracicRatio":
        """This ratio with either line replaced (the other, the spacing and the midline kept)."""
        return replace(self, thoracic=thoracic or self.thoracic, cardiac=cardiac or self.cardiac)

    def lengths_text(self) -> str:
        """``cardiac 142 mm / thoracic 302 mm`` (px without pixel spacing)."""
        if self.spacing_mm:
            return f"cardiac {self.cardiac_mm:.0f} mm / thoracic {self.thoracic_mm:.0f} mm"
        return f"cardiac {self.cardiac.transverse_px:.0f} px / thoracic {self.thoracic.transverse_px:.0f} px"


def measure_ctr(thoracic: Line, cardiac: Line, spacing_mm: tuple[float, float] | None = None) -> CardiothoracicRatio:
    """The ratio of two lines as drawn (e.g. after the reader moved their ends)."""
    return CardiothoracicRatio(thoracic, cardiac, spacing_mm)


def _two_lungs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bool masks of the two largest components, image-left first."""
    import cv2

    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 3:
        raise CtrNotFound("two separate lungs are not found in the mask")
    order = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1
    left, right = sorted(order, key=lambda i: centroids[i][0])
    return labels == left, labels == right


def _row_edges(lung: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: present, first column and one past the last column of the lung."""
    present = lung.any(axis=1)
    cols = lung.shape[1]
    first = np.argmax(lung, axis=1)
    past_last = cols - np.argmax(lung[:, ::-1], axis=1)
    return present, first, past_last


def _mid_width(present: np.ndarray, first: np.ndarray, past_last: np.ndarray) -> float:
    """The column halfway between a lung's outermost left and right edges (over all its rows)."""
    return (float(first[present].min()) + float(past_last[present].max())) / 2.0


def _lung_below(lung: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Per row: whether the pixel under the row's edge pixel (column ``edge``) is lung, i.e. the edge
    runs on downwards there (a medial edge) rather than being the lung's lower boundary."""
    below = np.zeros(lung.shape[0], dtype=bool)
    cols = np.clip(edge[:-1], 0, lung.shape[1] - 1)
    below[:-1] = lung[np.arange(1, lung.shape[0]), cols]
    return below


def propose_ctr(mask: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> CardiothoracicRatio:
    """The CTR proposed from a lung mask (bool (rows, columns), the two lungs as its two largest
    components, the image-left one being the patient's right on a PA/AP film as usually shown).

    Rows searched: the lower half of the lungs (``LOWER_PART_FROM``), where both lungs are present
    and each is at least ``MIN_ROW_WIDTH_SHARE`` of its own widest row (so not the diaphragm's
    dome nor the costophrenic recesses). Thoracic line: at the searched row where the distance
    from the image-left lung's outer edge to the image-right lung's outer edge is greatest, from
    edge to edge. Cardiac line: midline = the thoracic line's middle; over the same rows, each
    side only where the lung's inner edge lies medial to that lung's mid-width (halfway between
    its outermost columns) and the lung goes on directly below that edge pixel (lower down, a
    row's "inner edge" is on the lung's base curving out to the costophrenic angle, not on the
    heart border), MRD = the greatest distance from the midline
    leftwards to the image-left lung's inner edge and MLD = the greatest distance rightwards to
    the image-right lung's inner edge; the line joins those two border points (transverse extent
    MRD + MLD). The first (highest) row wins a tie. Raises ``CtrNotFound``.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    left, right = _two_lungs(mask)
    l_present, l_first, l_end = _row_edges(left)
    r_present, r_first, r_end = _row_edges(right)
    rows_any = np.flatnonzero(l_present | r_present)
    top, bottom = int(rows_any[0]), int(rows_any[-1])
    lower = np.zeros(mask.shape[0], dtype=bool)
    lower[int(np.ceil(top + LOWER_PART_FROM * (bottom - top))):bottom + 1] = True
    both = l_present & r_present & lower
    if not both.any():
        raise CtrNotFound("the two lungs share no row in their lower half")

    l_width, r_width = l_end - l_first, r_end - r_first
    wide = both & (l_width >= MIN_ROW_WIDTH_SHARE * l_width[l_present].max()) \
        & (r_width >= MIN_ROW_WIDTH_SHARE * r_width[r_present].max())
    if not wide.any():
        raise CtrNotFound("no row of the lower lungs is wide enough to measure on")
    rows = np.flatnonzero(wide)
    thoracic_width = r_end[rows] - l_first[rows]
    t_row = int(rows[np.argmax(thoracic_width)])
    thoracic = Line((float(l_first[t_row]), t_row + 0.5), (float(r_end[t_row]), t_row + 0.5))
    midline = (thoracic.start[0] + thoracic.end[0]) / 2.0

    # The heart's borders are the lungs' medial edges: a row's inner edge counts only where it lies
    # medial to its lung's mid-width and the lung goes on below it (not the lung's base curving out
    # to the costophrenic angle, nor the tip of a recess).
    l_mid, r_mid = _mid_width(l_present, l_first, l_end), _mid_width(r_present, r_first, r_end)
    right_rows = np.flatnonzero(wide & (l_end >= l_mid) & _lung_below(left, l_end - 1))
    left_rows = np.flatnonzero(wide & (r_first <= r_mid) & _lung_below(right, r_first))
    if not right_rows.size or not left_rows.size:
        raise CtrNotFound("no searched row has a lung's inner edge medial to its mid-width")
    mrd = midline - l_end[right_rows]  # the image-left lung's inner edge: the heart's right border
    mld = r_first[left_rows] - midline  # the image-right lung's inner edge: the heart's left border
    if mrd.max() <= 0 or mld.max() <= 0:
        raise CtrNotFound("the lungs' inner edges do not lie on either side of the midline")
    right_row, left_row = int(right_rows[np.argmax(mrd)]), int(left_rows[np.argmax(mld)])
    cardiac = Line((float(l_end[right_row]), right_row + 0.5), (float(r_first[left_row]), left_row + 0.5))
    return CardiothoracicRatio(thoracic, cardiac, tuple(spacing_mm) if spacing_mm else None, midline)


# --------------------------------------------------------------------------- the film's projection

def projection(view_position: str) -> str:
    """``PA``, ``AP``, ``lateral``, ``other`` (oblique, decubitus, …) or ``""`` (not recorded), from
    the DICOM View Position (0018,5101)."""
    value = " ".join(str(view_position or "").upper().replace("_", " ").split())
    if not value:
        return ""
    if value in _FRONTAL:
        return _FRONTAL[value]
    if value in _LATERAL or "LAT" in value.split()[0]:
        return "lateral"
    return "other"


def ctr_offered(view_position: str, lungs_found: bool) -> tuple[bool, str]:
    """Whether the CTR tool applies to this film, and why not: only frontal films (View Position
    PA or AP, or not recorded but two lungs found)."""
    kind = projection(view_position)
    if kind in ("PA", "AP"):
        return True, ""
    if kind == "lateral":
        return False, f"View Position {view_position.strip()}: {LATERAL_NOTE}"
    if kind == "other":
        return False, f"View Position {view_position.strip()}: the ratio is defined on PA and AP films only"
    if not lungs_found:
        return False, "no cardiothoracic ratio: the lung fields were not found"
    return True, ""


def projection_text(view_position: str) -> str:
    """``PA``, ``AP`` or ``view not recorded`` for the ratio's wording."""
    kind = projection(view_position)
    return kind if kind in ("PA", "AP") else "view not recorded"


def projection_note(view_position: str) -> str:
    """The caveat that goes with the projection: AP magnification; the PA limit otherwise."""
    kind = projection(view_position)
    if kind == "AP":
        return AP_NOTE
    if kind == "PA":
        return f"normal on a PA film: below {NORMAL_PA_LIMIT:g}"
    return f"projection not recorded: below {NORMAL_PA_LIMIT:g} is normal on a PA film, AP overestimates"


def report_line(ctr: CardiothoracicRatio, view_position: str, adjusted: bool) -> str:
    """The report's sentence, e.g. ``Cardiothoracic ratio 0.47 (PA; cardiac 142 mm / thoracic 302 mm),
    proposed by the lung-field model, adjusted by the reader`` (+ the AP caveat on an AP film)."""
    text = (f"Cardiothoracic ratio {ctr.ratio:.2f} ({projection_text(view_position)}; {ctr.lengths_text()}), "
            f"proposed by the lung-field model, {'adjusted by the reader' if adjusted else 'not adjusted'}")
    if projection(view_position) == "AP":
        text += f". {AP_NOTE}"
    return text
