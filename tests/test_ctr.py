"""The cardiothoracic ratio in the engine (cxr_engine.cardiothoracic): drawn masks whose answer is
known by construction, lines moved by hand, the projection rules and wording, and a real cxr3 film
with its reference lung mask (and the bundled model's mask of the same film)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_engine.cardiothoracic import (AP_NOTE, CtrNotFound, Line, ctr_offered, measure_ctr, projection,
                                       projection_note, propose_ctr, report_line)


def two_lungs(rows: int = 100, cols: int = 100) -> np.ndarray:
    """Image-left lung: columns 10-39, image-right lung: columns 60-94, rows 20-79 (ends exclusive:
    40, 95, 80). Lower half of the lungs: rows 50-79 (ceil(20 + 0.5 * 59))."""
    mask = np.zeros((rows, cols), bool)
    mask[20:80, 10:40] = True
    mask[20:80, 60:95] = True
    return mask


def test_two_rectangles_give_the_gap_and_the_outer_width():
    ctr = propose_ctr(two_lungs())
    # Every searched row ties: the first (highest) row of the lower half wins, row 50 -> y 50.5.
    assert ctr.thoracic == Line((10.0, 50.5), (95.0, 50.5))
    assert ctr.midline_x == pytest.approx(52.5)
    # MRD = 52.5 - 40 = 12.5, MLD = 60 - 52.5 = 7.5: the gap between the inner edges, 20 px.
    assert ctr.cardiac == Line((40.0, 50.5), (60.0, 50.5))
    assert ctr.ratio == pytest.approx(20 / 85)
    assert ctr.thoracic_mm is None and ctr.lengths_text() == "cardiac 20 px / thoracic 85 px"


def test_danzer_takes_the_widest_reach_on_each_side_on_its_own_row():
    mask = two_lungs()
    mask[55:70, 60:70] = False  # the heart's left border bulges into the image-right lung on rows 55-69
    mask[62:66, 34:40] = False  # and its right border into the image-left lung on rows 62-65
    ctr = propose_ctr(mask, spacing_mm=(0.2, 0.5))
    assert ctr.thoracic == Line((10.0, 50.5), (95.0, 50.5))
    # MRD = 52.5 - 34 = 18.5 (row 62), MLD = 70 - 52.5 = 17.5 (row 55): the line joins the two points.
    assert ctr.cardiac == Line((34.0, 62.5), (70.0, 55.5))
    assert ctr.cardiac.transverse_px == pytest.approx(18.5 + 17.5)
    assert ctr.ratio == pytest.approx(36 / 85)
    # Lengths by the column spacing (0.5 mm), whatever the row spacing.
    assert (ctr.cardiac_mm, ctr.thoracic_mm) == pytest.approx((18.0, 42.5))
    assert ctr.lengths_text() == "cardiac 18 mm / thoracic 42 mm"  # 42.5 rounds half to even


def test_the_upper_lungs_and_the_diaphragm_tails_are_not_searched():
    mask = two_lungs()
    mask[25:35, 60:85] = False  # a wide "bulge" in the upper half: not the heart
    mask[30:40, 5:10] = True  # the upper chest wider than anything below: not the thoracic diameter
    # Below the lungs' bodies, thin lateral tails (the costophrenic recesses) reach lower and wider.
    mask[80:90, 4:12] = True
    mask[80:90, 88:99] = True
    ctr = propose_ctr(mask)
    # The lungs now span rows 20-89: the lower half starts at row ceil(20 + 0.5 * 69) = 55; the
    # tails (8 and 11 px wide, under half of each lung's widest row) are left out.
    assert ctr.thoracic == Line((10.0, 55.5), (95.0, 55.5))
    assert ctr.cardiac == Line((40.0, 55.5), (60.0, 55.5))


def test_the_thoracic_diameter_is_at_the_widest_searched_row():
    mask = two_lungs()
    mask[70:74, 6:10] = True  # rows 70-73 reach 4 px further out on the image left
    mask[72:76, 95:97] = True  # rows 72-75 reach 2 px further out on the image right
    ctr = propose_ctr(mask)
    assert ctr.thoracic == Line((6.0, 72.5), (97.0, 72.5))  # rows 72-73 are the widest: 91 px


def test_no_proposal_without_two_lungs():
    with pytest.raises(CtrNotFound, match="two separate lungs"):
        propose_ctr(np.zeros((50, 50), bool))
    one = np.zeros((100, 100), bool)
    one[20:80, 10:90] = True
    with pytest.raises(CtrNotFound):
        propose_ctr(one)
    apart = np.zeros((100, 100), bool)
    apart[5:30, 10:40] = True
    apart[60:95, 60:90] = True  # no row in common
    with pytest.raises(CtrNotFound, match="no row"):
        propose_ctr(apart)


def test_moved_ends_change_the_ratio_by_their_horizontal_distance():
    ctr = propose_ctr(two_lungs(), spacing_mm=(0.3, 0.25))
    cardiac = ctr.cardiac.with_end(1, (72.0, 64.0))  # dragged right and down
    moved = measure_ctr(ctr.thoracic, cardiac, ctr.spacing_mm)
    assert moved.ratio == pytest.approx((72 - 40) / 85)  # the rows of the ends do not count
    assert moved.cardiac_mm == pytest.approx(32 * 0.25)
    thoracic = ctr.thoracic.with_end(0, (0.0, 40.0))
    assert ctr.with_lines(thoracic=thoracic).ratio == pytest.approx(20 / 95)
    assert math.isnan(measure_ctr(Line((5, 5), (5, 9)), cardiac).ratio)  # a vertical thoracic line: no ratio


@pytest.mark.parametrize("view, kind, offered_found, offered_not_found", [
    ("PA", "PA", True, True),
    ("ap", "AP", True, True),
    ("AP SUPINE", "AP", True, True),
    ("", "", True, False),
    ("LL", "lateral", False, False),
    ("RL", "lateral", False, False),
    ("LATERAL", "lateral", False, False),
    ("RLO", "other", False, False),
])
def test_the_ratio_is_offered_on_frontal_films_only(view, kind, offered_found, offered_not_found):
    assert projection(view) == kind
    assert ctr_offered(view, True)[0] is offered_found
    offered, reason = ctr_offered(view, False)
    assert offered is offered_not_found
    assert bool(reason) is not offered
    if kind == "lateral":
        assert "lateral" in reason


def test_report_line_says_pa_or_ap_and_whether_the_reader_adjusted_it():
    ctr = propose_ctr(two_lungs(), spacing_mm=(0.5, 0.5))
    assert report_line(ctr, "PA", False) == ("Cardiothoracic ratio 0.24 (PA; cardiac 10 mm / thoracic 42 mm), "
                                             "proposed by the lung-field model, not adjusted")
    assert report_line(ctr, "AP", True) == ("Cardiothoracic ratio 0.24 (AP; cardiac 10 mm / thoracic 42 mm), "
                                            "proposed by the lung-field model, adjusted by the reader. " + AP_NOTE)
    assert "view not recorded" in report_line(ctr, "", False)
    assert AP_NOTE == "AP magnifies the heart: CTR overestimated"
    assert "0.5" in projection_note("PA") and projection_note("AP") == AP_NOTE


# ---------------------------------------------------------------------------------------- a real film

FILM = "01d0f5d504286c71"  # cxr3 covid film with its V7 Labs lung mask (CC BY 4.0)


@pytest.fixture(scope="module")
def real(cxr3_dir):
    image = cv2.imread(str(cxr3_dir / "images" / "covid" / f"{FILM}.jpg"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(cxr3_dir / "lung_masks" / f"{FILM}.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert image is not None and image.shape == mask.shape
    return image, mask


def test_real_film_lines_lie_on_the_reference_mask_edges(real):
    image, mask = real
    ctr = propose_ctr(mask)
    rows, cols = mask.shape
    (tx0, ty), (tx1, ty1) = ctr.thoracic.start, ctr.thoracic.end
    assert ty == ty1 and rows / 2 < ty < rows  # horizontal, in the lower half of the film
    row = int(ty)
    # The ends are the lungs' outer edges on that row: lung inside, no lung outside.
    assert mask[row, int(tx0)] and not mask[row, :int(tx0)].any()
    assert mask[row, int(tx1) - 1] and not mask[row, int(tx1):].any()
    assert ctr.thoracic.transverse_px > 0.6 * cols
    # The cardiac ends are the lungs' inner edges, either side of the midline, inside the thorax.
    (cx0, cy0), (cx1, cy1) = ctr.cardiac.start, ctr.cardiac.end
    assert tx0 < cx0 < ctr.midline_x < cx1 < tx1
    assert mask[int(cy0), int(cx0) - 1] and not mask[int(cy0), int(cx0):int(ctr.midline_x)].any()
    assert mask[int(cy1), int(cx1)] and not mask[int(cy1), int(ctr.midline_x):int(cx1)].any()
    assert 0.2 < ctr.ratio < 0.6
    # Mirroring the film mirrors the answer.
    mirrored = propose_ctr(mask[:, ::-1])
    assert mirrored.ratio == pytest.approx(ctr.ratio, abs=0.01)
    assert mirrored.thoracic.transverse_px == pytest.approx(ctr.thoracic.transverse_px, abs=1)


def test_the_bundled_model_mask_gives_a_thoracic_diameter_like_the_reference(real):
    pytest.importorskip("onnxruntime")
    from cxr_engine.lung_fields import LungSegmenter, lung_card

    try:
        card = lung_card()
    except Exception as exc:  # no model bundled in this checkout
        pytest.skip(f"no lung model: {exc}")
    image, mask = real
    fields = LungSegmenter(card, backend="onnx").segment(image)
    assert fields.found
    model, reference = propose_ctr(fields.mask), propose_ctr(mask)
    assert model.thoracic.transverse_px == pytest.approx(reference.thoracic.transverse_px, rel=0.05)
    assert abs(model.thoracic.start[1] - reference.thoracic.start[1]) < 0.1 * mask.shape[0]


# ------------------------------------------------------------------------- the bug-case film

BUGCASE_FILM = Path(os.environ.get("CXR_BUGCASES", Path(__file__).resolve().parents[2] / "shared" / "bugcases")) \
    / "upright-ref.jpg"


def test_the_cardiac_ends_lie_medial_to_each_lungs_mid_width_on_the_bug_case_film():
    """On upright-ref.jpg the image-left lung's base ran out laterally into the costophrenic angle,
    and the cardiac line's end was put on that tip (a diagonal line to the base's outer corner)."""
    pytest.importorskip("onnxruntime")
    if not BUGCASE_FILM.is_file():
        pytest.skip(f"bug-case film not found at {BUGCASE_FILM} (set CXR_BUGCASES)")
    from cxr_engine.io import read_image
    from cxr_engine.lung_fields import LungSegmenter, lung_card

    try:
        card = lung_card()
    except Exception as exc:  # no model bundled in this checkout
        pytest.skip(f"no lung model: {exc}")
    fields = LungSegmenter(card, backend="onnx").segment(read_image(BUGCASE_FILM))
    assert fields.found
    ctr = propose_ctr(fields.mask)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(fields.mask.astype(np.uint8))
    left, right = sorted(np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1, key=lambda i: centroids[i][0])
    mids = []
    for label in (left, right):
        cols = np.flatnonzero((labels == label).any(axis=0))
        mids.append((cols[0] + cols[-1] + 1) / 2)
    (rx, ry), (lx, ly) = ctr.cardiac.start, ctr.cardiac.end
    assert rx >= mids[0], f"the right heart border end ({rx:.0f}, {ry:.0f}) is lateral to the lung's mid-width {mids[0]:.0f}"
    assert lx <= mids[1], f"the left heart border end ({lx:.0f}, {ly:.0f}) is lateral to the lung's mid-width {mids[1]:.0f}"
    # Both ends on the lungs' medial edges: lung just lateral of the end, no lung between it and the midline.
    assert fields.mask[int(ry), int(rx) - 1] and not fields.mask[int(ry), int(rx):int(ctr.midline_x)].any()
    assert fields.mask[int(ly), int(lx)] and not fields.mask[int(ly), int(ctr.midline_x):int(lx)].any()
    # Both ends' rows within the heart's height: both lungs present, below the hila (mid-height).
    both = np.flatnonzero((labels == left).any(axis=1) & (labels == right).any(axis=1))
    lung_rows = np.flatnonzero(fields.mask.any(axis=1))
    for y in (ry, ly):
        assert both[0] <= y <= both[-1] and y > (lung_rows[0] + lung_rows[-1]) / 2
    # The model's lungs reach behind the heart, so the proposed ratio is low (the reader drags the ends).
    assert 0.15 < ctr.ratio < 0.6
