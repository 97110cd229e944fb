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


class Preference:
    """One stored preference of :class:`AppSettings`, under ``key``: read as ``kind`` (``default`` when the
    key is absent, unreadable, or, with ``choices``, not one of them); ``clamp`` (low, high) bounds a number
    read back. Setting a value outside ``choices`` raises ``ValueError``; ``None`` is stored as ``""``.
    ``former_keys`` are the names earlier versions stored it under: read (first found) while ``key`` is
    absent, so a renamed preference keeps the reader's value; never written nor removed."""

    def __init__(self, key: str, default, kind=str, *, choices: tuple | None = None,
                 clamp: tuple[float, float] | None = None, former_keys: tuple[str, ...] = (), doc: str = ""):
        self.key, self.default, self.kind, self.choices, self.clamp = key, default, kind, choices, clamp
        self.former_keys = former_keys
        self.__doc__ = doc

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, settings: "AppSettings | None", owner=None):
        if settings is None:
            return self
        key = next((k for k in (self.key, *self.former_keys) if settings.store.contains(k)), self.key)
        try:
            value = self.kind(settings.store.value(key, self.default))
        except (TypeError, ValueError):
            return self.default
        if self.choices is not None and value not in self.choices:
            return self.default
        if self.clamp is not None:
            value = min(max(value, self.clamp[0]), self.clamp[1])
        return value

    def __set__(self, settings: "AppSettings", value) -> None:
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")
        settings.store.setValue(self.key, self.kind("" if value is None else value))


class AppSettings:
    """The app's preferences; every getter has a safe default for a first start."""

    last_folder = Preference("files/last_folder", "")
    last_export_folder = Preference("files/last_export_folder", "")
    reader_name = Preference("report/reader_name", "",
                             doc="The reading physician's name printed on reports (never on de-identified ones).")
    heatmap_opacity = Preference("view/heatmap_opacity", 0.4, float, clamp=(0.0, 1.0),
                                 former_keys=("view/cam_opacity",), doc="Heat-map layer opacity in [0, 1].")
    model = Preference("model/name", "", doc="A bundled model's name or a card path; ``\"\"`` means the best "
                       "bundled model that meets the bar.")
    device = Preference("model/device", "auto", choices=DEVICES)
    backend = Preference("model/backend", "auto", choices=BACKENDS,
                         doc="Inference backend: ``auto`` (ONNX Runtime on a CPU-only machine when the model has "
                             "an ONNX export, else torch), ``torch`` or ``onnx``; see ``cxr_engine.models.backends``.")

    def __init__(self, store: QSettings | None = None):
        self.store = store or open_settings()

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
