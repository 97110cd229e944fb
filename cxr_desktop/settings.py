"""Persistent preferences through QSettings, with typed accessors.

They live under the organisation "CXR Reader" in the platform's usual place. Setting
``CXR_DESKTOP_SETTINGS`` to a file path keeps them in that INI file instead (tests use it
so that they never touch the user's preferences).
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

from cxr_engine.models.backends import BACKENDS

from .presets import PercentileBand

ORGANISATION = "CXR Reader"
APPLICATION = "CXR Reader"
SETTINGS_ENV = "CXR_DESKTOP_SETTINGS"
MAX_RECENT = 8
DEVICES = ("auto", "cpu", "cuda")


def open_settings() -> QSettings:
    """The settings store: ``$CXR_DESKTOP_SETTINGS`` as INI when set, else the platform's."""
    override = os.environ.get(SETTINGS_ENV)
    if override:
        return QSettings(override, QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


class AppSettings:
    """The app's preferences; every getter has a safe default for a first start."""

    def __init__(self, store: QSettings | None = None):
        self.store = store or open_settings()

    def _get(self, key: str, default, kind):
        value = self.store.value(key, default)
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default

    @property
    def last_folder(self) -> str:
        return self._get("files/last_folder", "", str)

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self.store.setValue("files/last_folder", str(value))

    @property
    def recent_folders(self) -> list[str]:
        value = self.store.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, path: str | Path) -> None:
        """Put ``path`` first in the recent list (no duplicates, at most ``MAX_RECENT``)."""
        path = str(path)
        recent = [path] + [p for p in self.recent_folders if p != path]
        self.store.setValue("files/recent", recent[:MAX_RECENT])
        self.last_folder = path if Path(path).is_dir() else str(Path(path).parent)

    @property
    def last_export_folder(self) -> str:
        return self._get("files/last_export_folder", "", str)

    @last_export_folder.setter
    def last_export_folder(self, value: str) -> None:
        self.store.setValue("files/last_export_folder", str(value))

    @property
    def reader_name(self) -> str:
        """The reading physician's name printed on reports (never on de-identified ones)."""
        return self._get("report/reader_name", "", str)

    @reader_name.setter
    def reader_name(self, value: str) -> None:
        self.store.setValue("report/reader_name", value)

    @property
    def cam_opacity(self) -> float:
        """Heat-map layer opacity in [0, 1]."""
        return min(max(self._get("view/cam_opacity", 0.4, float), 0.0), 1.0)

    @cam_opacity.setter
    def cam_opacity(self, value: float) -> None:
        self.store.setValue("view/cam_opacity", float(value))

    @property
    def model(self) -> str:
        """A bundled model's name or a card path; ``""`` means the best bundled model that meets the bar."""
        return self._get("model/name", "", str)

    @model.setter
    def model(self, value: str) -> None:
        self.store.setValue("model/name", value or "")

    @property
    def device(self) -> str:
        value = self._get("model/device", "auto", str)
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        if value not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {value!r}")
        self.store.setValue("model/device", value)

    @property
    def backend(self) -> str:
        """Inference backend: ``auto`` (ONNX Runtime on a CPU-only machine when the model has an ONNX
        export, else torch), ``torch`` or ``onnx``; see ``cxr_engine.models.backends``."""
        value = self._get("model/backend", "auto", str)
        return value if value in BACKENDS else "auto"

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {value!r}")
        self.store.setValue("model/backend", value)

    @property
    def window_presets(self) -> tuple[PercentileBand, ...]:
        """The reader's saved window presets (percentile bands, see ``presets``)."""
        size = self.store.beginReadArray("view/window_presets")
        bands = []
        try:
            for i in range(size):
                self.store.setArrayIndex(i)
                try:
                    bands.append(PercentileBand(str(self.store.value("name")), float(self.store.value("low")),
                                              float(self.store.value("high"))))
                except (TypeError, ValueError):
                    continue
        finally:
            self.store.endArray()
        return tuple(bands)

    def save_window_preset(self, band: PercentileBand) -> None:
        """Add ``band`` (replacing a saved preset of the same name)."""
        bands = [b for b in self.window_presets if b.name != band.name] + [band]
        self.store.beginWriteArray("view/window_presets", len(bands))
        for i, b in enumerate(bands):
            self.store.setArrayIndex(i)
            self.store.setValue("name", b.name)
            self.store.setValue("low", b.low)
            self.store.setValue("high", b.high)
        self.store.endArray()

    def sync(self) -> None:
        self.store.sync()
