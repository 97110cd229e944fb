"""The model's limits under the AI result: what the shown probability meant in validation and the
known weak spots, from the model card (``cxr_engine.models.model_limits``), the same lines the PDF prints
(the card's intended use is the result panel's notice, as it is the PDF's)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QVBoxLayout

from cxr_engine.models.model_limits import model_limits
from cxr_engine.models.suitability import age_group_of

from .result_model import DONE, ResultModel
from .text_label import text_label


class LimitsPanel(QGroupBox):
    """Mirrors a ``ResultModel``: its card and, once classified, its prediction."""

    def __init__(self, result: ResultModel, parent=None):
        super().__init__("Model limits (from the model card)", parent)
        self.result = result
        layout = QVBoxLayout(self)
        self.text_label = text_label(style="font-size:9pt;", selectable=True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.text_label)
        result.changed.connect(self.sync)
        self.sync()

    def text(self) -> str:
        """What the panel says now ('' without a model card)."""
        card = self.result.card
        if card is None:
            return ""
        prediction = self.result.prediction if self.result.state == DONE else None
        return model_limits(card, prediction, age_group_of(self.result.header),
                            self.result.out_of_scope if prediction is not None else "").text()

    def sync(self) -> None:
        text = self.text()
        self.text_label.setText(text)
        self.setVisible(bool(text))
