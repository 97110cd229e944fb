"""The DICOM nodes the reader configured (Settings → DICOM nodes), this app's AE title, the network
timeout and the folder retrieved studies go to. With no node configured the app never touches the
network (the offline default)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from cxr_engine.network.dicom_network import (
    DEFAULT_CALLING_AE,
    DEFAULT_TIMEOUT_S,
    DicomNode,
    NetworkSettings,
    checked_ae_title,
)

_NODES = "dicom/nodes"


def default_cache_folder() -> Path:
    """Where retrieved studies go unless the reader chose a folder: the platform's cache, ``pacs``."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    return Path(base or Path.home() / ".cache" / "cxr-reader") / "pacs"


class DicomSettings:
    """Typed access to the DICOM part of the app's ``QSettings``."""

    def __init__(self, store: QSettings):
        self.store = store

    def nodes(self) -> list[DicomNode]:
        """The configured nodes; an entry that no longer validates is skipped."""
        size = self.store.beginReadArray(_NODES)
        nodes = []
        try:
            for i in range(size):
                self.store.setArrayIndex(i)
                try:
                    nodes.append(DicomNode(
                        ae_title=str(self.store.value("ae_title", "")), host=str(self.store.value("host", "")),
                        port=int(self.store.value("port", 104)), tls=str(self.store.value("tls", "false")).lower() == "true",
                        ca_file=str(self.store.value("ca_file", "") or ""), name=str(self.store.value("name", "") or "")))
                except (TypeError, ValueError):
                    continue
        finally:
            self.store.endArray()
        return nodes

    def set_nodes(self, nodes: list[DicomNode]) -> None:
        self.store.remove(_NODES)
        self.store.beginWriteArray(_NODES, len(nodes))
        for i, node in enumerate(nodes):
            self.store.setArrayIndex(i)
            for key in ("name", "ae_title", "host", "port", "ca_file"):
                self.store.setValue(key, getattr(node, key))
            self.store.setValue("tls", "true" if node.tls else "false")
        self.store.endArray()

    @property
    def calling_ae(self) -> str:
        return str(self.store.value("dicom/calling_ae", DEFAULT_CALLING_AE) or DEFAULT_CALLING_AE)

    @calling_ae.setter
    def calling_ae(self, value: str) -> None:
        # ValueError for an invalid AE title; stored without leading and trailing spaces (PS3.5 6.2)
        self.store.setValue("dicom/calling_ae", checked_ae_title(value))

    @property
    def timeout_s(self) -> float:
        try:
            value = float(self.store.value("dicom/timeout_s", DEFAULT_TIMEOUT_S))
        except (TypeError, ValueError):
            return DEFAULT_TIMEOUT_S
        return value if value > 0 else DEFAULT_TIMEOUT_S

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self.store.setValue("dicom/timeout_s", float(value))

    @property
    def cache_folder(self) -> Path:
        value = str(self.store.value("dicom/cache_folder", "") or "")
        return Path(value) if value else default_cache_folder()

    @cache_folder.setter
    def cache_folder(self, value: str | Path) -> None:
        self.store.setValue("dicom/cache_folder", str(value))

    def network(self) -> NetworkSettings:
        return NetworkSettings(self.calling_ae, self.timeout_s)
