"""Where a viewer's corner text lies (viewport pixels): the blocks ``ImageView.drawForeground`` paints, so
that measurement labels can be kept off them (a label over "rotated 90° flipped H" hides the film's
orientation, a laterality risk)."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF

from .formatting import CornerText, corner_text

#: The corner text is laid out this far inside the viewport (left/right, top/bottom), in pixels.
CORNER_INSET = (8.0, 6.0)
#: Its drop shadow is drawn this many pixels right of and below the text.
SHADOW_PX = 1.0

_ALIGN = {
    "top_left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
    "top_right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
    "bottom_left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
    "bottom_right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
}


def shown_corner_text(view) -> CornerText | None:
    """The corner text ``view`` (an ``ImageView``) shows now: the overlay's and the heat-map's caption
    (bottom right); None when it shows none."""
    model = view.model
    image = model.image
    if image is None:
        return None
    caption = view.heatmap_caption()
    if model.corner_overlay:
        text = corner_text(image.metadata, image.shape, model.voi, view.zoom, model.rotation,
                           model.flip_h, model.flip_v, model.user_invert)
    elif caption:
        text = CornerText((), (), (), ())
    else:
        return None
    if caption:
        text = CornerText(text.top_left, text.top_right, text.bottom_left, (caption, *text.bottom_right))
    return text


def corner_font(view) -> QFont:
    font = QFont(view.font())
    font.setPointSizeF(max(font.pointSizeF(), 9.0))
    return font


def corner_blocks(view) -> list[tuple[QRectF, Qt.AlignmentFlag, str]]:
    """(area, alignment, text) of each non-empty corner block ``view`` paints, in viewport pixels; a line
    longer than half the view is cut with "…" (two corners share each row)."""
    text = shown_corner_text(view)
    if text is None:
        return []
    metrics = QFontMetricsF(corner_font(view))
    dx, dy = CORNER_INSET
    area = QRectF(view.viewport().rect()).adjusted(dx, dy, -dx, -dy)
    half = max(area.width() / 2.0 - metrics.averageCharWidth(), 10.0)
    blocks = []
    for corner, align in _ALIGN.items():
        block = "\n".join(metrics.elidedText(line, Qt.TextElideMode.ElideRight, half) for line in getattr(text, corner))
        if block:
            blocks.append((area, align, block))
    return blocks


def corner_text_rects(view) -> list[QRectF]:
    """The rectangles (viewport pixels) the corner text of ``view`` covers, its shadow included."""
    metrics = QFontMetricsF(corner_font(view))
    return [metrics.boundingRect(area, int(align), block).adjusted(0.0, 0.0, SHADOW_PX, SHADOW_PX)
            for area, align, block in corner_blocks(view)]
