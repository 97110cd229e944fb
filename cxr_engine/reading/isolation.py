"""Decode untrusted image files in a separate worker process, with a time and a memory limit.

Native decoders (JPEG 2000, JPEG-LS, JPEG, RLE, PNG) have a long record of crashes and worse on
crafted files. ``IsolatedReader`` keeps one long-lived worker process (spawned, so it shares no
state with the GUI) and sends it one path at a time:

- a decoder that crashes the worker, or runs past ``timeout_s``, costs only that worker; the
  file gets an ``ImageReadError`` saying so, and the next file starts a fresh worker;
- a worker that cannot start (the interpreter cannot be run by this user, an import fails) or dies
  before it is ready is not blamed on the file: ``DecoderStartError`` says why (the worker says it is
  ready, after loading its decoders, before it is sent a file);
- on POSIX the worker's address space is capped (``memory_limit_bytes``), so a decoder asking
  for absurd amounts of memory fails with ``MemoryError`` instead of exhausting the machine;
- the worker replies with JSON and raw array bytes (:mod:`cxr_engine.reading.image_wire`), never a
  pickle, so a subverted worker cannot run code in the caller.

Requests (parent → worker) are pickled; that direction only carries paths and function names.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import (
    DecoderBugError, DecoderCrashError, DecoderStartError, DecodeTimeoutError, ImageReadError, UnsupportedImageError,
)
from ..pixels.image import CxrImage
from ..spawning import SYS_PATH_LOCK

logger = logging.getLogger(__name__)

#: Seconds one file may take to decode before its worker is stopped.
DEFAULT_TIMEOUT_S = 60.0
#: Address-space cap of the worker (POSIX only). ``MAX_PIXELS`` float32 values fit well inside it.
DEFAULT_MEMORY_LIMIT_BYTES = 8 * 2**30
#: Seconds allowed for the worker's replies once its first message has arrived.
_REPLY_TIMEOUT_S = 30.0
#: Seconds a new worker that is still alive may take to load its decoders and say it is ready. Generous:
#: a worker that dies fails at once, and on a starved machine (a training run or a virus scan holding the
#: cores) the imports alone took over a minute, which then failed every film.
START_TIMEOUT_S = 180.0
_READY = {"status": "ready"}


def default_task(path: str) -> CxrImage:
    """What the worker runs by default: the engine's ``read_image``."""
    from .read import read_image

    return read_image(path)


@dataclass(frozen=True)
class ReadTask:
    """``read_image`` with a ``DecodeRequest`` (``min_side`` None: full resolution), as a task the
    worker can be sent (the request travels as one number)."""

    min_side: int | None = None

    def __call__(self, path: str) -> CxrImage:
        from .read import read_image
        from .reduced_decode import DecodeRequest

        return read_image(path, DecodeRequest(self.min_side))


class IsolatedReader:
    """Reads image files through ``task`` (default: ``read_image``) in a worker process.

    Thread-safe (one request at a time). Use as a context manager or call :meth:`close`; the
    worker also ends when the parent process exits.
    """

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S,
                 memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES,
                 task: Callable[[str], CxrImage | None] = default_task):
        self.timeout_s = timeout_s
        self.memory_limit_bytes = memory_limit_bytes
        self.task = task
        self.workers_started = 0
        self._lock = threading.Lock()
        self._process = None
        self._conn = None
        self._ready = False

    def __call__(self, path: str | Path) -> CxrImage | None:
        return self.read(path)

    def __enter__(self) -> "IsolatedReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def read(self, path: str | Path, task: Callable[[str], CxrImage | None] | None = None) -> CxrImage | None:
        """``task``'s (default: the reader's own task's) result for ``path``; raises
        ``ImageReadError`` naming the file and the reason, ``DecoderStartError`` when no worker can
        start (the file was not read)."""
        path = Path(path)
        request = (task or self.task, str(path))
        with self._lock:
            self._ensure_worker()
            self._await_ready()
            try:
                self._conn.send(request)
            except (BrokenPipeError, OSError):  # it died idle: one fresh worker, then it must be the start
                self._stop_worker()
                self._ensure_worker()
                self._await_ready()
                try:
                    self._conn.send(request)
                except (BrokenPipeError, OSError) as exc:
                    self._stop_worker()
                    raise DecoderStartError(f"the worker stopped before it was sent the file ({exc})") from None
            return self._receive(path)

    def start(self) -> None:
        """Start the worker now (otherwise the first read does): it loads the decoders while the
        caller does other work. ``DecoderStartError`` at once when the interpreter cannot be run."""
        with self._lock:
            self._ensure_worker()

    def close(self) -> None:
        with self._lock:
            self._stop_worker(graceful=True)

    # ------------------------------------------------------------------ worker management

    def _ensure_worker(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._stop_worker()
        problem = interpreter_problem()
        if problem:
            raise DecoderStartError(problem)
        context = multiprocessing.get_context("spawn")
        # Two one-way OS pipes rather than a duplex socket pair: no socket is ever opened.
        requests_out, requests_in = context.Pipe(duplex=False)[::-1]
        replies_in, replies_out = context.Pipe(duplex=False)
        process = context.Process(target=_worker_main, args=(_Channel(requests_in, replies_out), self.memory_limit_bytes),
                                  name="cxr-decoder", daemon=True)
        try:
            with SYS_PATH_LOCK:  # not while another thread imports a library that edits sys.path
                process.start()
        except OSError as exc:  # no process (out of processes or memory): nothing of the file was read
            for end in (requests_in, requests_out, replies_in, replies_out):
                end.close()
            raise DecoderStartError(f"the worker process could not be created ({exc.strerror or exc})") from None
        requests_in.close()
        replies_out.close()
        self._process, self._conn = process, _Channel(replies_in, requests_out)
        self._ready = False
        self.workers_started += 1

    def _await_ready(self) -> None:
        """Wait for a new worker's ready message; ``DecoderStartError`` when it dies or stays silent first."""
        if self._ready:
            return
        why = ""
        try:
            if self._conn.poll(START_TIMEOUT_S):
                if json.loads(self._conn.recv_bytes().decode("utf-8")) == _READY:
                    self._ready = True
                    return
                why = "its first message was not the ready message"
            elif self._process.is_alive():
                why = f"it was not ready after {START_TIMEOUT_S:g} s"
        except (EOFError, OSError, ValueError):
            pass
        process = self._process
        self._stop_worker()
        if not why:
            why = f"the worker process ended{_describe_exit(process.exitcode)} before it was ready"
        raise DecoderStartError(f"{why} (Python's own message, if it wrote one, is on standard error)")

    def _stop_worker(self, graceful: bool = False) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return
        if graceful and process.is_alive():
            try:
                conn.send(None)
                process.join(timeout=2.0)
            except (BrokenPipeError, OSError):
                pass
        if process.is_alive():
            process.kill()
        process.join(timeout=5.0)
        conn.close()

    def _receive(self, path: Path) -> CxrImage | None:
        if not self._conn.poll(self.timeout_s):
            alive = self._process.is_alive()
            self._stop_worker()
            if alive:
                raise DecodeTimeoutError(path, f"decoding took longer than {self.timeout_s:g} s and was stopped "
                                           "(the file may be damaged or crafted)")
            raise DecoderCrashError(path, "the decoder crashed (the file may be damaged or crafted)")
        try:
            status = json.loads(self._conn.recv_bytes().decode("utf-8"))
            if status["status"] == "error":
                error = {"unsupported": UnsupportedImageError, "unexpected": DecoderBugError}.get(
                    status["kind"], ImageReadError)
                raise error(path, str(status["reason"]))
            if status["status"] == "none":
                return None
            from .image_wire import decode_image

            parts = []
            for _ in range(1 + int(status["arrays"])):
                if not self._conn.poll(_REPLY_TIMEOUT_S):
                    raise EOFError("the worker stopped replying")
                parts.append(self._conn.recv_bytes())
            return decode_image(parts[0], parts[1:])
        except (EOFError, OSError):
            code = None
            if self._process is not None:
                self._process.join(timeout=1.0)
                code = self._process.exitcode
            self._stop_worker()
            raise DecoderCrashError(path, f"the decoder crashed{_describe_exit(code)} "
                                       "(the file may be damaged or crafted)") from None
        except (ValueError, KeyError, TypeError) as exc:
            self._stop_worker()
            raise ImageReadError(path, f"the decoding worker sent a malformed reply ({exc})") from exc


class _Channel:
    """One end of a pair of one-way pipes, with the ``Connection`` methods the reader uses."""

    def __init__(self, incoming, outgoing):
        self.incoming, self.outgoing = incoming, outgoing

    def send(self, obj) -> None:
        self.outgoing.send(obj)

    def send_bytes(self, data: bytes) -> None:
        self.outgoing.send_bytes(data)

    def recv(self):
        return self.incoming.recv()

    def recv_bytes(self) -> bytes:
        return self.incoming.recv_bytes()

    def poll(self, timeout: float) -> bool:
        return self.incoming.poll(timeout)

    def close(self) -> None:
        self.incoming.close()
        self.outgoing.close()


def interpreter_problem() -> str:
    """Why this user cannot run the Python interpreter the workers are spawned with
    (``multiprocessing``'s executable, links followed), ``""`` when it can: e.g. a virtual environment
    whose interpreter links into a folder the user may not enter. Without this check the spawned child
    fails before Python starts, silently, with exit status 255."""
    import os
    from multiprocessing import spawn

    executable = os.fsdecode(spawn.get_executable())
    try:
        os.stat(executable)
    except OSError as exc:
        real = os.path.realpath(executable)
        target = f" (it leads to {real})" if real != executable else ""
        return f"this user cannot run the Python interpreter {executable}{target}: {exc.strerror}"
    if not os.access(executable, os.X_OK):
        return f"this user cannot run the Python interpreter {executable}: it is not executable"
    return ""


def _describe_exit(code: int | None) -> str:
    if code is None or code == 0:
        return ""
    if code < 0:
        try:
            return f" ({signal.Signals(-code).name})"
        except ValueError:
            return f" (signal {-code})"
    return f" (exit status {code})"


# ---------------------------------------------------------------------- worker process side

def _limit_memory(limit_bytes: int | None) -> None:
    if not limit_bytes:
        return
    try:
        import resource
    except ImportError:  # Windows: no rlimits (a Job Object would be the equivalent)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _worker_main(conn, memory_limit_bytes: int | None) -> None:
    """Serve requests until told to stop (``None``) or the parent goes away. pydicom's own warnings are
    silenced here: each file's problem goes back to the parent in the reply, not to the shared stderr.
    Ctrl-C is ignored here (the parent stops the worker)."""
    from .library_output import silence_pydicom

    # Ctrl-C in a terminal reaches the whole process group: the parent decides what stops, and stops
    # this worker itself (a worker would otherwise die mid-read with its own traceback on stderr).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    silence_pydicom()
    _limit_memory(memory_limit_bytes)
    _preload_decoders()
    try:
        conn.send_bytes(json.dumps(_READY).encode())
    except OSError:  # the parent has gone
        return
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        task, path = request
        try:
            _reply(conn, task(path))
        except UnsupportedImageError as exc:
            _reply_error(conn, "unsupported", exc.reason)
        except ImageReadError as exc:
            _reply_error(conn, "read", exc.reason)
        except MemoryError:
            _reply_error(conn, "read", "decoding needed more memory than allowed; the file may be damaged or crafted")
        except Exception as exc:  # a decoder's own bug: report it plainly, keep serving
            _reply_error(conn, "unexpected", f"unexpected decoder error: {type(exc).__name__}: {exc}")


def _preload_decoders() -> None:
    """Import the readers and decoders before the first request arrives, so a worker started
    early (``IsolatedReader.start``) spends its start-up while the parent is busy elsewhere."""
    try:
        from PIL import Jpeg2KImagePlugin, JpegImagePlugin  # noqa: F401  (reduced decodes)
        from pydicom.pixels import pixel_array  # noqa: F401

        from . import dicom_io, raster_io, read  # noqa: F401
    except Exception:  # a broken install: the first request reports it against its file
        logger.debug("could not preload the decoders", exc_info=True)


def _reply(conn, image: CxrImage | None) -> None:
    if image is None:
        conn.send_bytes(json.dumps({"status": "none"}).encode())
        return
    from .image_wire import encode_image

    header, arrays = encode_image(image)
    conn.send_bytes(json.dumps({"status": "ok", "arrays": len(arrays)}).encode())
    conn.send_bytes(header)
    for array in arrays:
        conn.send_bytes(array)


def _reply_error(conn, kind: str, reason: str) -> None:
    conn.send_bytes(json.dumps({"status": "error", "kind": kind, "reason": reason}).encode())


# ---------------------------------------------------------------------- one reader per thread

_thread_readers = threading.local()
_all_readers: list[IsolatedReader] = []
_all_readers_lock = threading.Lock()


def read_image_isolated(path: str | Path) -> CxrImage:
    """``read_image`` in this thread's own decoding worker (started on first use, ended at exit).

    Each calling thread gets its own worker, so the viewer, the thumbnails and a batch never
    wait for one another's files.
    """
    reader = getattr(_thread_readers, "reader", None)
    if reader is None:
        reader = _thread_readers.reader = IsolatedReader()
        with _all_readers_lock:
            if not _all_readers:
                import atexit

                atexit.register(close_all_readers)
            _all_readers.append(reader)
    return reader.read(path)


def close_all_readers() -> None:
    """Stop every worker started by :func:`read_image_isolated`."""
    with _all_readers_lock:
        readers, _all_readers[:] = list(_all_readers), []
    for reader in readers:
        reader.close()
