"""A throwaway Orthanc DICOM server for tests: its own JSON configuration and storage folder, free
loopback ports, this app's AE title registered for C-FIND, C-GET, C-MOVE and C-STORE; started and
waited for (C-ECHO), stopped at the end. Skips with the reason when the ``Orthanc`` binary is absent.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from cxr_engine.network.dicom_network import DicomNetworkError, DicomNode, NetworkSettings, verify

ORTHANC_AE = "ORTHANCTEST"
CLIENT_AE = "CXRTEST"
STARTUP_TIMEOUT_S = 60.0


def orthanc_binary() -> str:
    binary = shutil.which("Orthanc") or (("/usr/sbin/Orthanc") if Path("/usr/sbin/Orthanc").exists() else None)
    if binary is None:
        pytest.skip("the Orthanc DICOM server is not installed (Debian: apt-get install orthanc; .ci/run installs it)")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def orthanc(folder: Path, store_scp_port: int | None = None, tls: bool = False):
    """Run Orthanc with storage under ``folder``; yields (node, settings, http_port). ``store_scp_port``
    registers this app's own store SCP (for C-MOVE) at that loopback port. With ``tls`` it speaks
    DICOM TLS only, with a fresh self-signed certificate for 127.0.0.1 (``node.ca_file`` trusts it)."""
    binary = orthanc_binary()
    folder.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    config = {
        "Name": "cxr-reader-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "DicomAet": ORTHANC_AE,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False,
        "DicomModalities": {
            "cxr-reader": {"AET": CLIENT_AE, "Host": "127.0.0.1", "Port": store_scp_port or free_port(),
                           "AllowEcho": True, "AllowFind": True, "AllowGet": True, "AllowMove": True,
                           "AllowStore": True},
        },
        "Plugins": [],
        "StableAge": 1,
    }
    ca_file = ""
    if tls:
        ca_file = str(_self_signed_certificate(folder))
        config.update({"DicomTlsEnabled": True, "DicomTlsCertificate": ca_file,
                       "DicomTlsPrivateKey": str(folder / "key.pem"), "DicomTlsTrustedCertificates": ca_file,
                       "DicomTlsRemoteCertificateRequired": False})
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = (folder / "orthanc.log").open("w")
    process = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    node = DicomNode(ORTHANC_AE, "127.0.0.1", dicom_port, tls=tls, ca_file=ca_file, name="test Orthanc")
    settings = NetworkSettings(calling_ae=CLIENT_AE, timeout_s=10)
    try:
        _wait_for_echo(process, node, settings, folder / "orthanc.log")
        yield node, settings, http_port
    finally:
        stop_server(process, 20)
        log.close()


def stop_server(process: subprocess.Popen, grace_s: float) -> None:
    """Ask a test's server process to end; kill it when it has not within ``grace_s`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _self_signed_certificate(folder: Path) -> Path:
    """``cert.pem`` and ``key.pem`` for CN and IP 127.0.0.1, valid two days (needs the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (needed for a test certificate)")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return folder / "cert.pem"


def _wait_for_echo(process, node: DicomNode, settings: NetworkSettings, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            verify(node, NetworkSettings(settings.calling_ae, timeout_s=2))
            return
        except DicomNetworkError as exc:
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"Orthanc did not answer C-ECHO within {STARTUP_TIMEOUT_S:g} s ({last})")
