"""Image checks from the pixels: is this a frontal chest film the right way up, as a positive, uncropped?

Every film is checked before its class is shown. A small multilayer perceptron (one hidden ReLU layer,
softmax output) reads fixed features of a 64×64 thumbnail (:func:`features`) and answers one of
:data:`CHECK_CLASSES`: ``upright`` (a frontal chest film as the classifier expects it), one of the
seven other orientations and polarities (turned 90°, 180° or 270° clockwise, inverted, or both), a
film ``cropped`` to about a quarter of the chest, or ``not-a-chest-radiograph`` (photographs, CT, MR,
ultrasound and nuclear-medicine images, screenshots and test patterns). A film is flagged when the
head's ``upright`` probability falls below the card's threshold (chosen on validation films only by
``training/image_checks.py``). The head's fault is then the most probable other class; the reason shown
(:attr:`ImageCheck.scope_reasons`) is that fault only when the head finds it more probable than
``upright``, else :data:`ATYPICAL` (the film is merely less typical than the threshold asks: naming a
fault of 1 % probability, "not a chest radiograph" on a child's chest film, would tell the reader
something the head does not believe).

The head does not read the classifier's features, so retraining a classifier does not invalidate it.
Its parameters are plain arrays in a JSON text file (``image-checks.mlp``) checked against the sha256
in its card (``resources/models/image-checks.json``; no pickle) and the forward pass is numpy, so it runs in
the torch-free bundle. Imports numpy only (its filters are numpy, bit-exact with OpenCV's).

Turned is not the only way to be upside down or on one's side: a film stored flipped top to bottom
looks to this head like one turned 180° (and a transposed one like one turned 90°), and turning such a
film back would show it mirrored left-right. So before a turned film is offered corrected, a second
small head (:class:`LateralityHead`, ``image-laterality.json``) reads the film as turned back and says
whether it now looks mirrored; the correction then mirrors it too (``mirrored`` in the reasons), and
when that head is not confident, or not bundled, the film is not corrected automatically.

A negative that is not turned is shown corrected either way, and mirrored back too when that head is sure
it is mirrored. What it cannot tell: a mirrored film that is neither turned nor a negative (not checked), a lateral
chest film (no lateral films to learn from: only the header's View Position says so,
``cxr_engine.models.suitability``), a child's chest, and radiographs of other body parts (no such images
were available to train on; photographs, CT and MR were).
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..display_text import format_percent
from ..errors import ModelError
from ..pixels.filters import laplacian, sobel_x, sobel_y
from ..pixels.image import CxrImage
from .model_card import INTENDED_USE, CardFile
from .scope_heads import CHILD as HEAD_CHILD, WORDS as HEAD_WORDS
from .scope_score import REASON as UNCERTAIN, WORDS as UNCERTAIN_WORDS
from .suitability import (
    AGE_OUTSIDE_TRAINING, BANNER_SAYS, FOR_PROCESSING, HEADER_REASONS, LATERAL, NOT_CHEST_BODY_PART, NOT_RADIOGRAPH,
    TRAINING_AGES,
)
from .weights import verified_bytes

logger = logging.getLogger(__name__)

TASK = "image-checks"
DEFAULT_NAME = "image-checks"
FEATURE_VERSION = "cxr-checks-1"
#: The thumbnail the features are computed on (pixels each way).
THUMB = 64
UPRIGHT = "upright"
NOT_CHEST = "not-a-chest-radiograph"
CROPPED = "cropped"
INVERTED = "inverted"
#: Added to a turned film's reasons when the laterality head finds it mirrored once turned back: undone too.
MIRRORED = "mirrored"
LATERALITY_TASK = "image-laterality"
LATERALITY_NAME = "image-laterality"
#: The laterality head's classes: the film as shown, or mirrored left-right.
LATERALITY_CLASSES = ("as-shown", MIRRORED)
#: The warning's addition when a turned film's correction is withheld.
NOT_CORRECTED = ("not offered corrected: whether it is turned or flipped (turned and mirrored) could not be told, "
                 "so turn or flip it by eye")
#: The reason of a flagged film on which ``upright`` is still the head's most probable class.
ATYPICAL = "atypical-film"
#: How far a film with each reason is turned clockwise from upright (degrees).
ROTATIONS = {"rotated-90": 90, "rotated-180": 180, "rotated-270": 270}
CHECK_CLASSES = (
    UPRIGHT, "rotated-90", "rotated-180", "rotated-270",
    INVERTED, "inverted;rotated-90", "inverted;rotated-180", "inverted;rotated-270",
    CROPPED, NOT_CHEST,
)
FLIPPED_WORDS = "flipped top to bottom (upside down and mirrored left-right)"
#: Plain words for each reason, for the banner, the PDF and the warnings.
REASON_WORDS = {
    "rotated-90": "turned 90° clockwise",
    "rotated-180": "upside down",
    MIRRORED: "mirrored left-right",
    "rotated-270": "turned 90° counter-clockwise",
    INVERTED: "shown as a negative (inverted)",
    CROPPED: "cropped to part of the chest",
    NOT_CHEST: "not a chest radiograph",
    ATYPICAL: "unlike the upright frontal chest films the model was trained on (no specific fault found)",
    # From the header (``suitability.header_scope_reasons``):
    LATERAL: "a lateral view (the model is made for frontal PA/AP films)",
    NOT_CHEST_BODY_PART: "the header's Body Part Examined is not the chest",
    NOT_RADIOGRAPH: "the header's Modality is not a projection radiograph (CR, DX)",
    FOR_PROCESSING: "raw detector data (the header says for processing), not a film processed for viewing",
    AGE_OUTSIDE_TRAINING: f"an age it has almost no training films of ({TRAINING_AGES})",
    UNCERTAIN: UNCERTAIN_WORDS,  # the classifier's own out-of-scope score, not an image check
    **HEAD_WORDS,  # the out-of-scope heads on the classifier's features (other-findings, child-chest)
}


def reason_list(reasons: str) -> list[str]:
    """The reasons of an ``out_of_scope`` value, in order: ``"inverted;rotated-180"`` -> ``["inverted",
    "rotated-180"]``; ``""`` -> ``[]`` (empty parts are dropped)."""
    return [part for part in reasons.split(";") if part]


def describe(reasons: str) -> str:
    """``inverted;rotated-180`` -> ``shown as a negative (inverted), upside down``;
    ``rotated-180;mirrored`` -> ``flipped top to bottom (upside down and mirrored left-right)``."""
    return ", ".join(_words(reasons))


def _words(reasons: str) -> list[str]:
    """Each reason's :data:`REASON_WORDS`; a turned film also mirrored in one phrase, last, in the order that
    makes the stored film from an upright one (mirrored, then turned): upside down and mirrored is flipped."""
    parts = reason_list(reasons)
    turn = next((part for part in parts if part in ROTATIONS), "") if MIRRORED in parts else ""
    words = [REASON_WORDS.get(part, part) for part in parts if not (turn and part in (turn, MIRRORED))]
    if turn:
        words.append(FLIPPED_WORDS if turn == "rotated-180" else f"mirrored left-right, then {REASON_WORDS[turn]}")
    return words


#: A film flagged only by these reasons may well be in scope (a reading radiologist's finding: a correct adult
#: pneumonia at 98 % was called "not reliable" because the child head fired, a borderline one because the model
#: was unsure): the banner says so rather than "outside what this model was trained for".
_UNSURE_ONLY = frozenset({UNCERTAIN})
_MAYBE_IN_SCOPE = frozenset({HEAD_CHILD, UNCERTAIN})


#: The three banners a flagged film gets (:func:`banner_kind`).
FIRM, MAYBE, CLOSE_CALL = "firm", "maybe", "close-call"


def banner_kind(reasons: str) -> str:
    """Which banner a film flagged with ``reasons`` gets: :data:`CLOSE_CALL` for ``uncertain`` alone ("Note: ... a
    close call"), :data:`MAYBE` for ``child-chest`` with or without ``uncertain`` (possibly outside), :data:`FIRM`
    for any other reason (outside what the model was trained for); ``""`` in scope. The one rule the banner, the
    heat-map notes, the SR and the CLI's summary word and count by."""
    parts = set(reason_list(reasons))
    if not parts:
        return ""
    if parts <= _UNSURE_ONLY:
        return CLOSE_CALL
    return MAYBE if parts <= _MAYBE_IN_SCOPE else FIRM


def banner_is_firm(reasons: str) -> bool:
    """Whether a film flagged with ``reasons`` is outside what the model was trained for (the red banner), rather
    than maybe in scope (only ``uncertain`` and/or ``child-chest``: the milder banner, shown milder too)."""
    return banner_kind(reasons) == FIRM


def banner(reasons: str, top_probability: float | None = None, limit: float | None = None) -> str:
    """The text shown above the probabilities (app panel, study tree, PDF) when a film is flagged: one
    reason on the first line, several as a bulleted list (one a line, so none runs into the next), and
    on its own last line what that means for the probabilities; lines joined by ``"\n"``. A film flagged only
    because the model is unsure (``uncertain``) and/or because it looks like a child's chest while the file
    gives no age (``child-chest``) gets a milder lead and last line: it may be in scope. A close call
    (``uncertain`` alone) states its rule with the figures when the film's ``top_probability`` and the card's
    out-of-scope ``limit`` (``scope_score.threshold``: flagged when 1 - top probability exceeds it) are given,
    and leaves how often such calls were right to the calibration line beside it (:func:`close_call_banner`)."""
    words = _words(reasons)
    kind = banner_kind(reasons)
    if kind in ("", CLOSE_CALL):
        return close_call_banner(top_probability, limit)
    if kind == MAYBE:
        lead = "Possibly outside what this model was trained for:"
        last = ("If the patient is an adult, the child's-chest check does not apply; for a child, the probabilities "
                "below are less reliable.")
    else:
        lead, last = "Outside what this model was trained for:", "The probabilities below are not reliable."
    flagged = f"{lead} {words[0]}." if len(words) == 1 else "\n".join([lead, *(f"• {w}" for w in words)])
    return f"{flagged}\n{last}"


def close_call_banner(top_probability: float | None = None, limit: float | None = None) -> str:
    """:func:`banner` of a close call: with both figures, "Close call: the top class has 49.3 %; the model flags
    films whose top class is under 66.6 % (about 1 in 20 validation films) ..." (a reader took "a close call"
    beside a calibration line saying 19 of 21 such films were right for a contradiction; the calibration line, not
    the banner, says how often such calls were right); without them, the reason's words."""
    if top_probability is not None and limit is not None:
        # one more decimal where one would show the two equal (66.6 % "under" 66.6 %)
        decimals = 1 if format_percent(top_probability) != format_percent(1 - limit) else 2
        lead = (f"Close call: the top class has {format_percent(top_probability, decimals)}; the model flags films "
                f"whose top class is under {format_percent(1 - limit, decimals)}: it is unsure between its classes.")
    else:
        lead = f"Note: {UNCERTAIN_WORDS} (a close call)."
    return f"{lead}\nHow often calls at this probability were right: the calibration line."


def beside_banner(warnings: Iterable[str], reasons: str) -> tuple[str, ...]:
    """The warning lines to show under the banner of a film flagged with ``reasons`` (the app's result panel, the
    PDF's "Image checks"): ``warnings`` (strings, in order) less what the banner says already, so the reader meets
    each fact once, in the banner: the statements of the classification's own note (:func:`scope_warning` of
    ``reasons``, its ``"; "``-joined parts: the image checks' fault, the heads', a close call's "note: ...") and
    the header's warning of each reason the banner lists (``suitability.BANNER_SAYS``: the patient's age outside
    the training data, a lateral view). A statement the banner does not make stays (:data:`NOT_CORRECTED` after
    the checks' fault); a line left with none goes. ``reasons`` ``""`` (no banner) keeps them all. The CSV's
    ``warnings``, which no banner stands beside, keep every one."""
    said = {BANNER_SAYS[part] for part in reason_list(reasons) if part in BANNER_SAYS}
    said.update(scope_warning(reasons).split("; ") if reasons else ())
    kept = ("; ".join(part for part in warning.split("; ") if part not in said) for warning in warnings)
    return tuple(filter(None, kept))


def heatmap_note(reasons: str) -> str:
    """The line under the heat-map legend when a film is flagged (milder, as the banner, when it may be in scope).
    The reasons themselves are the banner's: repeated here in full they pushed a crowded PDF page's comment box
    past its footer."""
    kind = banner_kind(reasons)
    if kind in ("", CLOSE_CALL):
        return "Note: the model is unsure on this film: read the heat-map with the same care."
    if kind == MAYBE:
        return "Possibly outside what this model was trained for (see the banner): for a child, the heat-map is " \
               "less reliable too."
    return "Outside what this model was trained for (see the banner): the heat-map is not reliable either."


def standalone_heatmap_note(reasons: str) -> str:
    """The flagged film's line on an image that travels without the app's banner (``cxr-classify``'s
    ``*_cam.png`` caption): :func:`heatmap_note`'s verdict with the reasons themselves, which the banner would
    have given; ``""`` in scope."""
    kind = banner_kind(reasons)
    if not kind:
        return ""
    if kind == CLOSE_CALL:
        return "Close call: the model is unsure between its classes; read the heat-map with the same care."
    if kind == MAYBE:
        return (f"Possibly outside what this model was trained for ({describe(reasons)}): for a child, the heat-map "
                "is less reliable.")
    return f"Outside what this model was trained for ({describe(reasons)}): the heat-map is not reliable."


def correction_note(reasons: str) -> str:
    """The warning of a film shown and classified turned and/or inverted back per the image checks'
    ``reasons`` (``cxr-classify --auto-orient``; the app's "View corrected and reclassify"), the one
    wording of the CSV ``warnings`` column, the app's panel and study tree and the PDF; ``""`` for none."""
    if not reasons:
        return ""
    return f"shown corrected: the image checks found the film {describe(reasons)}; it is shown and classified " \
           "corrected, and the file is not changed"


def check_warning(reasons: str) -> str:
    """The image checks' warning for their ``reasons`` (``""`` in scope), as ``ImageCheck.warning``."""
    return f"image check: {describe(reasons)}: outside what the model was trained for" if reasons else ""


def scope_warning(out_of_scope: str, image_check_warning: str | None = None) -> str:
    """The warning text of a film's ``out_of_scope`` reasons (``scope_score.out_of_scope``), the one
    wording of the CSV ``warnings`` column, the app's export and the PDF's "Image checks": the image
    checks' warning (``image_check_warning`` when given, as it may say the film was auto-oriented;
    else :func:`check_warning` of their reasons), then ``out of scope: ...`` for the other-findings head,
    ``possibly out of scope: ...`` for the child head and ``note: ...`` for ``uncertain``; parts joined by
    ``"; "``, ``""`` in scope. The header's reasons
    (``suitability.HEADER_REASONS``) are left out: ``suitability.assess`` words them with the value already."""
    parts = reason_list(out_of_scope)
    checks = ";".join(part for part in parts
                      if part not in HEAD_WORDS and part != UNCERTAIN and part not in HEADER_REASONS)
    heads = ";".join(part for part in parts if part in HEAD_WORDS and part != HEAD_CHILD)
    texts = [check_warning(checks) if image_check_warning is None else image_check_warning]
    if heads:
        texts.append(f"out of scope: {describe(heads)}")
    # As milder as the banner where the film may well be in scope (a reading radiologist's finding: the CSV and
    # the PDF's image checks said "out of scope" under a "Note" or "Possibly outside" banner).
    if HEAD_CHILD in parts:
        # no "; " inside a warning: the CSV joins the warnings with it
        texts.append(f"possibly out of scope: {HEAD_WORDS[HEAD_CHILD]}, unless the patient is an adult")
    if UNCERTAIN in parts:
        texts.append(f"note: {UNCERTAIN_WORDS}")
    return "; ".join(filter(None, texts))


def film_warnings(out_of_scope: str, image_check_warning: str | None, header_warnings: Iterable[str],
                  corrected: str = "", notes: Iterable[str] = (), model_note: str = "") -> tuple[str, ...]:
    """A classified film's whole warnings, in the one order of the CSV ``warnings`` column, the app's PDF and
    its ``--result-json``: ``corrected`` (:func:`correction_note`: the film is shown turned or inverted back),
    the classification's own note (:func:`scope_warning` of ``out_of_scope`` and ``image_check_warning``), the
    model's ``model_note`` on this film (``ensemble.disagreement_note``: an averaged model's networks disagree), the
    film's ``header_warnings`` (decoding, windows, suitability: ``suitability.image_warnings``), which come on
    nearly every converted film and so follow, then ``notes`` about the file (identical copies, a shared SOP
    Instance UID). Empty texts are left out. The app's panel shows these less what its banner says already
    (:func:`beside_banner`); the record keeps every one."""
    return tuple(filter(None, (corrected, scope_warning(out_of_scope, image_check_warning), model_note,
                               *header_warnings, *notes)))


# --------------------------------------------------------------------------- features

def thumbnail(image: CxrImage | np.ndarray) -> np.ndarray:
    """(THUMB, THUMB) float32 in [0, 1]: the presentation values (a ``CxrImage``'s, subsampled to about
    256 px, padding left out of the stretch; or a 2-D uint8 / [0, 1] float array) resized without crop
    or padding and contrast-stretched like the model input (``preprocessing.resize_and_stretch``)."""
    from ..pixels.preprocessing import resize_and_stretch

    if isinstance(image, CxrImage):
        # A padding border is kept here, unlike in the classifier's input (``input_frame.content_box``): these
        # checks judge the picture as a whole, and were fitted on films many of which have a dark frame; cut
        # to its data, padding-autowindow.dcm (a tighter field than its original) was called atypical.
        display, padding = image.display_sample()
        return resize_and_stretch(display, THUMB, padding)
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale image, got shape {array.shape}")
    step = max(1, min(array.shape) // 256)
    return resize_and_stretch(array[::step, ::step], THUMB)


#: Signed gradient directions (0–360°) per HOG cell: a film turned 180° or inverted reverses them.
HOG_BINS = 8
HOG_CELL = 8


def _hog(grey: np.ndarray) -> np.ndarray:
    """Histograms of signed gradient directions, magnitude-weighted, per ``HOG_CELL`` cell (Dalal &
    Triggs 2005, without block normalisation): (THUMB / HOG_CELL)² × HOG_BINS values, each cell's
    histogram divided by the image's mean gradient magnitude."""
    gx, gy = sobel_x(grey), sobel_y(grey)
    magnitude = np.hypot(gx, gy)
    bins = (np.floor((np.arctan2(gy, gx) + np.pi) / (2 * np.pi) * HOG_BINS).astype(np.int64)) % HOG_BINS
    cells = THUMB // HOG_CELL
    cell_index = (np.arange(THUMB) // HOG_CELL)
    index = (cell_index[:, None] * cells + cell_index[None, :]) * HOG_BINS + bins
    histogram = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=cells * cells * HOG_BINS)
    return (histogram / (magnitude.mean() * HOG_CELL * HOG_CELL + 1e-6)).astype(np.float32)


def features(thumb: np.ndarray) -> np.ndarray:
    """(919,) float32 features of a :func:`thumbnail`: the 16×16 mean-pooled image (layout: where is
    bright, where dark), signed HOG over 8×8 cells (edge directions: which way the ribs and the
    mediastinum run), a 16-bin histogram, row and column mean profiles and texture statistics
    (share of flat pixels, mean absolute Laplacian) that tell photographs and screenshots from films."""
    thumb = np.asarray(thumb, dtype=np.float32)
    if thumb.shape != (THUMB, THUMB):
        raise ValueError(f"expected a ({THUMB}, {THUMB}) thumbnail, got {thumb.shape}")
    pooled = thumb.reshape(16, 4, 16, 4).mean(axis=(1, 3)).ravel()
    histogram = np.histogram(thumb, bins=16, range=(0.0, 1.0))[0] / thumb.size
    rows, cols = thumb.mean(axis=1), thumb.mean(axis=0)
    edges = np.abs(laplacian(thumb))
    flat = np.abs(np.diff(thumb, axis=1)) < 1e-3
    texture = np.array([edges.mean(), np.median(edges), flat.mean(),
                        float((thumb <= 0.0).mean()), float((thumb >= 1.0).mean()), thumb.mean(), thumb.std()],
                       dtype=np.float32)
    return np.concatenate([pooled, _hog(thumb), histogram, rows, cols, texture]).astype(np.float32)


# --------------------------------------------------------------------------- the card and the head

@dataclass
class ImageCheckCard(CardFile):
    """The image-check head's card: its parameters file (JSON arrays, sha256), classes, threshold and
    how well it did (JSON beside the parameters, ``resources/models/image-checks.json``)."""

    name: str
    feature_version: str
    classes: list[str]
    weights_file: str
    weights_sha256: str
    threshold: float
    task: str = TASK
    #: The parameters are plain JSON arrays read by numpy: the torch-free bundle ships them.
    torch_free: bool = True
    training_data: dict = field(default_factory=dict)
    validation_metrics: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)
    intended_use: str = INTENDED_USE
    notes: str = ""
    created_by_command: str = ""
    path: Path | None = field(default=None, repr=False, compare=False)

    REQUIRED = ("name", "feature_version", "classes", "weights_file", "weights_sha256", "threshold")
    #: The ``task`` a card file of this class holds, what the refusal of another calls it, and its parameters.
    CARD_TASK = TASK
    WHAT = "an image-check card"
    PARAMETERS = "image-check parameters"

    @property
    def weights_path(self) -> Path:
        return self.beside(self.weights_file)

    @classmethod
    def load(cls, path: str | Path) -> "ImageCheckCard":
        """The card at ``path``; ``ModelError`` when unreadable, incomplete, of another task, made for
        features this engine does not compute, or with classes :meth:`check_classes` refuses."""
        path = Path(path)
        data = cls.read_json(path)
        if not isinstance(data, dict) or data.get("task") != cls.CARD_TASK:
            raise ModelError(f"{path}: not {cls.WHAT} (task is not {cls.CARD_TASK!r})")
        card = cls.from_json_data(data, path)
        if card.feature_version != FEATURE_VERSION:
            raise ModelError(f"{path}: features {card.feature_version!r}, this engine computes {FEATURE_VERSION!r}")
        card.check_classes(path)
        return card

    def check_classes(self, path: Path) -> None:
        if UPRIGHT not in self.classes:
            raise ModelError(f"{path}: the classes must include {UPRIGHT!r}")

    def read_mlp(self) -> "Mlp":
        """The parameters, verified against the card's sha256 (``ModelIntegrityError``), with one output
        per class (``ModelError`` otherwise)."""
        data = verified_bytes(self.weights_path, self.weights_sha256, self.PARAMETERS)
        mlp = Mlp.from_json(data, self.weights_path)
        if mlp.weights[-1].shape[1] != len(self.classes):
            raise ModelError(f"{self.weights_path}: {mlp.weights[-1].shape[1]} outputs, "
                             f"the card names {len(self.classes)} classes")
        return mlp


def check_card(name_or_path: str | None = None, models_dir: Path | None = None) -> ImageCheckCard:
    """The bundled image-check card (default ``image-checks``), or a card JSON by path."""
    return ImageCheckCard.named(name_or_path, DEFAULT_NAME, "image-check model", models_dir)


@dataclass(frozen=True)
class Mlp:
    """Standardised features -> ReLU hidden layers -> softmax; the parameters are float32 arrays."""

    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, classes) float64 probabilities."""
        h = (np.asarray(x, dtype=np.float32) - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        h = h.astype(np.float64)
        h -= h.max(axis=1, keepdims=True)
        e = np.exp(h)
        return e / e.sum(axis=1, keepdims=True)

    def to_json(self) -> str:
        """The parameters as JSON arrays, each float32 value with 9 significant digits (it reads back as
        the same float32)."""
        def text(array: np.ndarray) -> str:
            array = np.asarray(array, np.float32)
            if array.ndim > 1:
                return "[" + ",".join(text(row) for row in array) + "]"
            return "[" + ",".join(f"{float(v):.9g}" for v in array) + "]"

        return ('{"mean":' + text(self.mean) + ',"scale":' + text(self.scale)
                + ',"weights":[' + ",".join(text(w) for w in self.weights) + "]"
                + ',"biases":[' + ",".join(text(b) for b in self.biases) + "]}")

    @classmethod
    def from_json(cls, text: str | bytes, where: object) -> "Mlp":
        try:
            data = json.loads(text)
            arrays = lambda items: tuple(np.asarray(a, dtype=np.float32) for a in items)  # noqa: E731
            mlp = cls(np.asarray(data["mean"], np.float32), np.asarray(data["scale"], np.float32),
                      arrays(data["weights"]), arrays(data["biases"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{where}: not image-check parameters ({exc})") from exc
        return mlp


@dataclass(frozen=True)
class ImageCheck:
    """What the checks made of one film: ``reasons`` is ``""`` in scope, else the head's fault, its most
    probable class other than ``upright`` (e.g. ``inverted;rotated-180``; what the card's figures count);
    ``probabilities`` maps every check class to its probability. ``mirrored`` is what the laterality head
    made of a film the correction would turn or invert, once corrected: for a turned film ``True``
    (mirrored too), ``False`` (only turned) or ``None`` (not told: not confident, or no laterality head);
    for a negative that is not turned ``True`` only when the head is sure, else ``False``."""

    reasons: str
    probabilities: dict[str, float]
    mirrored: bool | None = False

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    @property
    def likely(self) -> bool:
        """Whether the head finds the fault at least as probable as ``upright`` (flagged films only)."""
        return self.flagged and self.probabilities.get(self.reasons, 0.0) >= self.probabilities.get(UPRIGHT, 0.0)

    @property
    def turned(self) -> bool:
        return any(part in ROTATIONS for part in reason_list(self.reasons))

    @property
    def undoable(self) -> bool:
        """Whether the head's fault is only turns and/or inversion (what a correction can undo), and likely."""
        return self.likely and all(part == INVERTED or part in ROTATIONS for part in reason_list(self.reasons))

    @property
    def scope_reasons(self) -> str:
        """The checks' part of the film's ``out_of_scope`` (``scope_score.out_of_scope``): ``""`` in scope,
        the fault (with :data:`MIRRORED` when the laterality head found the turned film mirrored) when
        :attr:`likely`, else :data:`ATYPICAL`."""
        if not self.flagged:
            return ""
        if not self.likely:
            return ATYPICAL
        return f"{self.reasons};{MIRRORED}" if self.mirrored else self.reasons

    @property
    def correctable(self) -> bool:
        """Whether turning (and mirroring) and/or inverting the film would make it upright (no crop, a chest
        film), by a fault the head finds likely; a turned film only when the laterality head has told
        whether it is also mirrored."""
        return self.undoable and not self.withheld

    @property
    def correction(self) -> str:
        """The reasons to undo to show the film upright (``reoriented``), ``""`` when not :attr:`correctable`."""
        return self.scope_reasons if self.correctable else ""

    @property
    def withheld(self) -> bool:
        """A likely turned film whose mirroring was not told: flagged, and not offered corrected."""
        return self.likely and self.turned and self.mirrored is None

    @property
    def warning(self) -> str:
        """The warning for the reader (``""`` in scope), worded from :attr:`scope_reasons`; when
        :attr:`withheld`, followed by :data:`NOT_CORRECTED`."""
        text = check_warning(self.scope_reasons)
        return f"{text}; {NOT_CORRECTED}" if self.withheld else text


@dataclass
class LateralityCard(ImageCheckCard):
    """The laterality head's card (``resources/models/image-laterality.json``), as the image-check card:
    its parameters file (JSON arrays, sha256), classes (:data:`LATERALITY_CLASSES`), the confidence
    ``threshold`` (a film is told mirrored when p(mirrored) >= threshold, as shown when p(mirrored) <=
    1 - threshold) and its figures."""

    task: str = LATERALITY_TASK
    CARD_TASK = LATERALITY_TASK
    WHAT = "a laterality card"
    PARAMETERS = "laterality parameters"

    def check_classes(self, path: Path) -> None:
        if tuple(self.classes) != LATERALITY_CLASSES or not 0.5 < float(self.threshold) <= 1.0:
            raise ModelError(f"{path}: classes must be {list(LATERALITY_CLASSES)} and the threshold in (0.5, 1]")


def laterality_card(name_or_path: str | None = None, models_dir: Path | None = None) -> LateralityCard:
    """The bundled laterality card (default ``image-laterality``), or a card JSON by path."""
    return LateralityCard.named(name_or_path, LATERALITY_NAME, "laterality model", models_dir)


class LateralityHead:
    """Whether an upright film looks mirrored left-right (:class:`LateralityCard`); numpy only, thread-safe."""

    def __init__(self, card: LateralityCard):
        self.card = card
        self._mlp: Mlp | None = None
        self._lock = threading.Lock()

    def load(self) -> "LateralityHead":
        with self._lock:
            if self._mlp is None:
                self._mlp = self.card.read_mlp()
        return self

    def p_mirrored(self, feature_rows: np.ndarray) -> np.ndarray:
        """(N, F) :func:`features` of upright thumbnails -> (N,) probability that each is mirrored."""
        self.load()
        return self._mlp.probabilities(feature_rows)[:, LATERALITY_CLASSES.index(MIRRORED)]

    def tell(self, p_mirrored: float) -> bool | None:
        """``True`` (mirrored), ``False`` (as shown) or ``None`` (not confident) for one probability."""
        if p_mirrored >= self.card.threshold:
            return True
        return False if p_mirrored <= 1.0 - self.card.threshold else None


class ImageChecker:
    """The image-check head, loaded lazily from its card, with the laterality head when given; thread-safe."""

    def __init__(self, card: ImageCheckCard, laterality: LateralityHead | None = None):
        self.card = card
        self.laterality = laterality
        self._mlp: Mlp | None = None
        self._lock = threading.Lock()

    def load(self) -> "ImageChecker":
        """Verify the parameters against the card's sha256 and read them; ``ModelIntegrityError`` /
        ``ModelError`` otherwise."""
        with self._lock:
            if self._mlp is None:
                self._mlp = self.card.read_mlp()
        if self.laterality is not None:
            self.laterality.load()
        return self

    def probabilities(self, feature_rows: np.ndarray) -> np.ndarray:
        """(N, F) :func:`features` -> (N, classes) probabilities in the card's class order."""
        self.load()
        return self._mlp.probabilities(feature_rows)

    def decide(self, probabilities: np.ndarray, thumb: np.ndarray | None = None) -> ImageCheck:
        """One row of :meth:`probabilities` -> :class:`ImageCheck` (flagged below the card's threshold).
        ``thumb`` (the film's :func:`thumbnail`) lets the laterality head tell whether a turned film is
        also mirrored; without it, or without that head, ``mirrored`` is ``None`` for a turned film."""
        probs = {c: float(p) for c, p in zip(self.card.classes, probabilities)}
        if probs[UPRIGHT] >= self.card.threshold:
            return ImageCheck("", probs)
        others = {c: p for c, p in probs.items() if c != UPRIGHT}
        check = ImageCheck(max(others, key=others.get), probs)
        if not check.undoable:
            return check  # nothing the correction would undo
        told = None
        if thumb is not None and self.laterality is not None:
            upright = corrected_display(thumb, check.reasons)
            told = self.laterality.tell(float(self.laterality.p_mirrored(features(upright)[None])[0]))
        # A turned film is corrected only once told; a negative that is not turned is corrected either way,
        # and mirrored back too when the head is sure it is mirrored.
        return ImageCheck(check.reasons, probs, told if check.turned else told is True)

    def check(self, image: CxrImage | np.ndarray) -> ImageCheck:
        """Check one film (a ``CxrImage`` or a 2-D array of presentation values)."""
        thumb = thumbnail(image)
        return self.decide(self.probabilities(features(thumb)[None])[0], thumb)


_DEFAULT: ImageChecker | None = None
_DEFAULT_LOCK = threading.Lock()


def default_checker() -> ImageChecker | None:
    """The bundled image checker, shared (created on first use); ``None`` when none is bundled or it
    cannot be read (logged once): the films are then classified without these checks."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            try:
                _DEFAULT = ImageChecker(check_card(), _default_laterality()).load()
            except ModelError as exc:
                logger.warning("image checks unavailable: %s", exc)
                _DEFAULT = False  # type: ignore[assignment]
        return _DEFAULT or None


def _default_laterality() -> LateralityHead | None:
    """The bundled laterality head, or ``None`` (logged) when none is bundled or it cannot be read: turned
    films are then never corrected automatically."""
    try:
        return LateralityHead(laterality_card()).load()
    except ModelError as exc:
        logger.warning("laterality head unavailable, turned films will not be corrected automatically: %s", exc)
        return None


def check_image(image: CxrImage | np.ndarray, checker: ImageChecker | None = None) -> ImageCheck | None:
    """The bundled (or given) checker's verdict on one film; ``None`` when no checker is available or the
    film holds no image (``cxr_engine.pixels.content``: it gets no class, so no scope reasons either)."""
    from ..pixels.content import no_content_reason

    if isinstance(image, CxrImage) and no_content_reason(image):
        return None
    checker = checker or default_checker()
    return checker.check(image) if checker else None


# --------------------------------------------------------------------------- corrections

def reoriented(image: CxrImage, reasons: str) -> CxrImage:
    """A copy of ``image`` shown upright: turned back, then mirrored left-right when ``reasons`` hold
    :data:`MIRRORED` (stored and modality values, padding, shutter, spacing and pixel aspect together), and/or with
    its display inversion toggled, per ``reasons`` (only :data:`ROTATIONS`, ``mirrored`` and ``inverted``
    are undone). The stored values are never changed in place."""
    from dataclasses import replace

    parts = reason_list(reasons)
    turns = _turns(reasons)
    mirror = MIRRORED in parts
    changes: dict = {}
    if turns or mirror:
        def back(array):
            if array is None:
                return None
            # The film is turned k×90° clockwise; np.rot90 turns counter-clockwise, so k quarter turns undo it.
            array = np.rot90(array, k=turns)
            return np.ascontiguousarray(array[:, ::-1] if mirror else array)

        changes.update(stored=back(image.stored), modality=back(image.modality), padding=back(image.padding),
                       shutter=back(image.shutter))
        if turns % 2:
            swap = lambda pair: None if pair is None else (pair[1], pair[0])  # noqa: E731
            changes.update(spacing_mm=swap(image.spacing_mm), pixel_aspect_ratio=swap(image.pixel_aspect_ratio))
    if INVERTED in parts:
        changes["invert"] = not image.invert
    return replace(image, **changes) if changes else image


def _turns(reasons: str) -> int:
    """Quarter turns clockwise that ``reasons`` say the film is turned by (0–3)."""
    return sum(ROTATIONS[part] // 90 for part in reason_list(reasons) if part in ROTATIONS) % 4


def combined_reasons(first: str, then: str) -> str:
    """The reasons undone by undoing ``first`` and then ``then`` (found on the film corrected for
    ``first``), as one value (``inverted;rotated-180``, ``rotated-90;mirrored``); ``""`` when they cancel.

    Undoing reasons is turning back k quarter turns and then mirroring (m = 1) or not; a mirror reverses
    the direction of the turns after it, so undoing (k1, m1) then (k2, m2) is undoing (k1 + (-1)^m1 k2, m1 xor m2).
    """
    first_mirror, then_mirror = MIRRORED in reason_list(first), MIRRORED in reason_list(then)
    turns = (_turns(first) + (-1) ** first_mirror * _turns(then)) % 4
    inverted = (INVERTED in reason_list(first)) != (INVERTED in reason_list(then))
    mirror = first_mirror != then_mirror
    return ";".join([INVERTED] * inverted + ([f"rotated-{turns * 90}"] if turns else []) + [MIRRORED] * mirror)


def turned_back(array: np.ndarray, reasons: str) -> np.ndarray:
    """A view of ``array`` (rows, columns, ...) turned back, then mirrored for :data:`MIRRORED`, per
    ``reasons``, as :func:`reoriented` places the film's pixels; its values unchanged (inversion is not
    a matter of place)."""
    out = np.rot90(array, k=_turns(reasons))
    return out[:, ::-1] if MIRRORED in reason_list(reasons) else out


def corrected_display(display: np.ndarray, reasons: str) -> np.ndarray:
    """The [0, 1] presentation values as they would look upright: turned back (then mirrored, for
    :data:`MIRRORED`) and/or inverted per ``reasons`` (only :data:`ROTATIONS`, ``mirrored`` and ``inverted``
    are undone), as :func:`reoriented` shows the film."""
    out = turned_back(np.asarray(display), reasons)
    if INVERTED in reason_list(reasons):
        out = (1.0 - out) if out.dtype.kind == "f" else (np.iinfo(out.dtype).max - out)
    return np.ascontiguousarray(out)


def shown_shape(stored_shape: tuple[int, int], reasons: str) -> tuple[int, int]:
    """(rows, columns) of a film of ``stored_shape`` shown corrected for ``reasons`` (a quarter turn swaps them)."""
    rows, cols = stored_shape
    return (cols, rows) if _turns(reasons) % 2 else (rows, cols)


def stored_points(points, reasons: str, shown_shape: tuple[int, int]) -> tuple[tuple[float, float], ...]:
    """Points (x, y) = (column, row), continuous pixel coordinates with pixel (r, c) covering
    [c, c+1) × [r, r+1), on the film shown corrected for ``reasons`` (:func:`reoriented`; its shape
    ``shown_shape``, rows and columns), as the same places on the film as stored: what an annotation drawn
    on the corrected view must be written as when it refers to the stored image (a presentation state)."""
    turns, mirror = _turns(reasons), MIRRORED in reason_list(reasons)
    out = []
    for x, y in points:
        rows, cols = shown_shape
        x, y = float(x), float(y)
        if mirror:
            x = cols - x
        for _ in range(turns):  # shown = np.rot90(previous): previous (x, y) = (rows - y, x), shape transposed
            x, y = rows - y, x
            rows, cols = cols, rows
        out.append((x, y))
    return tuple(out)


def shown_points(points, reasons: str, stored_shape: tuple[int, int]) -> tuple[tuple[float, float], ...]:
    """The inverse of :func:`stored_points`: points (x, y) on a film as it is (shape ``stored_shape``) as the
    same places on it shown corrected for ``reasons``: where the reader's marks go when the film is turned
    or flipped back under them."""
    turns, mirror = _turns(reasons), MIRRORED in reason_list(reasons)
    out = []
    for x, y in points:
        rows, cols = stored_shape
        x, y = float(x), float(y)
        for _ in range(turns):  # np.rot90 (counter-clockwise): (x, y) -> (y, cols - x), shape transposed
            x, y = y, cols - x
            rows, cols = cols, rows
        if mirror:
            x = cols - x
        out.append((x, y))
    return tuple(out)

