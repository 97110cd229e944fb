"""The right-hand panel: probabilities per class, top class, model, notice, warnings, heat-map controls.

It mirrors a ``ResultModel`` and the heat-map fields of a ``ViewerModel`` and writes the
reader's choices back through their setters.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cxr_engine.display_text import format_percent, sentence_case
from cxr_engine.models.image_checks import banner, banner_is_firm, beside_banner, heatmap_note
from cxr_engine.models.model_card import CLASS_DISPLAY_NAMES, INTENDED_USE, below_bar_text
from cxr_engine.models.model_limits import metric_lines, model_limits
from cxr_engine.models.suitability import age_group_of, patient_age_years
from cxr_engine.pixels.overlay import OUTLINE_LEVEL

from .color_bar import ColorBar
from .formatting import loading_text
from .limits_panel import LimitsPanel
from .result_model import CLASSIFYING, DONE, NO_MODEL, ResultModel
from .text_label import text_label
from .viewer_model import HEATMAP_COLOUR, HEATMAP_OUTLINE, ViewerModel

NOTICE_STYLE = "background:#5a4300; color:#ffe9a8; border:1px solid #a07800; border-radius:3px; padding:4px;"
TOP_STYLE = "font-size:15pt; font-weight:bold;"
#: The top class of a film outside what the model was trained for (the red banner): shown, but not as a call.
OUT_OF_SCOPE_TOP_STYLE = "font-size:10pt; color:palette(mid);"
#: Its words before the class: the same large type as a normal result was read as a confident call.
OUT_OF_SCOPE_TOP = "Not reliable:"
SCOPE_STYLE = "background:#6b1d1d; color:#ffd7d7; border:1px solid #c0392b; border-radius:3px; padding:4px;"
#: The banner of a film that may well be in scope (the model unsure; a child's chest without an age): not red.
MAYBE_SCOPE_STYLE = "background:#3b4250; color:#e8ecf2; border:1px solid #8a96ab; border-radius:3px; padding:4px;"
#: The model's note on the film (``ensemble.disagreement_note``: the averaged networks disagree), under the
#: probabilities it speaks of: the close call's calm grey-blue, not the orange of the header's notes.
MODEL_NOTE_STYLE = "background:#2c323c; color:#dfe5ee; border:1px solid #6c7789; border-radius:3px; padding:4px;"
TOP_BAR_STYLE = "QProgressBar::chunk{background:#d9822b;}"
MUTED_BAR_STYLE = "QProgressBar::chunk{background:palette(mid);}"
#: The space (px) between the heat-map's colour bar, with its labels, and the caption under it.
CAPTION_SPACING = 10


def display_name(cls: str) -> str:
    return CLASS_DISPLAY_NAMES.get(cls, cls)


class ResultPanel(QWidget):
    """Classification result and Grad-CAM controls for the image in the viewer.

    ``correctRequested`` fires when the reader asks to see a film the image checks found turned or
    inverted as it should be, and have it classified again."""

    correctRequested = Signal()

    def __init__(self, result: ResultModel, viewer: ViewerModel, heatmap_action: QAction, parent=None):
        super().__init__(parent)
        self.result, self.viewer = result, viewer
        self.setMinimumWidth(260)
        layout = QVBoxLayout(self)

        classification = QGroupBox("AI classification")
        box = QVBoxLayout(classification)
        self.scope_banner = text_label(style=SCOPE_STYLE)  # above the top class and the probabilities it speaks of
        self.scope_banner.setObjectName("scopeBanner")
        self.scope_banner.setVisible(False)
        box.addWidget(self.scope_banner)
        self.top_label = text_label(style=TOP_STYLE)
        self.status_label = text_label()
        box.addWidget(self.top_label)
        box.addWidget(self.status_label)
        self.correct_button = QPushButton("View corrected and reclassify")
        self.correct_button.setToolTip("Show the film turned and/or inverted as the image checks say it should be, "
                                       "and classify it again (the file is not changed)")
        self.correct_button.clicked.connect(self.correctRequested)
        self.correct_button.setVisible(False)
        box.addWidget(self.correct_button)
        self.bars_box = QGridLayout()
        self.bars_box.setColumnStretch(1, 1)
        box.addLayout(self.bars_box)
        self.bars: dict[str, ProbabilityRow] = {}
        self.model_note = text_label(style=MODEL_NOTE_STYLE)  # right under the top class and its probabilities
        self.model_note.setObjectName("modelNote")
        self.model_note.setTextFormat(Qt.TextFormat.PlainText)
        self.model_note.setVisible(False)
        box.addWidget(self.model_note)
        self.model_label = text_label(selectable=True)
        box.addWidget(self.model_label)
        self.warnings_label = text_label(style="color:#ffb347;")
        self.warnings_label.setTextFormat(Qt.TextFormat.PlainText)  # file names and "<" in model checks
        box.addWidget(self.warnings_label)
        self.notice = text_label(INTENDED_USE, style=NOTICE_STYLE)  # the card's own intended use once a model is chosen
        box.addWidget(self.notice)
        layout.addWidget(classification)
        self.limits = LimitsPanel(result)
        layout.addWidget(self.limits)

        heatmap_box = QGroupBox("Grad-CAM heat-map")
        form = QFormLayout(heatmap_box)
        self.heatmap_button = QToolButton()
        self.heatmap_button.setDefaultAction(heatmap_action)
        self.heatmap_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        form.addRow(self.heatmap_button)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Heat-map opacity")
        self.opacity.valueChanged.connect(lambda v: viewer.set_heatmap_opacity(v / 100.0))
        form.addRow("Opacity", self.opacity)
        self.heatmap_class = QComboBox()
        self.heatmap_class.setToolTip("The class whose evidence the heat-map shows")
        self.heatmap_class.activated.connect(lambda i: result.set_heatmap_class(self.heatmap_class.itemData(i) or ""))
        form.addRow("Class", self.heatmap_class)
        self.heatmap_style = QComboBox()
        self.heatmap_style.addItem("Colour", HEATMAP_COLOUR)
        self.heatmap_style.addItem(f"Outline (≥ {OUTLINE_LEVEL:g})", HEATMAP_OUTLINE)
        self.heatmap_style.setToolTip("Colour wash, or one contour where Grad-CAM × class probability reaches "
                                  f"{OUTLINE_LEVEL:g}")
        self.heatmap_style.activated.connect(lambda i: viewer.set_heatmap_style(self.heatmap_style.itemData(i)))
        form.addRow("Style", self.heatmap_style)
        self.legend = ColorBar()
        self.heatmap_caption = text_label(style="color:palette(mid);")
        legend_block = QVBoxLayout()  # the caption stands clear of the colour bar's labels
        legend_block.setSpacing(CAPTION_SPACING)
        legend_block.addWidget(self.legend)
        legend_block.addWidget(self.heatmap_caption)
        form.addRow(legend_block)
        layout.addWidget(heatmap_box)
        layout.addStretch(1)

        result.changed.connect(self._sync_result)
        result.heatmapClassChanged.connect(lambda _: self._sync_heatmap_class())
        viewer.heatmapOpacityChanged.connect(lambda _: self._sync_opacity())
        viewer.heatmapChanged.connect(self._sync_heatmap_caption)
        viewer.heatmapStyleChanged.connect(lambda _: (self._sync_heatmap_style(), self._sync_heatmap_caption()))
        self._sync_result()
        self._sync_opacity()
        self._sync_heatmap_caption()
        self._sync_heatmap_style()

    # ------------------------------------------------------------------ mirroring
    def _sync_result(self) -> None:
        r = self.result
        self._rebuild_bars(r.classes)
        prediction = r.prediction if r.state == DONE else None
        scope = r.out_of_scope
        firm = banner_is_firm(scope)  # outside what the model was trained for: its top class is no call
        if prediction is not None:
            top = f"{prediction.display_label}  {format_percent(prediction.probabilities[prediction.index])}"
            self.top_label.setText(f"{OUT_OF_SCOPE_TOP} {top}" if firm else top)
        else:
            self.top_label.setText("No model available" if r.state == NO_MODEL else "—")
        self.top_label.setStyleSheet(OUT_OF_SCOPE_TOP_STYLE if prediction is not None and firm else TOP_STYLE)
        for cls, row in self.bars.items():
            p = prediction.probability(cls) if prediction is not None and cls in prediction.classes else None
            row.show_probability(p, prediction is not None and cls == prediction.label, muted=firm)
        status = loading_text(r.path) if r.decoding and r.path is not None else r.message
        self.status_label.setText(status)
        self.status_label.setVisible(bool(status))
        self.scope_banner.setText(self._banner_text(scope, prediction))
        self.scope_banner.setStyleSheet(SCOPE_STYLE if firm else MAYBE_SCOPE_STYLE)
        self.scope_banner.setVisible(bool(scope))
        self.correct_button.setVisible(r.image_check is not None and r.image_check.correctable)
        note = r.model_note  # the CSV's, the PDF's and the JSON's warnings keep it (ResultModel.film_warnings)
        self.model_note.setText(sentence_case(note))
        self.model_note.setVisible(bool(note))
        if r.model_name:
            device = f" on {r.device}" if r.device else ""
            figures = self._test_figures(prediction)
            # the figures say the test accuracy (with its n): the summary's "test accuracy 0.946" would say it twice
            summary = r.card.summary(score=False) if figures and r.card is not None else r.model_summary
            self.model_label.setText("\n".join([f"Model: {summary}{device}", *figures]))
        else:
            self.model_label.setText("Images can be viewed without a model; choose one in Settings when available.")
        # The banner names its reasons: a header warning saying one again (the age, a lateral view) is left out.
        warnings = list(beside_banner(r.warnings, r.out_of_scope)) + ([r.model_warning] if r.model_warning else [])
        if r.below_bar:
            why = below_bar_text(r.card, "This model") if r.card is not None else "This model is below the project's bar."
            warnings.insert(0, f"{why} For testing only.")
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings_label.setVisible(bool(warnings))
        self.notice.setText(model_limits(r.card).intended_use if r.card is not None else INTENDED_USE)
        self._sync_heatmap_class()
        self._sync_heatmap_caption()
        self.heatmap_class.setEnabled(r.has_model and r.state in (DONE, CLASSIFYING))

    def _banner_text(self, scope: str, prediction) -> str:
        """``image_checks.banner`` of the film's out-of-scope reasons; a close call with its figures."""
        if not scope:
            return ""
        top = prediction.probabilities[prediction.index] if prediction is not None else None
        return banner(scope, top, self.result.scope_limit)

    def _test_figures(self, prediction) -> list[str]:
        """The card's test figures for the film's patient, the PDF's lines (``model_limits.metric_lines``): the age
        group's own when the header gives an age, else the adults' and the children's sensitivities apart (the pooled
        ones are mostly children's, and nearly all from one source: said beside them); for an adult, how often a call
        of the film's top class was right (none without a call; withheld, saying why, for a film outside the model's
        scope, as its calibration line is)."""
        card = self.result.card
        if card is None:
            return []
        return metric_lines(card.test_metrics or {}, age_group_of(self.result.header),
                            called=prediction.label if prediction is not None else "", card=card,
                            age_years=patient_age_years(self.result.header), out_of_scope=self.result.out_of_scope)

    def _rebuild_bars(self, classes: tuple[str, ...]) -> None:
        if tuple(self.bars) == tuple(classes):
            return
        for row in self.bars.values():
            row.remove()
        self.bars = {cls: ProbabilityRow(self.bars_box, i, display_name(cls)) for i, cls in enumerate(classes)}

    def _sync_heatmap_class(self) -> None:
        r = self.result
        predicted = r.prediction.display_label if r.prediction is not None else "…"
        entries = [(f"Predicted class ({predicted})", "")] + [(display_name(c), c) for c in r.classes]
        if [self.heatmap_class.itemData(i) for i in range(self.heatmap_class.count())] != [e[1] for e in entries]:
            self.heatmap_class.clear()
            for text, data in entries:
                self.heatmap_class.addItem(text, data)
        else:
            self.heatmap_class.setItemText(0, entries[0][0])
        index = self.heatmap_class.findData(r.heatmap_class)
        self.heatmap_class.setCurrentIndex(max(index, 0))

    def _sync_opacity(self) -> None:
        value = round(self.viewer.heatmap_opacity * 100)
        if self.opacity.value() != value:
            self.opacity.setValue(value)

    def _sync_heatmap_caption(self) -> None:
        if self.viewer.heatmap is None:
            self.heatmap_caption.setText("No heat-map for this image yet." if self.result.has_model else "")
            return
        v = self.viewer
        # Grad-CAM shows where the class's score rose, not a finding (and for Normal, nothing clinical at all).
        shown = (f"Where the {display_name(v.heatmap_class)} score rose "
                 f"(probability {format_percent(v.heatmap_probability)})")
        if v.heatmap_style == HEATMAP_OUTLINE:
            note = (f"{shown}: outlined where Grad-CAM × probability ≥ {OUTLINE_LEVEL:g}"
                    + ("" if v.heatmap_probability >= OUTLINE_LEVEL else " (never, at this probability)") + ".")
        else:
            note = (f"{shown}: colour = Grad-CAM × probability; its strength compares between images, its shape "
                    "is relative to this image.")
        scope = self.result.out_of_scope
        self.heatmap_caption.setText(f"{note}\n⚠ {heatmap_note(scope)}" if scope else note)

    def _sync_heatmap_style(self) -> None:
        index = self.heatmap_style.findData(self.viewer.heatmap_style)
        if index >= 0 and index != self.heatmap_style.currentIndex():
            self.heatmap_style.setCurrentIndex(index)


class ProbabilityRow:
    """One class: its name, a bar and the percentage, in a row of a grid; the top class in bold."""

    def __init__(self, grid: QGridLayout, row: int, name: str):
        self.name = QLabel(name)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(12)
        self.value = QLabel("–")
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value.setMinimumWidth(52)
        for column, widget in enumerate((self.name, self.bar, self.value)):
            grid.addWidget(widget, row, column)

    def show_probability(self, p: float | None, top: bool, muted: bool = False) -> None:
        """``p`` in [0, 1], or None while there is no result; ``muted`` (a film outside the model's scope): the top
        class neither bold nor in colour, every row greyed."""
        self.bar.setValue(0 if p is None else round(1000 * p))
        self.value.setText("–" if p is None else format_percent(p))
        style = "color:palette(mid);" if muted else "font-weight:bold;" if top else ""
        for label in (self.name, self.value):
            label.setStyleSheet(style)
        self.bar.setStyleSheet(MUTED_BAR_STYLE if muted else TOP_BAR_STYLE if top else "")

    def remove(self) -> None:
        for widget in (self.name, self.bar, self.value):
            widget.setParent(None)
            widget.deleteLater()
