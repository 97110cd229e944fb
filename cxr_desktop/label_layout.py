"""Where measurement labels go on a view or an exported image: inside it and clear of each other. Qt
geometry only (QRectF), no widgets."""
from __future__ import annotations

from PySide6.QtCore import QRectF

#: Room kept between a label and the edge of the view or the exported picture (pixels).
LABEL_MARGIN_PX = 4.0


def arranged_labels(boxes: list[QRectF], port: QRectF, gap: float = 2.0) -> list[tuple[float, float]]:
    """The (dx, dy) screen shift of each label box (viewport pixels) that keeps it inside ``port`` and
    clear of the labels placed before it (top to bottom): a label that would overprint another moves
    below it, or above it where there is no room below."""
    placed: list[QRectF] = []
    shifts: list[tuple[float, float]] = [(0.0, 0.0)] * len(boxes)
    for index in sorted(range(len(boxes)), key=lambda i: (boxes[i].top(), boxes[i].left())):
        box = boxes[index]
        spot = box.translated(inside(box.left(), box.width(), port.left(), port.right()),
                              inside(box.top(), box.height(), port.top(), port.bottom()))
        for _ in range(len(placed) + 1):
            hit = next((other for other in placed if other.intersects(spot)), None)
            if hit is None:
                break
            below = hit.bottom() + gap
            top = below if below + spot.height() <= port.bottom() else hit.top() - gap - spot.height()
            spot.moveTop(max(top, port.top()))
        placed.append(spot)
        shifts[index] = (spot.left() - box.left(), spot.top() - box.top())
    return shifts


def inside(start: float, length: float, low: float, high: float) -> float:
    """The shift that brings [start, start + length] within [low, high] (0 when it already is;
    the start wins when the span is longer than the room)."""
    if start + length > high:
        return max(high - length, low) - start
    if start < low:
        return low - start
    return 0.0


def measurement_labels(scene) -> list:
    """The visible labels of the measured annotations in ``scene`` (drawn at screen size: they ignore
    the view's zoom)."""
    from PySide6.QtWidgets import QGraphicsItem, QGraphicsSimpleTextItem

    from .annotation_items import ShapeAnnotationItem

    return [item for item in scene.items()
            if isinstance(item, QGraphicsSimpleTextItem) and isinstance(item.parentItem(), ShapeAnnotationItem)
            and item.isVisible() and item.flags() & QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations]


def place_labels(labels: list, anchor, port: QRectF) -> None:
    """Shift each label by a translation in device pixels so that all lie inside ``port`` and clear of
    each other; ``anchor(label)`` is the device position of its top-left corner unshifted. The label's
    own position (the point it labels) is unchanged; its scale (an export's text scale) is kept."""
    from PySide6.QtGui import QTransform

    boxes = [QRectF(anchor(item), item.boundingRect().size() * item.scale()) for item in labels]
    for item, (dx, dy) in zip(labels, arranged_labels(boxes, port)):
        # Qt scales the item first, then applies its transform: the shift is in device pixels as it is.
        wanted = QTransform.fromTranslate(dx, dy)
        if wanted != item.transform():
            item.setTransform(wanted)
