"""The exported PDF: one A4 summary page per classified image (and a continuation page after a page whose
sections do not fit above the reader's comment box, :func:`_plan_page`), written atomically.

Each page holds the intended-use notice, the patient/study identification (or the
de-identified subset, see ``cxr_engine.outputs.deidentify``), the image as the reader saw it beside
its Grad-CAM heat-map with a colour legend, the class probabilities, the model's card
summary, the image's warnings, the reader's comment and the generation time. All text is
real PDF text (searchable); images are embedded as JPEG. A character the report font lacks (a Chinese,
Japanese or Korean name) prints in the first fallback font that has it (``FALLBACK_FONT_CANDIDATES``); one
that no font here has prints as ``NO_GLYPH``, and the page says so.

The whole document is built in memory and only then written with
``cxr_engine.outputs.atomic.write_bytes_atomic``, so a failure at any step leaves any earlier file
at the destination untouched.
"""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import numpy as np
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from .atomic import write_bytes_atomic
from .deidentify import (deidentified_badge, pixel_text_note, redact_free_text, redact_generated_text,
                         report_identifiers)
from .undecodable import escape_undecodable
from ..display_text import REPLACEMENT, format_percent, printable
from ..errors import ReportError
from ..pixels.image import CxrImage, ImageMetadata
from ..models.ensemble import is_disagreement_note
from ..models.image_checks import banner, banner_is_firm, beside_banner, describe, heatmap_note, scope_warning
from ..models.torch_backend import HeatmapResult, Prediction
from ..models.model_card import CLASS_DISPLAY_NAMES, INTENDED_USE, ModelCard, bar_failures, below_bar_text
from ..models.model_limits import metric_lines, model_limits
from ..models.scope_score import threshold
from ..pixels.overlay import HEATMAP_STYLES, LEGEND_SHORT, LEGEND_TITLE, OUTLINE_NOTE, blend, colorize

logger = logging.getLogger(__name__)

TITLE = "CXR Reader — chest X-ray AI summary"
#: Before the top class of a film outside what the model was trained for (the firm banner), as the app's panel.
NOT_RELIABLE = "Not reliable:"
#: "Image checks" under a banner that says all the film's warnings say.
NO_MORE_WARNINGS = "No other warnings: the banner above says why this film is flagged."
#: Longest side, in pixels, of an image embedded in the PDF.
MAX_IMAGE_SIDE = 1200
JPEG_QUALITY = 85
#: TrueType (regular, bold) pairs tried in order; without any, the PDF's built-in Helvetica is
#: used and characters outside Windows-1252 print as "?".
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    ("C:/Windows/Fonts/arial.ttf", "C:/Windows/Fonts/arialbd.ttf"),
)
#: TrueType fonts tried in order for each character the report font lacks (DejaVu Sans and Arial have no Chinese,
#: Japanese or Korean letters: a name such as 王^小明 printed as empty boxes), registered on first use; each prints
#: bold text too. TrueType outlines only: reportlab cannot embed CFF-outline fonts (Noto Sans CJK's .otf and .ttc,
#: "postscript outlines are not supported").
FALLBACK_FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # Debian, Ubuntu: fonts-droid-fallback
    "/usr/share/fonts/google-droid-sans-fonts/DroidSansFallbackFull.ttf",  # Fedora: google-droid-sans-fonts
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "C:/Windows/Fonts/msyh.ttc",  # Microsoft YaHei (Chinese)
    "C:/Windows/Fonts/simsun.ttc",  # SimSun (Chinese)
    "C:/Windows/Fonts/meiryo.ttc",  # Meiryo (Japanese)
    "C:/Windows/Fonts/malgun.ttf",  # Malgun Gothic (Korean)
    "/Library/Fonts/Arial Unicode.ttf",  # macOS
)
#: Printed for a character that no font here has, which a line on the page then names (:func:`_glyph_note`).
NO_GLYPH = "\u25a1"  # WHITE SQUARE

PAGE_W, PAGE_H = A4
MARGIN = 36.0
CONTENT_W = PAGE_W - 2 * MARGIN
SECTION_GAP = 9.0
FOOTER_TOP = MARGIN + 14
PANEL_H = 212.0  # room under the panels for the model limits (issue 18)
#: The panels shrink towards this height when the sections under them would leave the reader's comment
#: less than ``MIN_COMMENT_H`` (long warnings, a banner, many measurements).
MIN_PANEL_H = 120.0
MIN_COMMENT_H = 40.0
PANEL_GAP = 12.0

INK = colors.HexColor("#1F2933")
MUTED = colors.HexColor("#616E7C")
RULE = colors.HexColor("#CBD2D9")
ACCENT = colors.HexColor("#0B4F6C")
PANEL_BG = colors.HexColor("#F3F5F7")
WARN_EDGE = colors.HexColor("#B45309")
WARN_FILL = colors.HexColor("#FFF4E0")
ALERT = colors.HexColor("#B91C1C")
GOOD = colors.HexColor("#1E6B3A")
HIGHLIGHT = colors.HexColor("#E3EEF4")

# Long UIDs read better on one small line under the identification table than in its cells.
_UID_LABELS = ("Study UID", "Series UID", "Image UID")


@dataclass(frozen=True, eq=False)
class ReportPage:
    """What one report page shows about one image.

    ``displayed`` is the image as the reader saw it (window, annotations and overlay as on
    screen), uint8 RGB (H, W, 3) or greyscale (H, W), rendered by the caller; for a
    de-identified report the caller must render it without the demographics corner text,
    since pixels cannot be redacted here. ``heatmap`` is
    the same image with the Grad-CAM colours for ``heatmap_class``. ``prediction`` is None when
    the image was not classified; ``not_classified_reason`` then says why. ``measurements`` are
    lines of text such as the cardiothoracic ratio, printed under "Measurements" when present.
    ``pixel_aspect`` is the physical height / width of one pixel of ``displayed`` and ``heatmap``
    (``CxrImage.pixel_aspect`` when they are in the image's own geometry; 1.0 when the caller
    rendered them with square pixels already): the panels are drawn at the physical aspect.
    """

    displayed: np.ndarray
    metadata: ImageMetadata = field(default_factory=ImageMetadata)
    heatmap: np.ndarray | None = None
    prediction: Prediction | None = None
    heatmap_class: str | None = None
    not_classified_reason: str = ""
    warnings: tuple[str, ...] = ()
    comment: str = ""
    file_name: str = ""
    pixel_aspect: float = 1.0
    #: Reader's measurements in words (e.g. ``cardiothoracic.report_line``), one line each.
    measurements: tuple[str, ...] = ()
    #: The image checks' reasons (``cxr_engine.models.image_checks``; ``""`` in scope): a banner above the
    #: probabilities and a line under the heat-map legend.
    out_of_scope: str = ""
    #: How ``heatmap`` draws the map (``overlay.HEATMAP_STYLES``): "colour" or "outline"; the legend
    #: names the outline's level only for an outline.
    heatmap_style: str = "colour"
    #: The line under the left panel: what ``displayed`` shows.
    displayed_note: str = "Window, annotations and overlay as shown in the viewer."
    #: The source's Burned In Annotation (0028,0301) (``ImageMetadata.burned_in_annotation``: ``YES``, ``NO``,
    #: ``""``): a de-identified page says text burned into the image is not removed, and for ``YES`` that the
    #: source says its image has some (``deidentify.pixel_text_note``).
    burned_in_annotation: str = ""

    def __post_init__(self):
        _check_rgb(self.displayed, "displayed image")
        if self.heatmap_style not in HEATMAP_STYLES:
            raise ValueError(f"heatmap_style must be one of {HEATMAP_STYLES}, got {self.heatmap_style!r}")
        if not (np.isfinite(self.pixel_aspect) and self.pixel_aspect > 0):
            raise ValueError(f"pixel_aspect must be a positive number, got {self.pixel_aspect}")
        if self.heatmap is not None:
            _check_rgb(self.heatmap, "heat-map image")

    @classmethod
    def for_image(cls, image: CxrImage, displayed: np.ndarray, *, heatmap_result: HeatmapResult | None = None,
                  prediction: Prediction | None = None, not_classified_reason: str = "",
                  comment: str = "", opacity: float = 0.5) -> "ReportPage":
        """A page for ``image``: metadata, warnings and file name from the image, and the
        heat-map panel rendered from ``heatmap_result`` over the image's default window. ``displayed`` is
        taken to be in the image's own geometry when it has its shape (then the image's pixel
        aspect applies to both panels), else to be square-pixelled already."""
        from ..pixels.rendering import render

        heatmap = None
        if heatmap_result is not None:
            heatmap = blend(render(image), heatmap_result.shown(), opacity)
        return cls(
            displayed=displayed, metadata=image.metadata, heatmap=heatmap,
            prediction=prediction or (heatmap_result.prediction if heatmap_result else None),
            heatmap_class=heatmap_result.target_class if heatmap_result else None,
            not_classified_reason=not_classified_reason,
            warnings=tuple(image.warnings), comment=comment, file_name=Path(image.path).name,
            pixel_aspect=image.pixel_aspect if tuple(displayed.shape[:2]) == tuple(image.shape) else 1.0,
            burned_in_annotation=source_burned_in_annotation(image),
        )


def source_burned_in_annotation(image: CxrImage) -> str:
    """``image``'s source's Burned In Annotation (0028,0301), as the decoder recorded it
    (``ImageMetadata.burned_in_annotation``: ``YES``, ``NO``, ``""``; ``""`` for a PNG or JPEG, nothing said). No
    file is read: a page is made on the app's GUI thread, and its source may lie on a slow share."""
    metadata = getattr(image, "metadata", None)
    return str(getattr(metadata, "burned_in_annotation", "") or "").strip().upper()


def write_report(path: str | Path, pages: Sequence[ReportPage], *, model_card: ModelCard | None,
                     deidentify: bool, reader_name: str = "", generated_at: datetime | None = None,
                     app_version: str = "", left_out: Sequence[tuple[Path, str]] = ()) -> Path:
    """Write the PDF report, one A4 page per ``ReportPage`` (see :func:`build_report_pdf`; ``left_out``, the
    films chosen that could not be included, with why, gets a page of its own), to ``path``
    atomically (a reader sees the old file or the new one); returns ``path``.

    Raises ``ReportError`` when the file cannot be written, ``ValueError`` for no pages; any other
    failure while building the document propagates, and in every case an existing file at ``path``
    is untouched.
    """
    path = Path(path)
    data = build_report_pdf(pages, model_card=model_card, deidentify=deidentify, reader_name=reader_name,
                            generated_at=generated_at, app_version=app_version, left_out=left_out)
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise ReportError(path, f"cannot write the report ({exc.strerror or exc})") from exc
    logger.info("wrote a report of %d film page(s) and its closing pages (%d bytes, de-identified=%s)", len(pages),
                len(data), deidentify)
    return path


def build_report_pdf(pages: Sequence[ReportPage], *, model_card: ModelCard | None, deidentify: bool,
                     reader_name: str = "", generated_at: datetime | None = None,
                     app_version: str = "", left_out: Sequence[tuple[Path, str]] = ()) -> bytes:
    """The report as PDF bytes: one A4 page per entry of ``pages`` (followed by a continuation page where its
    sections would leave the reader's comment box under ``MIN_COMMENT_H``, :func:`_plan_page`), then, when ``left_out`` names films
    (path, reason) that were chosen but could not be included (a damaged file), a page listing them,
    so that whoever reads the PDF knows it does not cover the whole study, then, with a ``model_card``, a
    last page with the model's known limits (``model_limits``; each film's page has its own calibration
    line and points there: the same limits on every page crowded out the film's own sections).

    With ``deidentify``, identifiers are left out (``deidentify.report_identifiers``), the
    comment is redacted, and the file name and reader's name are withheld too: file names are
    often UIDs or patient names, and Annex E removes the names of reading physicians.
    ``app_version`` is the version number alone (``0.1.0``): the footer reads "CXR Reader 0.1.0".
    """
    if not pages:
        raise ValueError("a report needs at least one page")
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    ctx = _Context(canvas, _fonts(FONT_CANDIDATES, FALLBACK_FONT_CANDIDATES), model_card, deidentify,
                   "" if deidentify else reader_name.strip(),
                   _timestamp(generated_at or datetime.now().astimezone()), app_version,
                   len(pages) + bool(left_out) + (model_card is not None))
    _set_document_info(ctx, len(pages))
    plans = [_plan_page(ctx, page) for page in pages]
    ctx.total += sum(bool(plan.moved) for plan in plans)  # a crowded film's continuation pages
    number = 0
    for page, plan in zip(pages, plans):
        number += 1
        _draw_page(ctx, page, number, plan)
        canvas.showPage()
        if plan.moved:
            number += 1
            _draw_continuation_page(ctx, page, plan, number)
            canvas.showPage()
    if left_out:
        _draw_left_out_page(ctx, left_out, len(pages), number + 1, before=number)
        canvas.showPage()
    if model_card is not None:
        _draw_model_limits_page(ctx, ctx.total)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# --------------------------------------------------------------------------- fonts and styles

@dataclass(frozen=True)
class _Fonts:
    regular: str
    bold: str
    unicode: bool
    #: The ``FALLBACK_FONT_CANDIDATES`` found here, for the characters ``regular`` lacks (TrueType report fonts only).
    fallback_files: tuple[str, ...] = ()

    def text(self, value: str) -> str:
        """``value`` as these fonts can print it: its control and format characters as the app shows them
        (:func:`_printable`), and with the built-in Helvetica each character outside Windows-1252 as "?"."""
        value = _printable(value)
        return value if self.unicode else value.encode("cp1252", "replace").decode("cp1252")

    def width(self, value: str, size: float, bold: bool = False) -> float:
        """The width in points of ``value`` printed at ``size`` points (each run in the font that prints it)."""
        return sum(pdfmetrics.stringWidth(run, font or (self.bold if bold else self.regular), size)
                   for font, run in self._runs(self.text(value)))

    def markup(self, value: str) -> str:
        """``value`` escaped for a reportlab ``Paragraph``, line breaks kept; each run of characters the report
        font lacks in the first fallback font that has them (``<font face=...>``), and each character no font
        has as :data:`NO_GLYPH` (:meth:`missing` names them)."""
        parts = []
        for font, run in self._runs(self.text(value)):
            run = escape(run).replace("\r\n", "\n").replace("\n", "<br/>")
            parts.append(f'<font face="{font}">{run}</font>' if font else run)
        return "".join(parts)

    def missing(self, value: str) -> list[str]:
        """The characters of ``value`` that no font here prints (each once, in order): printed as
        :data:`NO_GLYPH`, or as "?" by the built-in Helvetica (Windows-1252 characters only). A control or format
        character is none of them: it is no letter a font could have, and prints as the app shows it
        (:func:`_printable`)."""
        return [char for char in dict.fromkeys(_printable(value))
                if char != REPLACEMENT and self._font_for(char) is None]

    def _runs(self, value: str) -> list[tuple[str, str]]:
        """``value`` as (font, text) runs: font ``""`` for the report font (regular or bold, as the style says),
        else a fallback font's name; a character no font has is :data:`NO_GLYPH`, in the report font."""
        runs: list[tuple[str, str]] = []
        for char in value:
            font = self._font_for(char)
            if font is None:  # U+FFFD, a control character's stand-in, as "?" in a font without it
                font, char = "", "?" if char == REPLACEMENT else NO_GLYPH
            if runs and runs[-1][0] == font:
                runs[-1] = (font, runs[-1][1] + char)
            else:
                runs.append((font, char))
        return runs

    def _font_for(self, char: str) -> str | None:
        """``""`` when the report font prints ``char`` (spaces and line breaks always), else the name of the first
        fallback font that has it, else None."""
        if char.isspace():
            return ""
        if not self.unicode:
            return "" if char.encode("cp1252", "ignore") else None
        if ord(char) in _glyphs(self.regular):
            return ""
        return next((name for name in _fallback_fonts(self.fallback_files) if ord(char) in _glyphs(name)), None)


def _printable(value: str) -> str:
    """``value`` with each control and format character as the app shows it elsewhere (``display_text.printable``:
    U+FFFD, an ESC in a file name too), line breaks kept (a comment's lines) and a tab as a space."""
    return "\n".join(printable(line) for line in value.replace("\r\n", "\n").replace("\t", " ").split("\n"))


@lru_cache(maxsize=None)
def _fonts(candidates: tuple[tuple[str, str], ...], fallbacks: tuple[str, ...] = ()) -> _Fonts:
    """The first usable TrueType pair, registered with reportlab, with the ``fallbacks`` (font files) found here;
    else the built-in Helvetica."""
    for regular, bold in candidates:
        if not (Path(regular).is_file() and Path(bold).is_file()):
            continue
        names = (f"CxrReport-{Path(regular).stem}", f"CxrReport-{Path(bold).stem}")
        try:
            for name, file in zip(names, (regular, bold)):
                pdfmetrics.registerFont(TTFont(name, file))
        except (TTFError, OSError) as exc:
            logger.warning("cannot use font %s: %s", regular, exc)
            continue
        pdfmetrics.registerFontFamily(names[0], normal=names[0], bold=names[1], italic=names[0],
                                      boldItalic=names[1])
        return _Fonts(names[0], names[1], unicode=True,
                      fallback_files=tuple(file for file in fallbacks if Path(file).is_file()))
    logger.info("no TrueType font found; the report uses Helvetica (Windows-1252 characters only)")
    return _Fonts("Helvetica", "Helvetica-Bold", unicode=False)


@lru_cache(maxsize=None)
def _fallback_fonts(files: tuple[str, ...]) -> tuple[str, ...]:
    """The registered names of the fallback font ``files`` that reportlab can embed, in order (read once, on the
    first character the report font lacks: DroidSansFallbackFull.ttf is 4 MB)."""
    names = []
    for file in files:
        name = f"CxrReport-{Path(file).stem}"
        try:
            pdfmetrics.registerFont(TTFont(name, file))
        except (TTFError, OSError) as exc:
            logger.warning("cannot use fallback font %s: %s", file, exc)
            continue
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name, boldItalic=name)
        names.append(name)
    return tuple(names)


@lru_cache(maxsize=None)
def _glyphs(font: str) -> frozenset[int]:
    """The code points the registered TrueType ``font`` has a glyph for."""
    return frozenset(pdfmetrics.getFont(font).face.charToGlyph)


@lru_cache(maxsize=None)
def _styles(fonts: _Fonts) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=fonts.regular, fontSize=8.5, leading=11, textColor=INK)
    return {
        "body": base,
        "small": ParagraphStyle("small", base, fontSize=7.5, leading=9.5, textColor=MUTED),
        "heading": ParagraphStyle("heading", base, fontName=fonts.bold, fontSize=9.5, leading=12,
                                  textColor=ACCENT, spaceAfter=2),
        "label": ParagraphStyle("label", base, fontSize=7.5, leading=9.5, textColor=MUTED),
        "value": ParagraphStyle("value", base, fontSize=8, leading=10),
        "cell": ParagraphStyle("cell", base, fontSize=9, leading=11),
        "cell_bold": ParagraphStyle("cell_bold", base, fontName=fonts.bold, fontSize=9, leading=11),
        "warning": ParagraphStyle("warning", base, textColor=WARN_EDGE, leftIndent=8, bulletIndent=0),
        "notice_title": ParagraphStyle("notice_title", base, fontName=fonts.bold, fontSize=9,
                                       leading=11.5, textColor=WARN_EDGE),
        "notice": ParagraphStyle("notice", base, fontName=fonts.bold, fontSize=9, leading=11.5),
        "alert": ParagraphStyle("alert", base, fontName=fonts.bold, textColor=ALERT),
        "good": ParagraphStyle("good", base, textColor=GOOD),
        "item": ParagraphStyle("item", base, leftIndent=8, bulletIndent=0, spaceAfter=2),
        "maybe": ParagraphStyle("maybe", base, textColor=WARN_EDGE),
        "model_note": ParagraphStyle("model_note", base, fontSize=7.5, leading=9.5, textColor=WARN_EDGE,
                                     spaceBefore=2),
    }


@dataclass
class _Context:
    """What every page of one report shares."""

    canvas: Canvas
    fonts: _Fonts
    card: ModelCard | None
    deidentify: bool
    reader_name: str
    generated: str
    app_version: str
    total: int
    #: Height of this page's image panels (``_panel_height``).
    panel_h: float = PANEL_H
    #: Set on a scratch context that only measures the page: the panels' images are not encoded.
    measuring: bool = False

    def para(self, text: str, style: str) -> Paragraph:
        return Paragraph(self.fonts.markup(text), _styles(self.fonts)[style])

    def rich(self, markup: str, style: str) -> Paragraph:
        """A paragraph from markup whose variable parts went through ``fonts.markup``."""
        return Paragraph(markup, _styles(self.fonts)[style])


def _set_document_info(ctx: _Context, films: int) -> None:
    """Title, author and subject (the number of ``films`` summarised, one page each: not ``ctx.total``, which
    counts the left-out and the model's limits pages too): never a patient identifier."""
    canvas = ctx.canvas
    canvas.setTitle(TITLE)
    canvas.setAuthor(ctx.fonts.text(ctx.reader_name) or "CXR Reader")
    canvas.setSubject(f"AI summary of {films} chest X-ray image(s). {INTENDED_USE}")
    canvas.setCreator(f"CXR Reader {ctx.app_version}".strip())


# --------------------------------------------------------------------------- page sections

@dataclass(frozen=True)
class _Plan:
    """How one film's page is laid out (:func:`_plan_page`)."""

    #: Height of its image panels.
    panel_h: float = PANEL_H
    #: The sections drawn on a continuation page after it, in page order (``_draw_comment`` when even the reader's
    #: comment box had to go there); none for a page that holds everything.
    moved: tuple = ()


def _draw_page(ctx: _Context, page: ReportPage, number: int, plan: _Plan | None = None) -> None:
    """The film's page; what ``plan`` (by default :func:`_plan_page`'s) moves is left to the continuation page
    that follows (:func:`_draw_continuation_page`), with a line saying where it went."""
    plan = plan or _plan_page(ctx, page)
    top = _draw_sections(ctx, page, PAGE_H - MARGIN, _head_sections())
    ctx.panel_h = plan.panel_h
    bottom = _draw_sections(ctx, page, top, _kept_sections(plan.moved))
    if plan.moved:
        bottom = _draw_stack(ctx, [_continued_note(ctx, plan.moved, number + 1)], MARGIN, bottom, CONTENT_W) \
            - SECTION_GAP
    if _draw_comment not in plan.moved:
        _draw_comment(ctx, page, bottom)
    _draw_footer(ctx, number)


def _plan_page(ctx: _Context, page: ReportPage) -> _Plan:
    """Where ``page``'s sections go so that the reader's comment box keeps at least ``MIN_COMMENT_H`` above the
    footer: first the panels shrink (:func:`_panel_height`, down to ``MIN_PANEL_H``); when that is not room
    enough (a long banner, the averaged networks' note, long warnings, many measurements), the lower-priority
    sections move to a continuation page, one at a time until the comment fits (:func:`_movable_sections`: the
    measurements, the image checks, then the model's limits), the panels growing back as far as the room allows;
    as a last resort the comment box goes there too. The images, the result and the model never move. (The panels
    alone were the only give: a close call with the networks' note and three warnings left the comment box one
    line high, the footer running through it.)"""
    scratch = _measuring(ctx, PANEL_H)
    top = _draw_sections(scratch, page, PAGE_H - MARGIN, _head_sections())
    panel_h = _panel_height(ctx, page, top)
    moved: tuple = ()
    for section in (*_movable_sections(), _draw_comment):
        if _shortfall(ctx, page, top, panel_h, moved) <= 0:
            break
        if section is not _draw_comment and section(scratch, page, top) >= top:  # draws nothing on this page
            continue
        moved = tuple(s for s in (*_body_sections(), _draw_comment) if s in (*moved, section))
        panel_h = _panel_height_for(ctx, page, top, moved)
    return _Plan(panel_h, moved)


def _movable_sections() -> tuple:
    """The body sections a crowded page moves to a continuation page, first moved first: the model's limits last,
    since its calibration line is what a close call's banner sends the reader to."""
    return (_draw_measurements, _draw_warnings, _draw_limits)


#: What the line left on the page calls each moved section.
_SECTION_NAMES = {"_draw_limits": "Model limits", "_draw_measurements": "Measurements",
                  "_draw_warnings": "Image checks", "_draw_comment": "Reader's comment"}


def _kept_sections(moved: tuple) -> list:
    return [section for section in _body_sections() if section not in moved]


def _continued_note(ctx: _Context, moved: tuple, number: int) -> Flowable:
    names = ", ".join(_SECTION_NAMES[section.__name__] for section in moved)
    return ctx.rich(f"<b>Continued on page {number}:</b> {ctx.fonts.markup(names)}.", "maybe")


def _draw_continuation_page(ctx: _Context, page: ReportPage, plan: _Plan, number: int) -> None:
    """The sections of the film on page ``number - 1`` that did not fit there (``plan.moved``), under a heading
    naming that page and the film (patient and file as the page identifies them)."""
    top = _draw_header(ctx, None, PAGE_H - MARGIN) - SECTION_GAP
    who = [value for label, value in report_identifiers(page.metadata, ctx.deidentify)
           if label in ("Patient", "Patient ID") and value]
    if page.file_name and not ctx.deidentify:
        who.append(page.file_name)
    flowables = [ctx.para(f"Continued from page {number - 1}", "heading")]
    if who:
        flowables.append(ctx.para(" · ".join(dict.fromkeys(who)), "small"))
    flowables += _glyph_note(ctx, _printed_texts(ctx, page))
    top = _draw_stack(ctx, flowables, MARGIN, top, CONTENT_W) - SECTION_GAP
    top = _draw_sections(ctx, page, top, [section for section in _body_sections() if section in plan.moved])
    if _draw_comment in plan.moved:
        _draw_comment(ctx, page, top)
    _draw_footer(ctx, number)


def _head_sections() -> tuple:
    """The page's sections above the images."""
    return (_draw_header, _draw_notice, _draw_identification)


def _body_sections() -> tuple:
    """The page's sections from the images down to the reader's comment."""
    return (_draw_images, _draw_results, _draw_limits, _draw_measurements, _draw_warnings)


def _draw_sections(ctx: _Context, page: ReportPage, top: float, sections) -> float:
    """``sections`` one under the other from ``top``; returns the y where the next one starts."""
    for section in sections:
        top = section(ctx, page, top) - SECTION_GAP
    return top


def _panel_height(ctx: _Context, page: ReportPage, top: float) -> float:
    """``PANEL_H``, or less (down to ``MIN_PANEL_H``) when the sections from the images down, laid out
    from ``top`` on a scratch canvas, leave the reader's comment box under ``MIN_COMMENT_H`` above the
    footer. Where ``MIN_PANEL_H`` is not room enough, :func:`_plan_page` moves sections to a continuation page."""
    return _panel_height_for(ctx, page, top, ())


def _panel_height_for(ctx: _Context, page: ReportPage, top: float, moved: tuple) -> float:
    """:func:`_panel_height` of the page without the sections ``moved`` to its continuation page."""
    shortfall = _shortfall(ctx, page, top, PANEL_H, moved)
    return PANEL_H if shortfall <= 0 else max(PANEL_H - shortfall, MIN_PANEL_H)


def _measuring(ctx: _Context, panel_h: float) -> _Context:
    """A scratch copy of ``ctx`` that lays sections out without drawing on the report."""
    return replace(ctx, canvas=Canvas(io.BytesIO(), pagesize=A4), panel_h=panel_h, measuring=True)


def _shortfall(ctx: _Context, page: ReportPage, top: float, panel_h: float, moved: tuple) -> float:
    """How far (points) the page's body from ``top``, with panels ``panel_h`` high and without the sections
    ``moved`` (with the line saying where they went), leaves the reader's comment box under ``MIN_COMMENT_H``
    above the footer; <= 0 when it fits (a moved comment box needs only that line)."""
    scratch = _measuring(ctx, panel_h)
    bottom = _draw_sections(scratch, page, top, _kept_sections(moved))
    if moved:
        bottom -= _stack_height(scratch, [_continued_note(ctx, moved, 99)], CONTENT_W) + SECTION_GAP
    needed = 0.0
    if _draw_comment not in moved:
        reader = [ctx.para(f"Reader: {ctx.reader_name}", "small")] if ctx.reader_name else []
        needed = (_stack_height(scratch, [ctx.para("Reader's comment", "heading"), *reader], CONTENT_W)
                  + MIN_COMMENT_H + SECTION_GAP)
    return FOOTER_TOP + needed - bottom


def _draw_header(ctx: _Context, page: ReportPage | None, top: float) -> float:
    c = ctx.canvas
    c.setFillColor(ACCENT)
    c.setFont(ctx.fonts.bold, 15)
    c.drawString(MARGIN, top - 14, TITLE)
    c.setFillColor(MUTED)
    c.setFont(ctx.fonts.regular, 8)
    c.drawRightString(PAGE_W - MARGIN, top - 13, f"Generated {ctx.generated}")
    c.setStrokeColor(RULE)
    c.setLineWidth(0.8)
    c.line(MARGIN, top - 21, PAGE_W - MARGIN, top - 21)
    return top - 21


def _draw_notice(ctx: _Context, page: ReportPage, top: float) -> float:
    """The intended-use box: the card's own statement, framed so that it cannot be missed."""
    intended = model_limits(ctx.card).intended_use if ctx.card else INTENDED_USE
    flowables = [
        ctx.para("INTENDED USE", "notice_title"),
        ctx.para(intended, "notice"),
        ctx.para("The probabilities and heat-map are a model's output offered as a second opinion; they "
                 "support, and never replace, the reader's own interpretation of the image.", "body"),
    ]
    pad = 7
    height = _stack_height(ctx, flowables, CONTENT_W - 2 * pad - 4) + 2 * pad
    c = ctx.canvas
    c.setFillColor(WARN_FILL)
    c.setStrokeColor(WARN_EDGE)
    c.setLineWidth(1.2)
    c.roundRect(MARGIN, top - height, CONTENT_W, height, 3, stroke=1, fill=1)
    c.setFillColor(WARN_EDGE)
    c.rect(MARGIN, top - height, 4, height, stroke=0, fill=1)
    _draw_stack(ctx, flowables, MARGIN + pad + 4, top - pad, CONTENT_W - 2 * pad - 4)
    return top - height


def _draw_identification(ctx: _Context, page: ReportPage, top: float) -> float:
    rows = report_identifiers(page.metadata, ctx.deidentify)
    uids = [(label, value) for label, value in rows if label in _UID_LABELS]
    rows = [row for row in rows if row not in uids]
    if page.file_name and not ctx.deidentify:
        rows.append(("File", page.file_name))
    heading = "Patient and study"
    if ctx.deidentify:
        heading += " (de-identified)"
        _draw_badge(ctx, deidentified_badge(page.burned_in_annotation), top)
    flowables = [ctx.para(heading, "heading")]
    if ctx.deidentify:
        # What is done and what is not: the header's identifiers go (basic profile); the pixels are not cleaned
        # (the Clean Pixel Data Option is not applied), so text burned into the film stays.
        flowables.append(ctx.para("De-identified report: patient and study identifiers in the header are removed as "
                                  "the DICOM PS3.15 Annex E basic profile requires. "
                                  + pixel_text_note(page.burned_in_annotation), "small"))
    flowables.append(_identifier_table(ctx, rows) if rows else ctx.para("No identifying attributes recorded.",
                                                                         "small"))
    if uids:
        flowables.append(ctx.para("; ".join(f"{label}: {value}" for label, value in uids), "small"))
    flowables += _glyph_note(ctx, _printed_texts(ctx, page), log=not ctx.measuring)
    return _draw_stack(ctx, flowables, MARGIN, top, CONTENT_W)


def _printed_texts(ctx: _Context, page: ReportPage) -> list[tuple[str, str]]:
    """(where, text) of what ``page`` prints that comes from the file, the reader or the app rather than from this
    module's own words: the identification as shown, the file's name, the warnings, the measurements, the reason
    it was not classified, the reader's comment and name (each as printed, de-identified or not)."""
    texts = list(report_identifiers(page.metadata, ctx.deidentify))
    if page.file_name and not ctx.deidentify:
        texts.append(("File", page.file_name))
    for warning in page.warnings:
        where = "AI result" if page.prediction is not None and is_disagreement_note(warning) else "Image checks"
        texts.append((where, _deidentified_warning(warning, page) if ctx.deidentify else warning))
    texts += [("Measurements", line) for line in page.measurements]
    texts += [("AI result", page.not_classified_reason), ("Reader's comment", _printed_comment(ctx, page)),
              ("Reader", ctx.reader_name)]
    return texts


def _glyph_note(ctx: _Context, texts: Sequence[tuple[str, str]], log: bool = False) -> list[Flowable]:
    """A line in red naming the characters of ``texts`` ((where, text) pairs, as :func:`_printed_texts`) that no
    font here has, which the page prints as :data:`NO_GLYPH` (or "?" in Helvetica), and where they are, so that
    a name printed with boxes is not taken for the name; ``[]`` when every character prints. With ``log``, a
    warning in the log says how many and where (never which: they may spell the patient's name)."""
    missing = [(where, ctx.fonts.missing(text)) for where, text in texts if text]
    places = list(dict.fromkeys(where for where, chars in missing if chars))
    if not places:
        return []
    chars = list(dict.fromkeys(char for _, found in missing for char in found))
    mark = NO_GLYPH if ctx.fonts.unicode else "?"
    if log:
        logger.warning("report: %d character(s) in %s have no glyph in any font here: printed as %s", len(chars),
                       ", ".join(places), mark)
    codes = ", ".join(f"U+{ord(char):04X}" for char in chars[:8]) + (", …" if len(chars) > 8 else "")
    which, them = ("this character", "it") if len(chars) == 1 else ("these characters", "them")
    advice = (f"Install a font that has {them} (for Chinese, Japanese and Korean: fonts-wqy-microhei, or Microsoft "
              "YaHei and Malgun Gothic)" if ctx.fonts.unicode else "Install DejaVu Sans (fonts-dejavu-core)")
    return [ctx.para(f"{', '.join(places)} shown with {mark}: no font on this computer has {which} ({codes}). "
                     f"{advice} and export again.", "alert")]


def _draw_badge(ctx: _Context, text: str, top: float) -> None:
    c = ctx.canvas
    width = pdfmetrics.stringWidth(text, ctx.fonts.bold, 7.5) + 12
    c.setFillColor(ACCENT)
    c.roundRect(PAGE_W - MARGIN - width, top - 12, width, 12, 2, stroke=0, fill=1)
    c.setFillColor(colors.white)
    c.setFont(ctx.fonts.bold, 7.5)
    c.drawCentredString(PAGE_W - MARGIN - width / 2, top - 9, text)


def _identifier_table(ctx: _Context, rows: list[tuple[str, str]]) -> Table:
    """Label/value pairs in two columns, filled top to bottom (patient left, study right); each value as
    :func:`_identification_value` fits it in its column."""
    half = (len(rows) + 1) // 2
    left, right = rows[:half], rows[half:] + [("", "")] * (2 * half - len(rows))
    label_w = 80
    value_w = CONTENT_W / 2 - label_w
    room = value_w - _CELL_LEFT_PADDING - _CELL_RIGHT_PADDING
    data = [[ctx.para(l1, "label"), _identification_value(ctx, l1, v1, room),
             ctx.para(l2, "label"), _identification_value(ctx, l2, v2, room)]
            for (l1, v1), (l2, v2) in zip(left, right)]
    table = Table(data, colWidths=[label_w, value_w, label_w, value_w])
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ("LEFTPADDING", (0, 0), (-1, -1), _CELL_LEFT_PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_RIGHT_PADDING),
        ("BACKGROUND", (0, 0), (-1, -1), PANEL_BG),
    ]))
    return table


_CELL_LEFT_PADDING, _CELL_RIGHT_PADDING = 4.0, 6.0
#: Identification rows whose value is an identifier: printed on one line, never broken inside.
ONE_LINE_LABELS = frozenset({"Patient ID", "Accession number", "File", "Instance"})
#: The smallest size, in points, an identification value is shrunk to so that it fits its column.
MIN_VALUE_PT = 5.5
#: After these characters an identifier too long for its column even at ``MIN_VALUE_PT`` may go on the next line.
_SEPARATOR_BREAK = re.compile(r"(?<=[-_./\\:;,^ ])")


def _identification_value(ctx: _Context, label: str, value: str, width: float) -> Paragraph:
    """``value`` of the identification row ``label`` in ``width`` points without a character of an identifier lost to
    a line break inside it (a tester's finding: a 36-character RSNA Patient ID wrapped as "…9ab" / "4"): an
    identifier (:data:`ONE_LINE_LABELS`) on one line, any other value's longest word whole, in the "value" style,
    shrunk (down to :data:`MIN_VALUE_PT`) when it would not fit; an identifier still too wide at that size goes on
    as many lines as it needs, each broken only after a separator (``-``, ``_``, ``.``, ``/``, …)."""
    style = _styles(ctx.fonts)["value"]
    units = [value] if label in ONE_LINE_LABELS else value.split()
    widest = max((ctx.fonts.width(unit, style.fontSize) for unit in units), default=0.0)
    if widest <= width:
        return ctx.para(value, "value")
    size = max(style.fontSize * width / widest * 0.999, MIN_VALUE_PT)  # the width scales with the size
    smaller = ParagraphStyle(f"value-{size:.2f}", style, fontSize=size, leading=size * style.leading / style.fontSize)
    if label not in ONE_LINE_LABELS or ctx.fonts.width(value, size) <= width:
        return Paragraph(ctx.fonts.markup(value), smaller)
    lines = [""]
    for piece in _SEPARATOR_BREAK.split(value):
        if lines[-1] and ctx.fonts.width(lines[-1] + piece, size) > width:
            lines.append(piece)
        else:
            lines[-1] += piece
    return Paragraph("<br/>".join(ctx.fonts.markup(line) for line in lines), smaller)


def _draw_images(ctx: _Context, page: ReportPage, top: float) -> float:
    panel_w = (CONTENT_W - PANEL_GAP) / 2
    right_x = MARGIN + panel_w + PANEL_GAP
    target = _display_name(page.heatmap_class) if page.heatmap_class else ""
    _caption(ctx, "Image as displayed", MARGIN, top)
    has_target = page.heatmap is not None and target
    _caption(ctx, f"Grad-CAM heat-map: where the {target} score rose" if has_target else "Grad-CAM heat-map",
             right_x, top)
    panel_top = top - 14
    _draw_panel(ctx, page.displayed, MARGIN, panel_top, panel_w, page.pixel_aspect)
    if page.heatmap is not None:
        _draw_panel(ctx, page.heatmap, right_x, panel_top, panel_w, page.pixel_aspect)
        bottom = _draw_legend(ctx, right_x, panel_top - ctx.panel_h - 5, panel_w, target, page.out_of_scope,
                              outline=page.heatmap_style == "outline")
    else:
        _draw_empty_panel(ctx, right_x, panel_top, panel_w, _no_heatmap_reason(page))
        bottom = panel_top - ctx.panel_h
    left_bottom = _draw_stack(ctx, [ctx.para(page.displayed_note, "small")], MARGIN, panel_top - ctx.panel_h - 4, panel_w)
    return min(bottom, left_bottom)


def _caption(ctx: _Context, text: str, x: float, top: float) -> None:
    ctx.canvas.setFillColor(INK)
    ctx.canvas.setFont(ctx.fonts.bold, 8.5)
    ctx.canvas.drawString(x, top - 9, ctx.fonts.text(text))


def _draw_panel(ctx: _Context, rgb: np.ndarray, x: float, top: float, width: float,
                pixel_aspect: float = 1.0) -> None:
    """``rgb`` fitted inside a black panel at its physical aspect (pixels ``pixel_aspect`` times
    as tall as wide)."""
    if ctx.measuring:
        return
    reader, (w, h) = _jpeg(rgb)
    h = h * pixel_aspect
    panel_h = ctx.panel_h
    c = ctx.canvas
    c.setFillColor(colors.black)
    c.rect(x, top - panel_h, width, panel_h, stroke=0, fill=1)
    scale = min(width / w, panel_h / h)
    draw_w, draw_h = w * scale, h * scale
    c.drawImage(reader, x + (width - draw_w) / 2, top - panel_h + (panel_h - draw_h) / 2, draw_w, draw_h)


def _draw_empty_panel(ctx: _Context, x: float, top: float, width: float, reason: str) -> None:
    c = ctx.canvas
    c.setFillColor(PANEL_BG)
    c.setStrokeColor(RULE)
    c.rect(x, top - ctx.panel_h, width, ctx.panel_h, stroke=1, fill=1)
    para = ctx.para(reason, "small")
    _, h = para.wrap(width - 30, ctx.panel_h)
    para.drawOn(c, x + 15, top - ctx.panel_h / 2 - h / 2)


def _draw_legend(ctx: _Context, x: float, top: float, width: float, target: str, out_of_scope: str = "",
                 outline: bool = False) -> float:
    """A 0 → 1 colour bar of Grad-CAM × class probability in the overlay's colour map (vector
    rectangles), with the legend's words (``overlay.LEGEND_SHORT``, and ``overlay.OUTLINE_NOTE`` for an
    ``outline``; the app's tooltip says it at length) and, for a film outside the model's scope, a line
    saying the map is not reliable either."""
    c = ctx.canvas
    c.setFont(ctx.fonts.regular, 7.5)
    c.setFillColor(MUTED)
    c.drawString(x, top - 7.5, "0")
    c.drawRightString(x + width, top - 7.5, "1")
    bar_x, bar_w, steps = x + 20, width - 42, 96
    for i, rgb in enumerate(colorize(np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :])[0]):
        c.setFillColorRGB(*(rgb / 255.0))
        c.rect(bar_x + i * bar_w / steps, top - 8, bar_w / steps + 0.3, 7, stroke=0, fill=1)
    note = f"{LEGEND_TITLE}{f' for {target}' if target else ''}. {LEGEND_SHORT}" + (f" {OUTLINE_NOTE}" if outline else "")
    flowables = [ctx.para(note, "small")]
    if out_of_scope:
        flowables.append(ctx.rich(ctx.fonts.markup(heatmap_note(out_of_scope)), "warning"))
    return _draw_stack(ctx, flowables, x, top - 11, width)


def _draw_results(ctx: _Context, page: ReportPage, top: float) -> float:
    col_w = (CONTENT_W - PANEL_GAP) / 2
    left = [ctx.para("AI result", "heading"), *_result_flowables(ctx, page, col_w)]
    right = [ctx.para("Model", "heading"), *_model_flowables(ctx, page)]
    bottom_left = _draw_stack(ctx, left, MARGIN, top, col_w)
    bottom_right = _draw_stack(ctx, right, MARGIN + col_w + PANEL_GAP, top, col_w)
    return min(bottom_left, bottom_right)


def _result_flowables(ctx: _Context, page: ReportPage, width: float) -> list[Flowable]:
    prediction = page.prediction
    if prediction is None:
        reason = page.not_classified_reason or "no result for this image"
        return [ctx.rich(f"<b>Not classified:</b> {ctx.fonts.markup(reason)}", "alert")]
    flowables: list[Flowable] = []
    if page.out_of_scope:
        style = "alert" if banner_is_firm(page.out_of_scope) else "maybe"  # a maybe-in-scope film's in amber
        # a close call with its figures, as the app's panel says it
        text = banner(page.out_of_scope, prediction.probabilities[prediction.index], threshold(ctx.card))
        flowables.append(ctx.rich(f"<b>{ctx.fonts.markup(text)}</b>", style))
    firm = bool(page.out_of_scope) and banner_is_firm(page.out_of_scope)
    if firm:  # as the app's panel: the top class is shown, small and grey, but not as a call
        top = f"{_display_name(prediction.label)} {format_percent(prediction.probabilities[prediction.index])}"
        flowables.append(ctx.para(f"{NOT_RELIABLE} {top}", "small"))
    flowables.append(_probability_table(ctx, prediction, width, muted=firm))
    # The model's own note on this film (the averaged networks disagree): about the result, not an image check.
    flowables += [ctx.rich(ctx.fonts.markup(note), "model_note") for note in _model_notes(ctx, page)]
    flowables.append(ctx.para(f"Classified by {prediction.model_name}.", "small"))
    if page.heatmap_class and page.heatmap_class != prediction.label:
        flowables.append(ctx.para(f"The heat-map shows where the {_display_name(page.heatmap_class)} score rose, "
                                  "not the top class's.", "small"))
    return flowables


def _probability_table(ctx: _Context, prediction: Prediction, width: float, muted: bool = False) -> Table:
    """Class, probability (one decimal) and a bar per class; the top class in bold on a highlighted row with a
    dark bar, unless ``muted`` (a film outside what the model was trained for, the firm banner: as the app's
    panel, every row plain with a grey bar, since its top class is no call)."""
    bar_w = width - 150
    rows = [[ctx.para("Class", "label"), ctx.para("Probability", "label"), ""]]
    for i, (cls, p) in enumerate(zip(prediction.classes, prediction.probabilities)):
        top = i == prediction.index and not muted
        style = "cell_bold" if top else "cell"
        rows.append([ctx.para(_display_name(cls), style), ctx.para(format_percent(p), style),
                     _Bar(p, bar_w, 7, ACCENT if top else MUTED)])
    table = Table(rows, colWidths=[80, 62, bar_w + 8])
    top_row = prediction.index + 1
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, RULE),
        *([] if muted else [("BACKGROUND", (0, top_row), (-1, top_row), HIGHLIGHT)]),
    ]))
    return table


def _model_notes(ctx: _Context, page: ReportPage) -> list[str]:
    """The page's warnings that are notes on the model's result (``ensemble.is_disagreement_note``), shown under
    the probabilities rather than among the image checks (de-identified as the image checks are)."""
    notes = [w for w in page.warnings if is_disagreement_note(w)]
    return [_deidentified_warning(w, page) for w in notes] if ctx.deidentify else notes


def _deidentified_warning(warning: str, page: ReportPage) -> str:
    """A warning of ``page`` on a de-identified report (``deidentify.redact_generated_text``): nor the patient's
    identifiers, nor a quoted identifying value, a UID, a path or the file's name."""
    return redact_generated_text(warning, page.metadata, paths=(page.file_name,) if page.file_name else ())


def _model_flowables(ctx: _Context, page: ReportPage | None = None) -> list[Flowable]:
    card = ctx.card
    if card is None:
        return [ctx.para("No model card available.", "small")]
    # No card summary line: its name, architecture, pooled test accuracy and bar status are each said below.
    flowables = [ctx.rich(f"<b>{ctx.fonts.markup(card.name)}</b>", "body"),
                 ctx.para(f"Architecture {card.architecture}, input {card.input_size} px, classes "
                          f"{', '.join(card.display_classes())}.", "small")]
    # the figure of the class called (as the app's Model box: withheld for a film outside the model's scope); the
    # children's source beside their sensitivities
    called = page.prediction.label if page is not None and page.prediction is not None else ""
    flowables += [ctx.para(line, "small")
                  for line in metric_lines(card.test_metrics, _age_group(page), called=called, card=card,
                                           age_years=_age_years(page),
                                           out_of_scope=page.out_of_scope if page is not None else "")]
    if card.meets_bar:
        flowables.append(ctx.para("Meets the project's bar on its test set (accuracy, F1, calibration, shortcut and shift checks).", "good"))
    else:
        # the checks by name would crowd the page's half-width column: their count, and where they are listed
        failed = len(bar_failures(card))
        flowables.append(ctx.para(f"Caution: below the project's bar ({failed} check{'s' if failed > 1 else ''}, "
                                  f"page {ctx.total})." if failed else f"Caution: {below_bar_text(card)}", "alert"))
    return flowables


def _age_years(page: ReportPage | None) -> float | None:
    """The page's patient's age in years at the study (``suitability.patient_age_years``); None when not known."""
    from ..models.suitability import patient_age_years

    return patient_age_years(page.metadata) if page is not None else None


def _age_group(page: ReportPage | None) -> str:
    """The card's age group of the page's patient (``suitability.age_group_of``); ``""`` when not known."""
    from ..models.suitability import age_group_of

    return age_group_of(page.metadata) if page is not None else ""


def _draw_limits(ctx: _Context, page: ReportPage, top: float) -> float:
    """The model's limits from its card, the lines the app's AI panel shows (``model_limits``)."""
    if ctx.card is None:
        return top + SECTION_GAP
    flowables: list[Flowable] = [ctx.para("Model limits (from the model card)", "heading")]
    limits = model_limits(ctx.card, page.prediction, _age_group(page), page.out_of_scope)
    if limits.calibration:
        flowables.append(ctx.para(limits.calibration, "small"))
    below = " and the checks it fails (below the project's bar)" if not ctx.card.meets_bar else ""
    flowables.append(ctx.para(f"Its known limits{below}: page {ctx.total}.", "small"))
    return _draw_stack(ctx, flowables, MARGIN, top, CONTENT_W)


def _draw_model_limits_page(ctx: _Context, number: int) -> None:
    """The last page: the model's known limits (the lines the app's panel shows under every result) and, for a
    model below the project's bar, the checks it fails, by name."""
    card = ctx.card
    top = _draw_header(ctx, None, PAGE_H - MARGIN) - SECTION_GAP
    limits = model_limits(card)
    flowables: list[Flowable] = [ctx.para(f"The model and its known limits (from the model card of {card.name})",
                                          "heading"),
                                 ctx.para(limits.intended_use, "body")]
    for line in limits.limits:
        item = ctx.para(line, "item")
        item.bulletText = "•" if ctx.fonts.unicode else "-"
        flowables.append(item)
    failures = bar_failures(card) if not card.meets_bar else []
    if failures:
        flowables.append(ctx.para(f"Below the project's bar: it fails {'; '.join(failures)}.", "alert"))
    elif not card.meets_bar:  # a card written before the failures were recorded
        flowables.append(ctx.para(below_bar_text(card, "This model"), "alert"))
    # a model that meets the bar: each film page's Model box says so; said here too, it was said twice per report
    _draw_stack(ctx, flowables, MARGIN, top, CONTENT_W)
    _draw_footer(ctx, number)


def _draw_measurements(ctx: _Context, page: ReportPage, top: float) -> float:
    """The reader's measurements (nothing, not even a heading, when there are none)."""
    if not page.measurements:
        return top + SECTION_GAP
    flowables: list[Flowable] = [ctx.para("Measurements", "heading")]
    flowables += [ctx.para(line, "body") for line in page.measurements]
    return _draw_stack(ctx, flowables, MARGIN, top, CONTENT_W)


def _draw_warnings(ctx: _Context, page: ReportPage, top: float) -> float:
    """The page's warnings; under a banner less what it says already (``image_checks.beside_banner``, as the
    app's panel), and never "No warnings" there; a page flagged out of scope without a banner (not classified)
    says why in the warnings' words (``image_checks.scope_warning``)."""
    flowables: list[Flowable] = [ctx.para("Image checks", "heading")]
    with_banner = page.prediction is not None and bool(page.out_of_scope)  # as ``_result_flowables`` draws it
    # The averaged networks' disagreement is not an image check: "AI result" shows it (``_model_notes``).
    own = tuple(w for w in page.warnings if not (page.prediction is not None and is_disagreement_note(w)))
    if with_banner:
        lines = beside_banner(own, page.out_of_scope)
    else:
        lines = own or _scope_lines(page.out_of_scope)
    if lines:
        warnings = [_deidentified_warning(w, page) if ctx.deidentify else w for w in lines]
        flowables += [ctx.rich(ctx.fonts.markup(w), "warning") for w in warnings]
        for flowable in flowables[1:]:
            flowable.bulletText = "•" if ctx.fonts.unicode else "-"
    else:
        flowables.append(ctx.para(NO_MORE_WARNINGS if with_banner else "No warnings for this image.", "small"))
    return _draw_stack(ctx, flowables, MARGIN, top, CONTENT_W)


def _scope_lines(out_of_scope: str) -> tuple[str, ...]:
    if not out_of_scope:
        return ()
    # ``scope_warning`` leaves a lateral view to the header's own warning, which this page lacks.
    return (scope_warning(out_of_scope) or f"out of scope: {describe(out_of_scope)}",)


def _draw_comment(ctx: _Context, page: ReportPage, top: float) -> float:
    """The reader's comment in a box that fills the rest of the page; shrunk, then cut with a
    visible note, when it does not fit."""
    heading = ctx.para("Reader's comment", "heading")
    top = _draw_stack(ctx, [heading], MARGIN, top, CONTENT_W)
    reader = [ctx.para(f"Reader: {ctx.reader_name}", "small")] if ctx.reader_name else []
    reader_h = _stack_height(ctx, reader, CONTENT_W)
    pad = 5
    box_h = max(top - FOOTER_TOP - SECTION_GAP - reader_h, 20)
    body = _fit_comment(ctx, _printed_comment(ctx, page), CONTENT_W - 2 * pad, box_h - 2 * pad)
    c = ctx.canvas
    c.setStrokeColor(RULE)
    c.setLineWidth(0.8)
    c.rect(MARGIN, top - box_h, CONTENT_W, box_h, stroke=1, fill=0)
    _draw_stack(ctx, body, MARGIN + pad, top - pad, CONTENT_W - 2 * pad)
    return _draw_stack(ctx, reader, MARGIN, top - box_h - 3, CONTENT_W)


def _printed_comment(ctx: _Context, page: ReportPage) -> str:
    """The reader's comment as the page prints it: redacted on a de-identified report (``redact_free_text``)."""
    paths = (page.file_name,) if page.file_name else ()
    comment = redact_free_text(page.comment, page.metadata, paths) if ctx.deidentify else page.comment
    return comment.strip()


def _fit_comment(ctx: _Context, comment: str, width: float, height: float) -> list[Flowable]:
    if not comment:
        return [ctx.para("(no comment)", "small")]
    markup = ctx.fonts.markup(comment)
    base = _styles(ctx.fonts)["body"]
    for size in (9.0, 8.0, 7.0):
        para = Paragraph(markup, ParagraphStyle("comment", base, fontSize=size, leading=size * 1.25))
        if para.wrap(width, height)[1] <= height:
            return [para]
    logger.warning("reader's comment too long for one page; cut")
    note = ctx.para("[comment cut here: too long for one page]", "alert")
    parts = para.split(width, height - note.wrap(width, height)[1])
    return [*parts[:1], note]


def _draw_left_out_page(ctx: _Context, left_out: Sequence[tuple[Path, str]], included: int, number: int,
                        before: int | None = None) -> None:
    """The last page: the films chosen for this summary that it does not hold, each with why (file names
    withheld when de-identified: they are often the patient's name or UIDs); ``included`` films are on the
    ``before`` pages before it (default one page each; more with continuation pages)."""
    top = _draw_header(ctx, None, PAGE_H - MARGIN) - SECTION_GAP
    chosen = included + len(left_out)
    flowables: list[Flowable] = [
        ctx.para("Images not included in this summary", "heading"),
        ctx.para(f"{len(left_out)} of the {chosen} images of this export could not be included; the "
                 f"{included if before is None else before} page(s) before cover the others.", "body"),
    ]
    lines = [_left_out_line(ctx, index, path, reason) for index, (path, reason) in enumerate(left_out, start=1)]
    flowables += _glyph_note(ctx, [("Images not included", line) for line in lines], log=True)
    room = top - FOOTER_TOP - SECTION_GAP - _stack_height(ctx, flowables, CONTENT_W)
    for index, text in enumerate(lines, start=1):
        line = ctx.para(text, "warning")
        line.bulletText = "•" if ctx.fonts.unicode else "-"
        more = ctx.para(f"… and {len(left_out) - index + 1} more, each named with its reason in the app's "
                        "Problems list.", "body")
        # one page: the lines that fit, then how many more (a folder of 200 damaged files ran off the page)
        needed = [line, more] if index < len(left_out) else [line]
        if _stack_height(ctx, needed, CONTENT_W) > room:
            flowables.append(more)
            break
        room -= _stack_height(ctx, [line], CONTENT_W)
        flowables.append(line)
    _draw_stack(ctx, flowables, MARGIN, top, CONTENT_W)
    _draw_footer(ctx, number)


def _left_out_line(ctx: _Context, index: int, path, reason: str) -> str:
    """A left-out film's line, "name: reason" (file names withheld when de-identified)."""
    name = f"Image {index} not included" if ctx.deidentify else escape_undecodable(Path(path).name)
    if ctx.deidentify:  # a reason may quote the path or the file name (often the patient's)
        reason = reason.replace(str(path), "(file)").replace(Path(path).name, "(file)")
    return f"{name}: {escape_undecodable(reason)}"


def _draw_footer(ctx: _Context, number: int) -> None:
    c = ctx.canvas
    c.setStrokeColor(RULE)
    c.setLineWidth(0.8)
    c.line(MARGIN, FOOTER_TOP, PAGE_W - MARGIN, FOOTER_TOP)
    c.setFont(ctx.fonts.regular, 7.5)
    c.setFillColor(MUTED)
    version = f" {ctx.app_version}" if ctx.app_version else ""
    c.drawString(MARGIN, FOOTER_TOP - 10, f"CXR Reader{version} · {INTENDED_USE}")
    c.drawRightString(PAGE_W - MARGIN, FOOTER_TOP - 10, f"Page {number} of {ctx.total}")


# --------------------------------------------------------------------------- helpers

class _Bar(Flowable):
    """A horizontal bar of ``fraction`` × ``width``."""

    def __init__(self, fraction: float, width: float, height: float, colour):
        super().__init__()
        self.fraction, self.bar_w, self.bar_h, self.colour = min(max(fraction, 0.0), 1.0), width, height, colour

    def wrap(self, avail_width, avail_height):
        return self.bar_w, self.bar_h

    def draw(self):
        self.canv.setFillColor(PANEL_BG)
        self.canv.rect(0, 0, self.bar_w, self.bar_h, stroke=0, fill=1)
        self.canv.setFillColor(self.colour)
        self.canv.rect(0, 0, self.bar_w * self.fraction, self.bar_h, stroke=0, fill=1)


def _draw_stack(ctx: _Context, flowables: list[Flowable], x: float, top: float, width: float) -> float:
    """Draw ``flowables`` one under the other from ``top``; returns the bottom y."""
    y = top
    for flowable in flowables:
        _, h = flowable.wrapOn(ctx.canvas, width, PAGE_H)
        flowable.drawOn(ctx.canvas, x, y - h)
        y -= h + _space_after(flowable)
    return y


def _stack_height(ctx: _Context, flowables: list[Flowable], width: float) -> float:
    return sum(f.wrapOn(ctx.canvas, width, PAGE_H)[1] + _space_after(f) for f in flowables)


def _space_after(flowable: Flowable) -> float:
    style = getattr(flowable, "style", None)
    return getattr(style, "spaceAfter", 0) or 0


def _jpeg(rgb: np.ndarray) -> tuple[ImageReader, tuple[int, int]]:
    """``rgb`` downscaled to ``MAX_IMAGE_SIDE`` and JPEG-encoded (embedded as-is, DCTDecode)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb))
    image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    data = io.BytesIO()
    image.save(data, "JPEG", quality=JPEG_QUALITY, optimize=True)
    data.seek(0)
    return ImageReader(data), image.size


def _check_rgb(array: np.ndarray, what: str) -> None:
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        raise ValueError(f"the {what} must be a uint8 array, got {getattr(array, 'dtype', type(array))}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)) or 0 in array.shape:
        raise ValueError(f"the {what} must be (H, W) or (H, W, 3), got shape {array.shape}")


def _display_name(cls: str) -> str:
    return CLASS_DISPLAY_NAMES.get(cls, cls)


def _no_heatmap_reason(page: ReportPage) -> str:
    if page.prediction is None:
        return "No heat-map: the image was not classified."
    return "No heat-map was computed for this image."


def _timestamp(moment: datetime) -> str:
    zone = moment.strftime("%Z")
    return moment.strftime("%Y-%m-%d %H:%M") + (f" {zone}" if zone else "")

