"""The result dock's "Lung fields" box: the outline's status or the plausibility warning, and the
cardiothoracic ratio live (PA / AP, the lengths, the AP caveat, proposed or adjusted)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout

from cxr_engine.models.cardiothoracic import projection, projection_note, projection_text, unusual_proposal_note

from .lung_controller import LungFieldsController
from .text_label import text_label

WARNING_STYLE = "color:#ffb347;"
RATIO_STYLE = "font-size:15pt; font-weight:bold;"


class LungPanel(QGroupBox):
    """Mirrors a ``LungFieldsController``."""

    def __init__(self, lungs: LungFieldsController, outline_action: QAction, ctr_action: QAction, parent=None):
        super().__init__("Lung fields and cardiothoracic ratio", parent)
        self.lungs = lungs
        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        for action in (outline_action, ctr_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.status_label = text_label()
        layout.addWidget(self.status_label)
        self.ratio_label = QLabel()
        self.ratio_label.setStyleSheet(RATIO_STYLE)
        layout.addWidget(self.ratio_label)
        self.detail_label = text_label(selectable=True)
        layout.addWidget(self.detail_label)
        self.note_label = text_label()
        layout.addWidget(self.note_label)
        self.reset_button = QPushButton("Reset lines to the proposal")
        self.reset_button.clicked.connect(lungs.reset_ctr)
        layout.addWidget(self.reset_button)
        lungs.changed.connect(self.sync)
        self.sync()

    def sync(self) -> None:
        lungs = self.lungs
        result = lungs.current_result
        fields = result.fields if result is not None else None
        warning = fields is not None and not fields.found and lungs.status == fields.warning
        self.status_label.setText(f"⚠ {lungs.status}" if warning or lungs.status.startswith("Lung fields could")
                                  else lungs.status)
        self.status_label.setStyleSheet(WARNING_STYLE if warning or lungs.refusal else "")
        self.status_label.setVisible(bool(lungs.status))
        state = lungs.current_ctr
        for widget in (self.ratio_label, self.detail_label, self.note_label, self.reset_button):
            widget.setVisible(lungs.ctr_visible and (state is not None or widget is self.note_label))
        if not lungs.ctr_visible:
            return
        if state is None:
            self.note_label.setText(f"⚠ {lungs.ctr_reason}")
            self.note_label.setStyleSheet(WARNING_STYLE)
            self.note_label.setVisible(bool(lungs.ctr_reason) and lungs.ctr_reason != lungs.status)
            return
        ctr, view = state.current, state.view_position
        self.ratio_label.setText(f"CTR {ctr.ratio:.2f}  ({projection_text(view)})")
        origin = "adjusted by the reader" if state.adjusted else "as proposed by the lung-field model"
        self.detail_label.setText(f"{ctr.lengths_text()}; {origin}. Drag a line's ends onto the heart borders "
                                  "and the inner rib margins.")
        unusual = unusual_proposal_note(ctr, state.adjusted)  # an unadjusted proposal outside the range it gave on normal films
        warning = f"⚠ {unusual[0].upper()}{unusual[1:]}\n" if unusual else ""
        self.note_label.setText(warning + projection_note(view))
        self.note_label.setStyleSheet(WARNING_STYLE if unusual or projection(view) == "AP" else "")
        self.reset_button.setEnabled(state.adjusted)
