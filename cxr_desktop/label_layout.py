"""Where measurement labels go on a view or an exported image: inside it and clear of each other. Qt
geometry only (QRectF), no widgets."""
from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF

#: Room kept between a label and the edge of the view or the exported picture (pixels).
LABEL_MARGIN_PX = 4.0


def arranged_labels(boxes: list[QRectF], port: QRectF, gap: float = 2.0,
                    keep_clear: Sequence[QRectF] = ()) -> list[tuple[float, float]]:
    """The (dx, dy) screen shift of each label box (viewport pixels) that keeps it inside ``port``, off the
    ``keep_clear`` rectangles (the viewer's corner text) and clear of the labels placed before it (top to
    bottom): a label that would overprint one of them moves below it, or above it where there is no room
    below; when neither frees it, the free spot nearest to where it would be (searched a row at a time)."""
    placed: list[QRectF] = []
    shifts: list[tuple[float, float]] = [(0.0, 0.0)] * len(boxes)
    obstacles = [QRectF(rect) for rect in keep_clear if not rect.isEmpty()]
    for index in sorted(range(len(boxes)), key=lambda i: (boxes[i].top(), boxes[i].left())):
        box = boxes[index]
        spot = box.translated(inside(box.left(), box.width(), port.left(), port.right()),
                              inside(box.top(), box.height(), port.top(), port.bottom()))
        taken = obstacles + placed
        for _ in range(len(taken) + 1):
            hit = next((other for other in taken if other.intersects(spot)), None)
            if hit is None:
                break
            below = hit.bottom() + gap
            top = below if below + spot.height() <= port.bottom() else hit.top() - gap - spot.height()
            spot.moveTop(max(top, port.top()))
        if any(other.intersects(spot) for other in taken):
            spot = _nearest_free(spot, taken, port, gap) or spot
        placed.append(spot)
        shifts[index] = (spot.left() - box.left(), spot.top() - box.top())
    return shifts


def _nearest_free(spot: QRectF, taken: list[QRectF], port: QRectF, gap: float) -> QRectF | None:
    """The spot of ``spot``'s size inside ``port`` that meets none of ``taken`` and is nearest to ``spot``:
    tried at ``spot``'s left and at each taken rectangle's sides, on rows just below or above each of them."""
    lefts = {spot.left(), *(r.right() + gap for r in taken), *(r.left() - gap - spot.width() for r in taken)}
    tops = {spot.top(), port.top(), *(r.bottom() + gap for r in taken), *(r.top() - gap - spot.height() for r in taken)}
    best = None
    for left in lefts:
        for top in tops:
            candidate = QRectF(left, top, spot.width(), spot.height())
            if not port.contains(candidate) or any(r.intersects(candidate) for r in taken):
                continue
            distance = abs(left - spot.left()) + abs(top - spot.top())
            if best is None or distance < best[0]:
                best = (distance, candidate)
    return best[1] if best else None


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


def place_labels(labels: list, anchor, port: QRectF, keep_clear: Sequence[QRectF] = ()) -> None:
    """Shift each label by a translation in device pixels so that all lie inside ``port``, off the
    ``keep_clear`` rectangles (a viewer's corner text: ``corner_layout.corner_text_rects``) and clear of each
    other; ``anchor(label)`` is the device position of its top-left corner unshifted. The label's own position
    (the point it labels) is unchanged; its scale (an export's text scale) is kept."""
    from PySide6.QtGui import QTransform

    boxes = [QRectF(anchor(item), item.boundingRect().size() * item.scale()) for item in labels]
    for item, (dx, dy) in zip(labels, arranged_labels(boxes, port, keep_clear=keep_clear)):
        # Qt scales the item first, then applies its transform: the shift is in device pixels as it is.
        wanted = QTransform.fromTranslate(dx, dy)
        if wanted != item.transform():
            item.setTransform(wanted)
