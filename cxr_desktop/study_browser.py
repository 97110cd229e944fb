"""The study browser: Patient → Study → Series → Image, mirroring engine ``ScanResult`` trees."""
from __future__ import annotations

import bisect
from collections import Counter
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDrag, QIcon, QPainter, QPixmap, QPolygon
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from cxr_engine.display_text import (
    format_date, format_percent, format_person_name, format_time, printable, sentence_case,
)
from cxr_engine.outputs.undecodable import escape_undecodable
from cxr_engine.models.ensemble import disagreement_note
from cxr_engine.models.image_checks import banner, banner_is_firm, corrected_display, correction_note
from cxr_engine.models.model_card import CLASS_DISPLAY_NAMES
from cxr_engine.reading.copies import aliases_note, copies_note
from cxr_engine.reading.scanning import (
    Instance, ScanResult, instance_order, patient_order, series_order, study_order,
)

from .formatting import NOT_CLASSIFIED
from .qimage import to_qimage, to_rgb_array

PATH_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1
DATE_ROLE = Qt.ItemDataRole.UserRole + 2  # a study's DICOM DA date
TIME_ROLE = Qt.ItemDataRole.UserRole + 8  # a study's DICOM TM time
VIEW_ROLE = Qt.ItemDataRole.UserRole + 3  # an image's View Position (PA, AP, LATERAL, ...)
PREDICTION_ROLE = Qt.ItemDataRole.UserRole + 4  # an image's Prediction, once classified
SCOPE_ROLE = Qt.ItemDataRole.UserRole + 5  # (out_of_scope reasons, reasons undone by a correction)
THUMBNAIL_ROLE = Qt.ItemDataRole.UserRole + 6  # a corrected image's thumbnail as stored (uint8 greyscale)
CORRECTION_ROLE = Qt.ItemDataRole.UserRole + 7  # the image checks' reasons undone on the film shown ("": none)
PATIENT_ROLE = Qt.ItemDataRole.UserRole + 9  # a patient's node key as text: two films are one person's when equal
DESCRIPTION_ROLE = Qt.ItemDataRole.UserRole + 10  # a study's Study Description
#: The result column of a film outside the model's scope (the panel's red banner): no class, no score, which
#: its tooltip gives marked "Not reliable:" as the panel does.
OUT_OF_SCOPE_RESULT = "⚠ out of\nscope"
NOT_RELIABLE = "Not reliable:"
#: The corner mark of a thumbnail shown corrected (the warnings' amber).
CORRECTED_MARK_COLOUR = QColor(255, 179, 71)
#: The result column of a film out of the model's scope: the banner's red.
OUT_OF_SCOPE_COLOUR = QColor(231, 76, 60)
#: The result of a film that may well be in scope (``image_checks.banner_is_firm`` false): grey-blue, not red.
MAYBE_SCOPE_COLOUR = QColor(138, 150, 171)
#: What a drag from the browser carries: the dragged images' paths, one per line (UTF-8). Not
#: file URLs: a drop on the window outside a viewport must not re-open them as a new folder.
PATHS_MIME = "application/x-cxr-reader-paths"
COLUMNS = ("Patient / study / series / image", "AI result")
NAME, RESULT = range(len(COLUMNS))
ICON_PX = 56
#: Each tree level's indentation (px).
INDENT_PX = 14
#: The name column's least width (px): an image row's indentation (four levels: the patient, study and series
#: above it, and the root's own, decorated) and its thumbnail with the item's margins. The tree is never
#: narrower than this plus the result column, so it never scrolls sideways.
NAME_MIN_PX = 4 * INDENT_PX + ICON_PX + 8
#: Images added to the tree between two turns of the event loop.
IMAGES_PER_STEP = 1000
#: Trees with more images than this open with only the first patient expanded.
EXPAND_ALL_IMAGES = 2000
#: The node key of the tree's top level (its children are the patients).
ROOT: tuple = ()


class StudyBrowser(QTreeWidget):
    """A tree of what was scanned; selecting an image emits ``imageSelected(path)``.

    Nodes with the same patient (``Patient.key``: ID, issuer, name and birth date, never an
    empty attribute alone), study UID and series UID are merged, so several scans (files opened
    one by one) make one tree; two people are never shown as one. PNG/JPEG files, which carry
    no patient details, are each shown as a patient of their own, named by the file. Every level keeps
    the scan's reading order (``scanning.patient_order`` … ``instance_order``) when a later scan adds to
    it: a prior study opened from another folder goes in by its date, not at the end.
    """

    imageSelected = Signal(object)

    def __init__(self, parent=None, card_source=None):
        """``card_source()`` gives the model card of the predictions shown (None: none), whose figures an averaged
        model's note on a film its networks disagree on gives (``ensemble.disagreement_note``)."""
        super().__init__(parent)
        self._card_source = card_source or (lambda: None)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setIconSize(QSize(ICON_PX, ICON_PX))
        self.setUniformRowHeights(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setIndentation(INDENT_PX)
        # The names take the width the result column leaves and elide; the result column is as wide as its
        # text, which stands in lines ("COVID-19", "98.2 %") beside the thumbnail, so a narrow dock (a small
        # screen) shows both columns whole. The tree's minimum width (minimumSizeHint) keeps the thumbnails.
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(RESULT, QHeaderView.ResizeMode.ResizeToContents)
        header.sectionResized.connect(self._on_section_resized)
        # Computed once: building Qt flag enums in Python costs ~25 µs a time (0.2 s per 20,000 rows).
        self._group_flags = QTreeWidgetItem().flags() & ~Qt.ItemFlag.ItemIsSelectable
        self._image_size_hint = QSize(ICON_PX + 8, ICON_PX + 4)
        self._nodes: dict[tuple, QTreeWidgetItem] = {}
        self._images: dict[Path, QTreeWidgetItem] = {}
        # A node's key (ROOT for the top level) -> its children's reading-order sort keys, in tree order.
        self._child_orders: dict[tuple, list[tuple]] = {}
        self._pressed: QTreeWidgetItem | None = None
        self._following = False  # making the shown film current: no imageSelected (it is shown already)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.currentItemChanged.connect(self._on_current_changed)

    def minimumSizeHint(self) -> QSize:
        """Wide enough for the name column's ``NAME_MIN_PX``, the result column as its text needs and the
        vertical scroll bar (reserved, shown or not), so that the tree never needs a horizontal one."""
        hint = super().minimumSizeHint()
        width = (NAME_MIN_PX + self.header().sectionSize(RESULT) + self.verticalScrollBar().sizeHint().width()
                 + 2 * self.frameWidth())
        return QSize(max(hint.width(), width), hint.height())

    def _on_section_resized(self, section: int, _old: int, _new: int) -> None:
        if section == RESULT:  # a wider result (a "⚠", "corrected") widens the tree's minimum, and its dock
            self.updateGeometry()

    # ------------------------------------------------------------------ building
    def clear(self) -> None:
        super().clear()
        self._nodes.clear()
        self._images.clear()
        self._child_orders.clear()

    def add_result(self, result: ScanResult) -> None:
        """Add every image of ``result`` under its patient, study and series."""
        for _ in self.add_result_steps(result):
            pass

    def add_result_steps(self, result: ScanResult, images_per_step: int = IMAGES_PER_STEP):
        """Generator form of :meth:`add_result`: yields after about ``images_per_step`` images,
        so a caller can let the event loop run between steps (a 20,000-image folder otherwise
        freezes the window for a second or more).

        New patients are built detached and attached in one call per step: inserting rows one
        by one into the shown tree costs a view update each.
        """
        new_patients: list[QTreeWidgetItem] = []  # built detached; they go after every attached patient
        added = 0
        dated: list[QTreeWidgetItem] = []  # patients given a study: their studies' labels are looked at again
        for patient in result.patients:
            p_key = ("patient",) + (patient.key or (patient.patient_id,))
            p_item = self._nodes.get(p_key)
            if p_item is None:
                p_item = self._node(p_key, _patient_label(patient), "patient")
                p_item.setData(0, PATIENT_ROLE, repr(p_key))
                index = self._place(ROOT, patient_order(patient))
                if index == self.topLevelItemCount() + len(new_patients):
                    new_patients.append(p_item)
                else:  # before a patient of an earlier scan: in its place
                    self.addTopLevelItems(new_patients)
                    new_patients = []
                    self.insertTopLevelItem(index, p_item)
            for study in patient.studies:
                first = _first_instance(study)
                # A study without a UID is one file's own: never merged with another such study.
                s_key = p_key + ("study", study.uid or f"file:{first.path if first else ''}")
                known = s_key in self._nodes
                s_item = self._child_node(s_key, p_key, p_item, _study_label(study, first), "study",
                                          study_order(study))
                if not known:
                    s_item.setData(0, DATE_ROLE, study.date)
                    s_item.setData(0, TIME_ROLE, study.time)
                    s_item.setData(0, DESCRIPTION_ROLE, study.description)
                    if study.date and (not dated or dated[-1] is not p_item):
                        dated.append(p_item)
                for series in study.series:
                    label = _join(f"Series {series.number}" if series.number is not None else "Series",
                                  series.modality, series.description)
                    # As the scan: a series without a UID is one file's own.
                    uid = series.uid or f"file:{series.instances[0].path if series.instances else ''}"
                    se_key = s_key + ("series", uid)
                    se_item = self._child_node(se_key, s_key, s_item, label, "series", series_order(series))
                    for instance in series.instances:
                        if instance.is_image and instance.path not in self._images:
                            self._add_image(se_item, self._place(se_key, instance_order(instance)), instance,
                                            series.modality)
                            added += 1
            if added >= images_per_step:
                self.addTopLevelItems(new_patients)
                new_patients, added = [], 0
                yield
        self.addTopLevelItems(new_patients)
        for p_item in dated:
            _label_same_day_studies(p_item)
        if len(self._images) <= EXPAND_ALL_IMAGES:
            self.expandAll()
        elif self.topLevelItemCount():
            # Laying out tens of thousands of expanded rows freezes the window for half a second;
            # open the first patient only (selecting an image later opens its own branch).
            self.expandRecursively(self.indexFromItem(self.topLevelItem(0)))

    def _node(self, key: tuple, text: str, kind: str, parent: QTreeWidgetItem | None = None,
              index: int = 0) -> QTreeWidgetItem:
        """A new node ``key``: ``parent``'s child ``index``, or detached without a ``parent`` (a patient, which
        the caller attaches)."""
        item = QTreeWidgetItem([text])
        item.setData(0, KIND_ROLE, kind)
        item.setFlags(self._group_flags)
        if parent is not None:
            parent.insertChild(index, item)
        self._nodes[key] = item
        return item

    def _child_node(self, key: tuple, parent_key: tuple, parent: QTreeWidgetItem, text: str, kind: str,
                    order: tuple) -> QTreeWidgetItem:
        """The node ``key`` under ``parent``, made in its reading-order place (sort key ``order``) when new."""
        if key in self._nodes:
            return self._nodes[key]
        return self._node(key, text, kind, parent, self._place(parent_key, order))

    def _place(self, parent_key: tuple, order: tuple) -> int:
        """Record a new child of ``parent_key`` with sort key ``order``; return its index among the children
        (after any equal key, so one scan's own order is kept)."""
        orders = self._child_orders.setdefault(parent_key, [])
        index = bisect.bisect_right(orders, order)
        orders.insert(index, order)
        return index

    def _add_image(self, parent: QTreeWidgetItem, index: int, instance: Instance, modality: str) -> None:
        number = f"Image {instance.instance_number}" if instance.instance_number is not None else "Image"
        technique = " ".join(v for v in (instance.modality or modality, instance.view_position) if v)
        if instance.file_format != "dicom":
            technique = instance.file_format.upper()
        item = QTreeWidgetItem([f"{number}\n{technique}" if technique else number, ""])
        item.setData(0, PATH_ROLE, instance.path)
        item.setData(0, KIND_ROLE, "image")
        item.setData(0, VIEW_ROLE, instance.view_position.upper())
        tip = escape_undecodable(instance.path)
        if instance.copies:  # the same SOP Instance stored as other files too, listed here once
            tip += "\n" + copies_note(instance.copies)
        if instance.aliases:  # the same file reached by other paths too (a link, a folder opened twice)
            tip += "\n" + aliases_note(instance.aliases)
        item.setToolTip(0, tip)
        item.setSizeHint(0, self._image_size_hint)
        parent.insertChild(index, item)
        self._images[instance.path] = item

    # ------------------------------------------------------------------ queries
    def image_paths(self) -> list[Path]:
        """Every image, in tree order."""
        return self.paths_under()

    def image_count(self) -> int:
        return len(self._images)

    def has_image(self, path: Path) -> bool:
        return Path(path) in self._images

    def study_paths(self, path: Path) -> list[Path]:
        """The images of the study holding ``path``, in tree order."""
        item = self._images.get(Path(path))
        while item is not None and item.data(0, KIND_ROLE) != "study":
            item = item.parent()
        if item is None:
            return [Path(path)] if Path(path) in self._images else []
        return self.paths_under(item)

    def paths_under(self, root: QTreeWidgetItem | None = None) -> list[Path]:
        """The images under the node ``root`` (a patient, study or series; the whole tree when None),
        in tree order."""
        return [item.data(0, PATH_ROLE) for item in self._image_items(root)]

    def patient_studies(self, path: Path) -> list[tuple[str, list[Path]]]:
        """``(study date (DICOM DA, "" when absent), image paths)`` of every study of the patient
        whose image ``path`` is, in tree order; ``[]`` for a path not in the tree (``study_moments`` adds the
        study time)."""
        return [(date, paths) for date, _, paths in self.study_moments(path)]

    def study_moments(self, path: Path) -> list[tuple[str, str, list[Path]]]:
        """``(study date (DA), study time (TM), image paths)`` of every study of the patient whose image
        ``path`` is, in tree order (``""`` for a date or time the header does not give)."""
        patient = self._images.get(Path(path))
        while patient is not None and patient.parent() is not None:
            patient = patient.parent()
        if patient is None:
            return []
        studies = []
        stack = [patient]
        while stack:
            item = stack.pop()
            if item.data(0, KIND_ROLE) == "study":
                studies.append((str(item.data(0, DATE_ROLE) or ""), str(item.data(0, TIME_ROLE) or ""),
                                self.paths_under(item)))
            else:
                stack.extend(item.child(i) for i in reversed(range(item.childCount())))
        return studies

    def patient_of(self, path: Path) -> str | None:
        """The identity of the patient whose image ``path`` is (equal for two films of one person, as the tree
        groups them); None for a path not in the tree."""
        patient = self._patient_item(path)
        return str(patient.data(0, PATIENT_ROLE) or id(patient)) if patient is not None else None

    def patient_text(self, path: Path) -> str:
        """The patient row's label of ``path``'s image (name, ID, birth date); ``""`` for a path not in the tree."""
        patient = self._patient_item(path)
        return patient.text(0) if patient is not None else ""

    def study_moment(self, path: Path) -> tuple[str, str, str]:
        """``(study date (DA), study time (TM), study description)`` of the study holding ``path``'s image
        (``""`` each when unknown)."""
        item = self._images.get(Path(path))
        while item is not None and item.data(0, KIND_ROLE) != "study":
            item = item.parent()
        if item is None:
            return "", "", ""
        return tuple(str(item.data(0, role) or "") for role in (DATE_ROLE, TIME_ROLE, DESCRIPTION_ROLE))

    def _patient_item(self, path: Path) -> QTreeWidgetItem | None:
        item = self._images.get(Path(path))
        while item is not None and item.parent() is not None:
            item = item.parent()
        return item

    def view_position(self, path: Path) -> str:
        """The image's View Position (0018,5101) in capitals (``PA``, ``LATERAL``…), ``""`` when unknown."""
        item = self._images.get(Path(path))
        return str(item.data(0, VIEW_ROLE) or "") if item is not None else ""

    def paths_in_view(self) -> list[Path]:
        """The images whose rows the tree shows now (at least partly inside its viewport), top to bottom."""
        paths, item, height = [], self.itemAt(0, 0), self.viewport().height()
        while item is not None and self.visualItemRect(item).top() < height:
            if item.data(0, KIND_ROLE) == "image":
                paths.append(item.data(0, PATH_ROLE))
            item = self.itemBelow(item)
        return paths

    def current_path(self) -> Path | None:
        item = self.currentItem()
        return item.data(0, PATH_ROLE) if item is not None and item.data(0, KIND_ROLE) == "image" else None

    def _image_items(self, root: QTreeWidgetItem | None = None) -> list[QTreeWidgetItem]:
        found = []
        stack = [root] if root is not None else [self.topLevelItem(i) for i in range(self.topLevelItemCount())][::-1]
        while stack:
            item = stack.pop()
            if item.data(0, KIND_ROLE) == "image":
                found.append(item)
            stack.extend(item.child(i) for i in reversed(range(item.childCount())))
        return found

    # ------------------------------------------------------------------ selection
    def select_path(self, path: Path) -> bool:
        item = self._images.get(Path(path))
        if item is None:
            return False
        self.setCurrentItem(item)
        self.scrollToItem(item)
        return True

    def follow(self, path: Path) -> bool:
        """Make ``path``'s image current and scroll to it, as the viewer shows it already (asked for by
        the program: a test, the comparison, an opened file), without emitting ``imageSelected`` (no second
        load); False when the tree does not hold it."""
        item = self._images.get(Path(path))
        if item is None:
            return False
        if self.current_path() != Path(path):
            self._following = True
            try:
                self.setCurrentItem(item)
            finally:
                self._following = False
        self.scrollToItem(item)
        return True

    def select_next(self, step: int = 1) -> bool:
        """Move to the next (``step`` > 0) or previous image; False at either end."""
        paths = self.image_paths()
        if not paths:
            return False
        current = self.current_path()
        index = paths.index(current) + step if current in paths else 0
        if not 0 <= index < len(paths):
            return False
        return self.select_path(paths[index])

    def select_next_series(self, step: int = 1) -> bool:
        """Show the first image of the next (``step`` > 0) or previous series, across studies and
        patients in tree order; False at either end."""
        firsts, series_of = [], {}
        for item in self._image_items():
            key = self._node_key(item.parent())
            if key not in series_of:
                series_of[key] = len(firsts)
                firsts.append(item)
        current = self._images.get(self.current_path()) if self.current_path() is not None else None
        if not firsts:
            return False
        index = series_of[self._node_key(current.parent())] + step if current is not None else 0
        if not 0 <= index < len(firsts):
            return False
        return self.select_path(firsts[index].data(0, PATH_ROLE))

    def _node_key(self, item: QTreeWidgetItem) -> tuple[int, int]:
        """A hashable identity of a tree node (Python wrappers of one item may differ)."""
        index = self.indexFromItem(item)
        return index.row(), index.internalId()

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        if not self._following and current is not None and current.data(0, KIND_ROLE) == "image":
            self.imageSelected.emit(current.data(0, PATH_ROLE))

    # ------------------------------------------------------------------ dragging
    def mime_for(self, item: QTreeWidgetItem) -> QMimeData:
        """What dragging ``item`` carries: its image's path, or every image path under a patient,
        study or series node (``PATHS_MIME``)."""
        mime = QMimeData()
        mime.setData(PATHS_MIME, "\n".join(str(path) for path in self.paths_under(item)).encode("utf-8"))
        return mime

    def mousePressEvent(self, event):
        # Patient, study and series rows cannot be selected, so Qt's own drag would carry the
        # selected image instead of the row the reader pressed: remember that row.
        self._pressed = self.itemAt(event.position().toPoint())
        super().mousePressEvent(event)

    def startDrag(self, actions):
        item = self._pressed or self.currentItem()
        if item is None or not self.paths_under(item):
            return
        drag = QDrag(self)
        drag.setMimeData(self.mime_for(item))
        if item.data(0, KIND_ROLE) == "image" and not item.icon(0).isNull():
            drag.setPixmap(item.icon(0).pixmap(ICON_PX, ICON_PX))
        drag.exec(Qt.DropAction.CopyAction)

    # ------------------------------------------------------------------ decorations
    def set_thumbnail(self, path: Path, pixels) -> None:
        """``path``'s thumbnail (uint8 greyscale, as stored), shown as the viewer shows the film (see
        :meth:`show_correction`)."""
        item = self._images.get(Path(path))
        if item is None:
            return
        if item.data(0, CORRECTION_ROLE):
            item.setData(0, THUMBNAIL_ROLE, pixels)  # kept for corrected films only (a few, not 20,000)
            self._draw_thumbnail(item)
        else:
            item.setIcon(0, QIcon(QPixmap.fromImage(to_qimage(pixels))))

    def show_correction(self, path: Path, reasons: str) -> None:
        """The viewer shows ``path``'s film turned and/or inverted back per the image checks' ``reasons``
        (``""``: as stored): its thumbnail shows it so too, as the reader sees it, with an amber corner
        mark and the correction's note in its tooltip, so that the tree never hides that the file differs."""
        item = self._images.get(Path(path))
        if item is None or (item.data(0, CORRECTION_ROLE) or "") == reasons:
            return
        if item.data(0, THUMBNAIL_ROLE) is None and not item.icon(0).isNull():  # the icon shows it as stored
            item.setData(0, THUMBNAIL_ROLE, _grey_pixels(item.icon(0)))
        item.setData(0, CORRECTION_ROLE, reasons)
        tip = item.toolTip(0).split("\n\n")[0]  # the path (and copies), without an earlier note
        item.setToolTip(0, f"{tip}\n\n{correction_note(reasons)}" if reasons else tip)
        self._draw_thumbnail(item)

    def thumbnail_correction(self, path: Path) -> str:
        """The reasons undone on ``path``'s thumbnail (``""``: shown as stored)."""
        item = self._images.get(Path(path))
        return (item.data(0, CORRECTION_ROLE) or "") if item is not None else ""

    def _draw_thumbnail(self, item: QTreeWidgetItem) -> None:
        pixels = item.data(0, THUMBNAIL_ROLE)
        if pixels is None:
            return
        reasons = item.data(0, CORRECTION_ROLE) or ""
        shown = corrected_display(pixels, reasons) if reasons else pixels
        pixmap = QPixmap.fromImage(to_qimage(shown))
        if reasons:
            _mark_corner(pixmap)
        item.setIcon(0, QIcon(pixmap))

    def set_result(self, path: Path, text: str, tooltip: str = "") -> None:
        item = self._images.get(Path(path))
        if item is not None:
            item.setText(RESULT, text)
            item.setToolTip(RESULT, tooltip)

    def show_prediction(self, path: Path, prediction) -> None:
        """Mirror ``path``'s ``Prediction``: the top class and its probability, every class in the tooltip
        (display names: ``COVID-19``), with the out-of-scope mark :meth:`show_scope` gave it."""
        item = self._images.get(Path(path))
        if item is not None:
            item.setData(RESULT, PREDICTION_ROLE, prediction)
            self._show_result(item)

    def show_scope(self, path: Path, out_of_scope: str, corrected: str = "") -> None:
        """Mark ``path``'s result as its panel's banner does: ``out_of_scope`` reasons (``""`` in scope) put
        a red ⚠ before it (a grey-blue ? when the film may well be in scope: ``image_checks.banner_is_firm``, or
        an averaged model's networks disagree on it, with the note) and the banner's sentence in its tooltip
        (``image_checks.banner``); ``corrected`` (the image checks' reasons undone on the film shown) adds
        "corrected" and the correction's note."""
        item = self._images.get(Path(path))
        if item is not None:
            item.setData(RESULT, SCOPE_ROLE, (out_of_scope, corrected))
            self._show_result(item)
            self.show_correction(path, corrected)

    def forget_result(self, path: Path) -> None:
        """``path``'s prediction and mark were dropped (its film is classified again): "…" until the new one."""
        item = self._images.get(Path(path))
        if item is not None:
            item.setData(RESULT, PREDICTION_ROLE, None)
            item.setData(RESULT, SCOPE_ROLE, None)
            item.setText(RESULT, "…")
            item.setToolTip(RESULT, "")
            item.setForeground(RESULT, QBrush())

    def forget_results(self) -> None:
        """Every film's prediction and mark were dropped (another model was chosen): "…" until classified again."""
        for path in self._images:
            self.forget_result(path)

    def result_text(self, path: Path) -> tuple[str, str]:
        """(text, tooltip) of ``path``'s result column."""
        item = self._images.get(Path(path))
        return (item.text(RESULT), item.toolTip(RESULT)) if item is not None else ("", "")

    def _show_result(self, item: QTreeWidgetItem) -> None:
        prediction = item.data(RESULT, PREDICTION_ROLE)
        out_of_scope, corrected = item.data(RESULT, SCOPE_ROLE) or ("", "")
        if prediction is None:
            return
        text = f"{prediction.display_label}\n{format_percent(prediction.probabilities[prediction.index])}"
        summary = ", ".join(f"{CLASS_DISPLAY_NAMES.get(c, c)}: {format_percent(p)}"
                            for c, p in zip(prediction.classes, prediction.probabilities))
        # An averaged model whose networks disagree on the film: its panel's note under the probabilities.
        note = disagreement_note(self._card_source(), prediction, out_of_scope)
        tips = [banner(out_of_scope)] if out_of_scope else []
        tips += [sentence_case(note)] if note else []
        tips += [correction_note(corrected)] if corrected else []
        # A film that may well be in scope (the model unsure, a child's chest without an age), or whose networks
        # disagree, is marked as its panel's slate banner is, not red.
        firm = bool(out_of_scope) and banner_is_firm(out_of_scope)
        mark = "⚠ " if firm else ("? " if out_of_scope or note else "")
        # Outside the model's scope, its top class is no call (the panel greys it, "Not reliable:"): the worklist
        # says so instead of showing the class and score as a result; the tooltip keeps them, marked.
        shown = OUT_OF_SCOPE_RESULT if firm else mark + text
        scores = f"{summary} ({prediction.model_name})"
        item.setText(RESULT, shown + ("\ncorrected" if corrected else ""))
        item.setToolTip(RESULT, "\n".join([*tips, f"{NOT_RELIABLE} {scores}" if firm else scores]))
        item.setForeground(RESULT, QBrush(OUT_OF_SCOPE_COLOUR if firm else MAYBE_SCOPE_COLOUR) if mark
                           else QBrush())

    def mark_problem(self, path: Path, reason: str) -> None:
        """Show that ``path`` could not be read or classified, with the reason as a tooltip."""
        item = self._images.get(Path(path))
        if item is not None:
            item.setForeground(0, QBrush(QColor(230, 90, 90)))
            item.setToolTip(0, f"{escape_undecodable(path)}\n{reason}")
            first, _, rest = item.text(0).partition("\n")
            name = escape_undecodable(Path(path).name)
            if name not in first:  # failed copies of one film ("Image 16") told apart by file
                item.setText(0, f"{first} · {name}" + (f"\n{rest}" if rest else ""))
            item.setText(RESULT, NOT_CLASSIFIED if reason.startswith(NOT_CLASSIFIED) else "⚠ error")
            item.setToolTip(RESULT, reason)


def _grey_pixels(icon: QIcon):
    """The uint8 greyscale pixels of a thumbnail icon at its own size."""
    size = max(icon.availableSizes(), key=lambda s: s.width() * s.height(), default=QSize(ICON_PX, ICON_PX))
    return to_rgb_array(icon.pixmap(size).toImage())[..., 0]


def _mark_corner(pixmap: QPixmap) -> None:
    """An amber triangle in ``pixmap``'s top-right corner, a quarter of its short side: the film is shown
    corrected, not as stored."""
    size = max(6, min(pixmap.width(), pixmap.height()) // 4)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(CORRECTED_MARK_COLOUR)
    right = pixmap.width()
    painter.drawPolygon(QPolygon([QPoint(right - size, 0), QPoint(right, 0), QPoint(right, size)]))
    painter.end()


def _join(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def _patient_text(name: str, patient_id: str, issuer: str = "") -> str:
    shown = format_person_name(name) or "(no name)"
    if issuer and patient_id:
        patient_id = f"{patient_id}, issuer {printable(issuer)}"
    return f"{shown}  [{patient_id}]" if patient_id else shown


def _patient_label(patient) -> str:
    """Name and ID (``(no patient ID)`` for each person without one) with its Issuer of Patient ID when there is
    one (two hospitals' patients 12345 are two people, kept apart: the label must tell them apart too); a PNG/JPEG
    by its file name."""
    first = next((_first_instance(study) for study in patient.studies), None)
    if first is not None and first.file_format != "dicom" and not patient.name:
        return f"{escape_undecodable(first.path.name)}  [{patient.patient_id}]"
    text = _patient_text(patient.name, patient.patient_id, patient.issuer)
    return f"{text}  · born {format_date(patient.birth_date)}" if patient.birth_date else text


def _label_same_day_studies(patient: QTreeWidgetItem) -> None:
    """Label ``patient``'s dated studies "date · description", with the study time after the date where the date
    alone does not tell them apart (a morning and an afternoon film of one day)."""
    studies = [patient.child(i) for i in range(patient.childCount())]
    studies = [s for s in studies if s.data(0, KIND_ROLE) == "study" and s.data(0, DATE_ROLE)]
    days = Counter(str(s.data(0, DATE_ROLE)) for s in studies)
    for study in studies:
        date, time = str(study.data(0, DATE_ROLE)), str(study.data(0, TIME_ROLE) or "")
        when = f"{format_date(date)} {format_time(time)}" if days[date] > 1 and time else format_date(date)
        study.setText(0, _join(when, str(study.data(0, DESCRIPTION_ROLE) or "")) or "Study")


def _first_instance(study) -> Instance | None:
    return next((inst for series in study.series for inst in series.instances), None)


def _study_label(study, first: Instance | None) -> str:
    if first is not None and first.file_format != "dicom":
        return f"{first.file_format.upper()} image (no study details)"
    return _join(format_date(study.date), study.description) or "Study"
