"""Settings: which bundled model to use (below-bar models marked), on which device and with which
inference backend."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLabel, QPushButton

from cxr_engine.libraries import library_installed
from cxr_engine.models.model_card import ModelCard, below_bar_text, best_card

from .settings import BACKENDS, DEVICES

DEFAULT_MODEL_TEXT = "Best bundled model that meets the project's bar"
BACKEND_TEXT = {
    "auto": "Automatic (ONNX Runtime on the CPU when the model has an export, PyTorch on a GPU)",
    "torch": "PyTorch",
    "onnx": "ONNX Runtime",
}
#: The library each explicit backend needs; the lite bundle ships without torch.
BACKEND_LIBRARY = {"torch": "torch", "onnx": "onnxruntime"}


class SettingsDialog(QDialog):
    """Edits the model, device and backend; ``model()``, ``device()`` and ``backend()`` give the choice."""

    def __init__(self, cards: list[ModelCard], model: str, device: str, parent=None, *, backend: str = "auto"):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        form = QFormLayout(self)
        self.model_box = QComboBox()
        best = best_card(cards)
        self.model_box.addItem(f"{DEFAULT_MODEL_TEXT} (now {best.name})" if best else
                               f"{DEFAULT_MODEL_TEXT} (none bundled: choose one)", "")
        for card in cards:
            mark = "" if card.meets_bar else "  — for testing only"  # summary() says it is below the bar
            self.model_box.addItem(f"{card.summary()}{mark}", card.name)
            if not card.meets_bar:
                self.model_box.setItemData(self.model_box.count() - 1, below_bar_text(card, card.name),
                                           Qt.ItemDataRole.ToolTipRole)
        if model and self.model_box.findData(model) < 0:
            self.model_box.addItem(model, model)
        self.model_box.setCurrentIndex(max(self.model_box.findData(model), 0))
        browse = QPushButton("Model card file…")
        browse.clicked.connect(self._browse)
        form.addRow("Model", self.model_box)
        form.addRow("", browse)
        note = QLabel("Models below the project's quality bar are never chosen automatically.")
        note.setWordWrap(True)
        form.addRow(note)
        self.device_box = QComboBox()
        for value in DEVICES:
            self.device_box.addItem({"auto": "Automatic (GPU when present)", "cpu": "CPU", "cuda": "CUDA GPU"}[value], value)
        self.device_box.setCurrentIndex(max(self.device_box.findData(device), 0))
        form.addRow("Device", self.device_box)
        self.backend_box = QComboBox()
        for value in BACKENDS:
            library = BACKEND_LIBRARY.get(value)
            missing = library is not None and not library_installed(library)
            self.backend_box.addItem(BACKEND_TEXT[value] + ("  — not installed here" if missing else ""), value)
        self.backend_box.setCurrentIndex(max(self.backend_box.findData(backend), 0))
        form.addRow("Backend", self.backend_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model card", "", "Model cards (*.json)")
        if path:
            self.model_box.addItem(path, path)
            self.model_box.setCurrentIndex(self.model_box.count() - 1)

    def model(self) -> str:
        return self.model_box.currentData() or ""

    def device(self) -> str:
        return self.device_box.currentData()

    def backend(self) -> str:
        return self.backend_box.currentData()


def run_settings_dialog(window, models_dir=None) -> None:
    """Show the Settings dialog for ``window``'s settings; on OK, ``window.apply_settings`` its choice."""
    from cxr_engine.models.model_card import list_bundled

    settings = window.settings
    dialog = SettingsDialog(list_bundled(models_dir), settings.model, settings.device, window, backend=settings.backend)
    if dialog.exec():
        window.apply_settings(dialog.model(), dialog.device(), dialog.backend())
