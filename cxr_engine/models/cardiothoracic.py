"""The cardiothoracic ratio (CTR) proposed from a lung mask, measured from two lines, and worded.

Definition (Danzer 1919, "The cardiothoracic ratio: an index of cardiac enlargement", Am J Med Sci
157:513–521): CTR = transverse cardiac diameter / internal thoracic diameter on a frontal film.

- The **internal thoracic diameter** is the widest horizontal distance between the inner margins of
  the ribs; on a lung mask, between the lungs' outer (lateral) edges, taken here at the row where
  that distance is greatest within the lower half of the lungs (above the costophrenic angles).
- The **transverse cardiac diameter** is MRD + MLD: the greatest distance from the midline to the
  right heart border plus the greatest distance from the midline to the left heart border, each
  on its own row. The heart borders are found on the film where the dense heart shadow meets the
  lucent lung (:func:`heart_borders`), in the lower part of the lungs; the midline is the middle of
  the thoracic diameter. MRD + MLD is the horizontal extent between the
  two border points, whatever the midline, so a line from one border point to the other carries
  the measurement.

Normal on a PA film: CTR < 0.5. An AP film (the tube in front, the heart far from the detector)
magnifies the heart, so the CTR is overestimated there; a lateral film has no CTR.

Lines are in the image's own pixel grid, as the viewer's annotations: (x, y) = (column, row) with
pixel (row r, column c) covering [c, c+1) x [r, r+1). A diameter is a line's **transverse extent**
|x2 - x1| (Danzer's diameters are horizontal; the rows of the two ends do not count), in mm by the
column spacing when the image has pixel spacing. numpy and OpenCV only: no Qt, no torch.

The lung model's masks cover the lung behind the heart too, so their medial edges lie near the spine,
not on the heart borders (a ratio of about 0.2 on a normal film when they were taken as the borders);
the borders are therefore read from the film's density. The proposal is a starting point: the reader
drags each end onto the borders seen on the film. ``python -m training.ctr_checks`` measures the
proposal on groups of real films and draws a contact sheet of its lines.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..pixels.components import connected_components
from ..pixels.filters import gaussian_blur
from ..pixels.resampling import resize_area, resize_bilinear

#: A normal PA film has a CTR below this (Danzer 1919).
NORMAL_PA_LIMIT = 0.5
#: Rows from this fraction of the lungs' height down (0 = apex, 1 = base) are searched.
LOWER_PART_FROM = 0.5
#: A row counts only where each lung is at least this share of its own widest row: lower down,
#: the lung's edges are the diaphragm's dome and the costophrenic recess, not the ribs and heart.
MIN_ROW_WIDTH_SHARE = 0.5
#: The film is smoothed before the heart borders are searched: Gaussian sigma, as a share of the lungs'
#: height down the rows and of the thorax's width along them.
SMOOTH_ROWS = 0.02
SMOOTH_COLUMNS = 0.012
#: The heart's borders are searched from this fraction of the lungs' height down (the heart's lower
#: half, where its transverse diameter is; higher up the hila's vessels make edges of their own).
HEART_ROWS_FROM = 0.65
#: A heart border is a fall in density going laterally at least as steep as MIN_CONTRAST of the film's
#: range (1st-99th percentile within the lungs) over STEP_SPAN of the thorax's width.
MIN_CONTRAST = 0.05
STEP_SPAN = 0.02
#: Each border is searched from the lung's medial edge out over this share of the lung's width on the
#: row (a child's heart, or an enlarged one, reaches past the mid-width of a lung mask that includes the
#: lung behind the heart).
SEARCH_SHARE = 0.7
#: A fall's weight goes down linearly with its distance from the lung's medial edge, to 1 - this at the
#: far end of the search (the heart is the innermost dense structure; a consolidation's or a rib's edge
#: further out can be as steep).
DISTANCE_PENALTY = 0.5
#: The borders found per row are median-filtered over this share of the lungs' height.
BORDER_MEDIAN_ROWS = 0.1
#: The widest reach of each border is taken as this percentile of its rows' reaches (100 = Danzer's
#: maximum; lower is robust to a few rows where another edge was found).
WIDEST_PERCENTILE = 75

#: A proposal outside this range is flagged for the reader to check (and drag the lines): the range
#: the README and ``python -m training.ctr_checks`` measure the proposal against (on 20 adult normal films
#: 19 proposals fell within it; on 16 RSNA DICOM files 15).
PLAUSIBLE_RANGE = (0.35, 0.60)

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
    #: The spacing is the detector's (Imager Pixel Spacing, or a Pixel Spacing not corrected for magnification):
    #: lengths are those at the detector, larger than the patient's, and say so.
    detector: bool = False

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
        """``cardiac 142 mm / thoracic 302 mm`` (``... (detector)`` at the detector; px without pixel spacing)."""
        if self.spacing_mm:
            note = " (detector)" if self.detector else ""
            return f"cardiac {self.cardiac_mm:.0f} mm / thoracic {self.thoracic_mm:.0f} mm{note}"
        return f"cardiac {self.cardiac.transverse_px:.0f} px / thoracic {self.thoracic.transverse_px:.0f} px"


def measure_ctr(thoracic: Line, cardiac: Line, spacing_mm: tuple[float, float] | None = None) -> CardiothoracicRatio:
    """The ratio of two lines as drawn (e.g. after the reader moved their ends)."""
    return CardiothoracicRatio(thoracic, cardiac, spacing_mm)


def _two_lungs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bool masks of the two largest components, image-left first."""
    parts = connected_components(mask, connectivity=8)
    if parts.count < 2:
        raise CtrNotFound("two separate lungs are not found in the mask")
    left, right = sorted(parts.largest_first()[:2], key=lambda i: parts.centroids[i][0])
    return parts.labels == left, parts.labels == right


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


def _smoothed(display: np.ndarray, lung_height: int, thorax_width: int) -> np.ndarray:
    """``display`` as float32, Gaussian-smoothed by ``SMOOTH_ROWS`` of the lungs' height down the rows and
    ``SMOOTH_COLUMNS`` of the thorax's width along them. A large film is blurred at a reduced size (at
    least 3 pixels per sigma) and resized back: the same smooth field, a tenth of the time."""
    grey = np.ascontiguousarray(display, dtype=np.float32)
    sigma_x, sigma_y = max(0.5, SMOOTH_COLUMNS * thorax_width), max(1.0, SMOOTH_ROWS * lung_height)
    factor = max(1, int(min(sigma_x, sigma_y) // 3))
    if factor == 1:
        return gaussian_blur(grey, sigma_x, sigma_y)
    rows, cols = grey.shape
    small = resize_area(grey, max(1, rows // factor), max(1, cols // factor))
    small = gaussian_blur(small, sigma_x / factor, sigma_y / factor)
    return resize_bilinear(small, rows, cols)


def _border_index(gradient: np.ndarray, min_step: float) -> float:
    """Index of the heart border on one row of a lung, ``gradient`` being the density's fall across each
    column boundary going laterally from the lung's medial edge outwards: the greatest fall weighed by
    ``DISTANCE_PENALTY``; nan when the fall there is below ``min_step``."""
    if not gradient.size:
        return float("nan")
    weight = 1.0 - DISTANCE_PENALTY * np.arange(gradient.size) / max(1, gradient.size - 1)
    best = int(np.argmax(gradient * weight))
    return float(best) if gradient[best] >= min_step else float("nan")


def _running_nanmedian(values: np.ndarray, width: int) -> np.ndarray:
    """The median of each value's ``width`` neighbours (odd window, nan ignored; nan where all are nan)."""
    half = max(0, width // 2)
    padded = np.pad(values, half, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    out = np.full(values.shape, np.nan)
    valid = ~np.isnan(windows).all(axis=1)
    out[valid] = np.nanmedian(windows[valid], axis=1)
    return out


def heart_borders(mask: np.ndarray, display: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The heart's right and left borders on ``rows`` of a frontal film: per row, the column boundary
    (image x) where the dense heart shadow medial to each lung gives way to the lucent lung, or nan where
    the row shows no such edge.

    ``mask`` is the lung mask (bool (rows, columns), the two lungs its two largest components) and
    ``display`` the film as shown (2-D, any dtype, brighter = denser, the same shape). The lung model's
    masks include the lung behind the heart, so a heart border lies at or lateral to the lung's medial
    edge. The film is smoothed mostly down the rows (``SMOOTH_ROWS``, ``SMOOTH_COLUMNS``: the borders
    run mostly vertically, rib edges and noise average out). Per row, the border is where the density
    falls most steeply going laterally, searched from the lung's medial edge over ``SEARCH_SHARE`` of
    the lung's width on that row, the fall weighed down with the distance from the medial edge
    (``DISTANCE_PENALTY``); a fall shallower than ``MIN_CONTRAST`` of the film's range within the lungs
    (1st-99th percentile) over ``STEP_SPAN`` of the thorax's width gives nan. The borders are then
    median-filtered over ``BORDER_MEDIAN_ROWS`` of the lungs' height. Returns (right border, left
    border), float arrays of ``len(rows)``; the right border lies in the image-left lung (the patient's
    right on a PA or AP film as usually shown). ``ValueError`` when the shapes differ.
    """
    mask = np.asarray(mask, dtype=bool)
    if np.shape(display) != mask.shape:
        raise ValueError(f"the film's shape {np.shape(display)} is not the mask's {mask.shape}")
    return _heart_borders(mask, _two_lungs(mask), display, rows)


def _heart_borders(mask: np.ndarray, lungs: tuple[np.ndarray, np.ndarray], display: np.ndarray,
                   rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    left, right = lungs
    _, l_first, l_end = _row_edges(left)
    _, r_first, r_end = _row_edges(right)
    lung_rows = np.flatnonzero(mask.any(axis=1))
    lung_height = int(lung_rows[-1] - lung_rows[0] + 1)
    columns = np.flatnonzero(mask.any(axis=0))
    thorax_width = int(columns[-1] - columns[0] + 1)
    grey = _smoothed(display, lung_height, thorax_width)
    low, high = np.percentile(grey[mask], (1, 99))
    min_step = MIN_CONTRAST * max(float(high - low), 1e-6) / max(1.0, STEP_SPAN * thorax_width)
    # rise[:, x - 1]: the change in density across the column boundary x (from column x - 1 to x).
    rise = np.diff(grey, axis=1)
    last = rise.shape[1]  # boundaries 1 .. columns - 1 have a rise
    right_border = np.full(len(rows), np.nan)
    left_border = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        # Right border: boundaries x = l_end (the mask's medial edge), l_end - 1, ... outwards; the film
        # gets denser to the right of the border. Left border: x = r_first, r_first + 1, ... outwards.
        edge = min(int(l_end[row]), last)
        reach = int(round(SEARCH_SHARE * (l_end[row] - l_first[row])))
        outwards = rise[row, max(0, edge - 1 - reach):edge][::-1]
        right_border[i] = edge - _border_index(outwards, min_step)
        edge = max(int(r_first[row]), 1)
        reach = int(round(SEARCH_SHARE * (r_end[row] - r_first[row])))
        left_border[i] = edge + _border_index(-rise[row, edge - 1:edge + reach], min_step)
    width = max(1, int(round(BORDER_MEDIAN_ROWS * lung_height)) | 1)
    return _running_nanmedian(right_border, width), _running_nanmedian(left_border, width)


def _widest(reach: np.ndarray) -> int:
    """Index of the row that carries a border's widest reach from the midline: the row whose reach is
    nearest the ``WIDEST_PERCENTILE`` percentile of the rows' reaches (nan ignored; the first row wins a
    tie), so that a short run of rows on another edge does not decide it."""
    target = np.nanpercentile(reach, WIDEST_PERCENTILE)
    return int(np.nanargmin(np.abs(reach - target)))


def _heart_rows(searched: np.ndarray, heart_part: np.ndarray, medial_edge: np.ndarray) -> np.ndarray:
    """The rows on which one heart border is searched: searched rows in the heart's lower part whose
    lung edge is a medial edge; all searched rows with a medial edge when none is that low."""
    rows = np.flatnonzero(searched & heart_part & medial_edge)
    return rows if rows.size else np.flatnonzero(searched & medial_edge)


def propose_ctr(mask: np.ndarray, display: np.ndarray,
                spacing_mm: tuple[float, float] | None = None, detector: bool = False) -> CardiothoracicRatio:
    """The CTR proposed from a lung mask and the film (bool (rows, columns) mask, the two lungs as its
    two largest components, the image-left one being the patient's right on a PA/AP film as usually
    shown; ``display`` the film as shown, same shape, brighter = denser).

    Rows searched: the lower half of the lungs (``LOWER_PART_FROM``), where both lungs are present and
    each is at least ``MIN_ROW_WIDTH_SHARE`` of its own widest row (so not the diaphragm's dome nor the
    costophrenic recesses). Thoracic line: at the searched row where the distance from the image-left
    lung's outer edge to the image-right lung's outer edge is greatest, from edge to edge. Cardiac line:
    midline = the thoracic line's middle; the heart's borders are read from the film per row
    (:func:`heart_borders`) on the searched rows from ``HEART_ROWS_FROM`` of the lungs' height down (the
    heart's lower half; all searched rows when none is that low) where the lung's mask edge is a medial
    edge (medial to that lung's mid-width, the lung going on directly below it; lower down a row's
    "inner edge" is the lung's base curving out to the costophrenic angle). MRD = the widest reach from
    the midline leftwards to the right border, MLD = rightwards to the left border, each on its own row
    (``WIDEST_PERCENTILE`` of the rows' reaches, robust to a few rows on another edge; the first row
    wins a tie); the line joins those two border points (transverse extent MRD + MLD). Raises
    ``CtrNotFound`` (no two lungs, no row to measure on, no heart border seen), and ``ValueError``
    when ``display`` is not of the mask's shape.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    if np.shape(display) != mask.shape:
        raise ValueError(f"the film's shape {np.shape(display)} is not the mask's {mask.shape}")
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

    l_mid, r_mid = _mid_width(l_present, l_first, l_end), _mid_width(r_present, r_first, r_end)
    heart_part = np.zeros(mask.shape[0], dtype=bool)
    heart_part[int(np.ceil(top + HEART_ROWS_FROM * (bottom - top))):bottom + 1] = True
    right_rows = _heart_rows(wide, heart_part, (l_end >= l_mid) & _lung_below(left, l_end - 1))
    left_rows = _heart_rows(wide, heart_part, (r_first <= r_mid) & _lung_below(right, r_first))
    if not right_rows.size or not left_rows.size:
        raise CtrNotFound("no searched row has a lung's inner edge medial to its mid-width")
    searched = np.union1d(right_rows, left_rows)
    right_all, left_all = _heart_borders(mask, (left, right), display, searched)
    right_border = right_all[np.searchsorted(searched, right_rows)]
    left_border = left_all[np.searchsorted(searched, left_rows)]
    mrd = midline - right_border  # the heart's right border, in the image-left lung
    mld = left_border - midline  # the heart's left border, in the image-right lung
    if np.isnan(mrd).all() or np.isnan(mld).all():
        raise CtrNotFound("no heart border is seen against the lungs (no density step from the mediastinum "
                          "to the lung)")
    if np.nanmax(mrd) <= 0 or np.nanmax(mld) <= 0:
        raise CtrNotFound("the heart borders found do not lie on either side of the midline")
    i_right, i_left = _widest(mrd), _widest(mld)
    cardiac = Line((float(right_border[i_right]), float(right_rows[i_right]) + 0.5),
                   (float(left_border[i_left]), float(left_rows[i_left]) + 0.5))
    return CardiothoracicRatio(thoracic, cardiac, tuple(spacing_mm) if spacing_mm else None, midline, detector)


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


def unusual_proposal_note(ctr: CardiothoracicRatio, adjusted: bool) -> str:
    """``""``, or, for a proposal the reader has not adjusted whose ratio lies outside ``PLAUSIBLE_RANGE``
    (or is not a number), the request to check it, worded by side: below the range the lines most likely sit on
    another edge (``check the proposal (0.31, below the 0.35-0.60 it gave on normal films): the lines may sit on
    another edge; …``); above it an enlarged heart is as likely as a misplaced line, so the note says both and
    does not call the value implausible (a reviewer's finding: cardiomegaly is often 0.6-0.75). A ratio the
    reader adjusted is the reader's, whatever its value."""
    if adjusted:
        return ""
    low, high = PLAUSIBLE_RANGE
    ratio = ctr.ratio
    if ratio == ratio and low <= ratio <= high:  # ratio == ratio: not nan
        return ""
    drag = "drag them onto the heart borders and the inner rib margins"
    if ratio != ratio:
        return f"no ratio proposed: check the lines on the film and {drag}"
    side, why = (("below", "the lines may sit on another edge") if ratio < low else
                 ("above", "an enlarged heart, or lines on another edge: check them on the film"))
    return f"check the proposal ({ratio:.2f}, {side} the {low:.2f}-{high:.2f} it gave on normal films): {why}; {drag}"


def report_line(ctr: CardiothoracicRatio, view_position: str, adjusted: bool) -> str:
    """The report's sentence, e.g. ``Cardiothoracic ratio 0.47 (PA; cardiac 142 mm / thoracic 302 mm),
    proposed by the lung-field model, adjusted by the reader`` (+ the AP caveat on an AP film; + the
    ``unusual_proposal_note`` for an unadjusted proposal outside ``PLAUSIBLE_RANGE``)."""
    text = (f"Cardiothoracic ratio {ctr.ratio:.2f} ({projection_text(view_position)}; {ctr.lengths_text()}), "
            f"proposed by the lung-field model, {'adjusted by the reader' if adjusted else 'not adjusted'}")
    note = unusual_proposal_note(ctr, adjusted)
    if note:
        text += f". {note[0].upper()}{note[1:]}"
    if projection(view_position) == "AP":
        text += f". {AP_NOTE}"
    return text
