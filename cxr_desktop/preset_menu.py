"""The Window presets menu: rebuilt for each image from the presets that apply to it, plus saving the
current window as a preset (``presets``)."""
from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog

from .presets import Auto, carries_over, percentile_band, presets_for


class PresetMenu(QObject):
    """Fills ``menu`` whenever ``viewer``'s image changes; presets are stored in ``settings``."""

    def __init__(self, menu, viewer, settings, parent=None):
        super().__init__(parent)
        self.menu, self.viewer, self.settings = menu, viewer, settings
        #: The preset the reader chose last when it carries over to the next film (``presets.carries_over``).
        self.carried = None
        viewer.imageChanged.connect(self.rebuild)
        viewer.imageChanged.connect(self._carry_over)

    def _carry_over(self) -> None:
        if self.carried is not None and self.viewer.image is not None:
            self.viewer.set_voi(self.carried.voi_for(self.viewer.image), self.carried.name)

    def rebuild(self) -> None:
        self.menu.clear()
        image = self.viewer.image
        if image is None:
            return
        for preset in presets_for(image, self.settings.window_presets):
            action = self.menu.addAction(preset.name)
            action.triggered.connect(lambda _=False, p=preset: self.apply(p))
        self.menu.addSeparator()
        self.menu.addAction("Save current window as preset…", self.save_current)

    def apply(self, preset) -> None:
        if self.viewer.image is not None:
            self.carried = preset if carries_over(preset) else None
            self.viewer.set_voi(preset.voi_for(self.viewer.image), preset.name)

    def apply_auto(self) -> None:
        self.apply(Auto())

    def save_current(self) -> None:
        """Ask for a name and store the current window as a percentile band of this image's values."""
        image, voi = self.viewer.image, self.viewer.voi
        if image is None or voi is None or not hasattr(voi, "center"):
            return
        name, ok = QInputDialog.getText(self.menu.parentWidget(), "Save window preset", "Preset name:")
        if ok and name.strip():
            self.settings.save_window_preset(percentile_band(image, voi, name.strip()))
            self.rebuild()
