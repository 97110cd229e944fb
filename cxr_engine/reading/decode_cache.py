"""Decoded images kept per file and size, so that a film is decoded once for each use of it.

``CachedDecoder`` sits in front of a ``DecodePool``: ``read(path, request)`` returns the image
decoded earlier for the same file and ``DecodeRequest`` while it is in the cache, waits for a
decode of it already running in another thread, and otherwise decodes it in the pool. A file
whose every request gives its full decode (``read.full_decode_only``: PNG/JPEG files, DICOM
syntaxes without resolution levels or DCT scaling) is decoded once, at full resolution, for every
request. A reduced decode made for ``min_side`` m serves every later request of the file for m' pixels
with m ≤ m' ≤ its own short side: that request would get the same reduction (no larger, as m' ≥ m; no
smaller, as this one holds m'), e.g. ``RG1_J2KI.dcm``'s thumbnail and model input, which both come
from its ×2 level. A reduced request that fell back to the full decode (the film is too small to
reduce, or the decoder refused the code stream at that level) is kept as the file's full decode: it
serves the viewer, and every later request of the file for at least as many pixels, which would fall
back too (a stream refused at a coarser level is taken as refused at the finer ones). A request waits for a running decode of the same file that may serve
it before starting its own. The cache is bounded by the bytes of its arrays (least recently used
first out). Errors are not cached: the next read tries again (and reports again).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path

from ..pixels.image import CxrImage
from .reduced_decode import FULL, DecodeRequest

#: Default cache budget: about 80 films at twice a 224-px model's input (532×500, 1.6 MB each) next to their thumbnails.
DEFAULT_MAX_BYTES = 128 * 2**20


def image_bytes(image: CxrImage) -> int:
    """Bytes held by an image's arrays (stored values, modality values when separate, padding, shutter)."""
    total = image.stored.nbytes
    if image.modality is not image.stored:
        total += image.modality.nbytes
    if image.padding is not None:
        total += image.padding.nbytes
    if image.shutter is not None and image.shutter is not image.padding:  # the padding when the film has none
        total += image.shutter.nbytes
    return total


class CachedDecoder:
    """A ``DecodePool`` (anything with ``read(path, request)``) with a per-(file, request) cache.

    Thread-safe. ``decodes`` counts the reads that reached the pool (failed ones included).
    Files are keyed by their path as given; a file changed on disk while cached is not noticed
    (the app never writes into the folders it reads).
    """

    def __init__(self, pool, max_bytes: int = DEFAULT_MAX_BYTES):
        self.pool = pool
        self.max_bytes = max_bytes
        self.decodes = 0
        self._lock = threading.Lock()
        self._images: OrderedDict[tuple[Path, int | None], CxrImage] = OrderedDict()
        self._bytes = 0
        self._running: dict[tuple[Path, int | None], Future] = {}
        self._full_only: dict[Path, bool] = {}
        #: Per file, the smallest ``min_side`` whose reduced decode fell back to the full decode.
        self._falls_back: dict[Path, int] = {}

    def read(self, path: str | Path, request: DecodeRequest = FULL) -> CxrImage:
        """``path`` decoded as ``request`` asks; raises the pool's ``ImageReadError`` for a bad file."""
        path = Path(path)
        if not request.full and self._full_decode_only(path):
            request = FULL  # the same image whatever the size asked: one decode serves them all
        while True:
            with self._lock:
                request = self._served_by(path, request)
                key = (path, request.min_side)
                if key not in self._images and not request.full:
                    key = self._same_reduction(path, request.min_side) or key
                image = self._images.get(key)
                if image is not None:
                    self._images.move_to_end(key)
                    return image
                own = self._running.get(key)
                other = None if own is not None else self._may_serve(path, request)
                if own is None and other is None:
                    mine = self._running[key] = Future()
                    self.decodes += 1
                    break
            if own is not None:
                return own.result()
            try:  # then look again: it may serve this request (``_may_serve``)
                other.result()
            except Exception:
                pass  # its file may still decode at this size; this request tries and reports for itself
        try:
            image = self.pool.read(path, request)
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            mine.set_exception(exc)
            raise
        with self._lock:
            del self._running[key]
            if not request.full and image.reduction == 1:  # fell back: this is the file's full decode
                self._falls_back[path] = min(request.min_side, self._falls_back.get(path, request.min_side))
                key = (path, None)
            self._store(key, image)
        mine.set_result(image)
        return image

    def _served_by(self, path: Path, request: DecodeRequest) -> DecodeRequest:
        """``FULL`` where an earlier request of ``path`` for no more pixels fell back to the full decode."""
        smallest = self._falls_back.get(path)
        if request.full or smallest is None or request.min_side < smallest:
            return request
        return FULL

    def _same_reduction(self, path: Path, min_side: int) -> tuple[Path, int] | None:
        """The key of a cached reduced decode of ``path`` that a request for ``min_side`` would get too."""
        for (cached_path, asked), image in self._images.items():
            if cached_path == path and asked is not None and asked <= min_side <= min(image.shape):
                return cached_path, asked
        return None

    def _may_serve(self, path: Path, request: DecodeRequest) -> Future | None:
        """A running decode of ``path`` that may serve ``request`` once done (if it falls back, or holds as
        many pixels at the same reduction): one for no more pixels (any size, for a full-resolution request)."""
        for (running_path, min_side), future in self._running.items():
            if running_path == path and min_side is not None and (request.full or min_side <= request.min_side):
                return future
        return None

    def _full_decode_only(self, path: Path) -> bool:
        known = self._full_only.get(path)
        if known is None:
            from .read import full_decode_only

            known = self._full_only[path] = full_decode_only(path)
        return known

    def _store(self, key, image: CxrImage) -> None:
        size = image_bytes(image)
        if size > self.max_bytes:
            return
        replaced = self._images.pop(key, None)  # a full decode that another request stored meanwhile
        if replaced is not None:
            self._bytes -= image_bytes(replaced)
        self._images[key] = image
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._images.popitem(last=False)
            self._bytes -= image_bytes(dropped)

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._images.clear()
            self._bytes = 0
            self._full_only.clear()
            self._falls_back.clear()

    def close(self) -> None:
        """Empty the cache and stop the pool's workers."""
        self.clear()
        self.pool.close()
