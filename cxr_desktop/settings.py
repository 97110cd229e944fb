"""Persistent preferences through QSettings, with typed accessors.

They live under the organisation "CXR Reader" in the platform's usual place. Setting
``CXR_DESKTOP_SETTINGS`` to a file path keeps them in that INI file instead (tests use it
so that they never touch the user's preferences). The file names the folders the reader opened (which can
name patients): it is this user's only (``keep_private``), as the kept annotations are.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QSettings

from cxr_engine.models.backends import BACKENDS

from .presets import PercentileBand

ORGANISATION = "CXR Reader"
APPLICATION = "CXR Reader"
SETTINGS_ENV = "CXR_DESKTOP_SETTINGS"
MAX_RECENT = 8
DEVICES = ("auto", "cpu", "cuda")
#: The settings file's mode, and its folder's when the folder is the app's own (as the annotations').
PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700

logger = logging.getLogger(__name__)


def open_settings() -> QSettings:
    """The settings store: ``$CXR_DESKTOP_SETTINGS`` as INI when set, else the platform's."""
    override = os.environ.get(SETTINGS_ENV)
    if override:
        return QSettings(override, QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def keep_private(store: QSettings) -> None:
    """Make ``store``'s file this user's only: mode ``PRIVATE_FILE``, in a folder of mode ``PRIVATE_FOLDER`` when
    the folder is the app's own (``~/.config/CXR Reader/``) or did not exist. The file is created so before
    QSettings first writes it: QSettings rewrites it through a temporary file renamed over it, which keeps an
    existing file's mode, and would create a new one (and its folder) readable by all. A folder named with
    ``CXR_DESKTOP_SETTINGS`` that exists is left as it is. Nothing on Windows (the registry, or ACLs rather than
    modes); a failure is logged, never raised (the reader's work goes on)."""
    kind = store.format()
    if os.name == "nt" or kind not in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        return
    path = Path(store.fileName())
    if not path.is_absolute():
        return
    # NativeFormat is an INI file on Linux and the BSDs, a property list in ~/Library/Preferences on macOS
    ini = kind == QSettings.Format.IniFormat or sys.platform != "darwin"
    own_folder = kind == QSettings.Format.NativeFormat and path.parent.name == ORGANISATION
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        elif own_folder and path.parent.stat().st_mode & 0o777 != PRIVATE_FOLDER:
            os.chmod(path.parent, PRIVATE_FOLDER)
        if ini and not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
        if path.exists() and path.stat().st_mode & 0o777 != PRIVATE_FILE:
            os.chmod(path, PRIVATE_FILE)
    except OSError as exc:
        logger.warning("the settings file %s could not be made this user's only: %s", path, exc.strerror or exc)


def absolute_path(value) -> str:
    """``value`` as a stored folder or file path: itself when absolute, else ``""``. Earlier versions stored a
    path as typed (``cxr-desktop .``): relative to a working directory long gone, it would open another folder."""
    text = str(value or "")
    return text if text and Path(text).is_absolute() else ""


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

    last_folder = Preference("files/last_folder", "", absolute_path,
                             doc="The folder of the last path opened, absolute (a relative one reads as ``\"\"``).")
    last_export_folder = Preference("files/last_export_folder", "", absolute_path)
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
        keep_private(self.store)

    @property
    def recent_folders(self) -> list[str]:
        """The paths opened last, most recent first, each absolute (``absolute_path``: a relative entry an earlier
        version stored is left out)."""
        value = self.store.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [path for path in (absolute_path(v) for v in (value or [])) if path]

    def add_recent(self, path: str | Path) -> None:
        """Put ``path``, made absolute (``os.path.abspath``: no file-system access, so a mapped drive stays as the
        reader knows it and a slow share cannot block), first in the recent list (no duplicates, at most
        ``MAX_RECENT``), and its folder (itself when a folder) in ``last_folder``."""
        resolved = Path(os.path.abspath(path))
        path = str(resolved)
        recent = [path] + [p for p in self.recent_folders if p != path]
        self.store.setValue("files/recent", recent[:MAX_RECENT])
        self.last_folder = path if resolved.is_dir() else str(resolved.parent)

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
        """Write the settings now, the file kept this user's only (``keep_private``)."""
        self.store.sync()
        keep_private(self.store)
