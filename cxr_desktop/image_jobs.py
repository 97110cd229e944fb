"""The app's one decode cache, the decoded film the viewer shows, and the thumbnails' worker. No Qt."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr_engine.reading.decode_cache import CachedDecoder
from cxr_engine.reading.decode_pool import BATCH, THUMBNAIL, decode_in_order, decode_priority
from cxr_engine.errors import CxrError, DecoderStartError
from cxr_engine.pixels.image import CxrImage
from cxr_engine.reading.reduced_decode import DecodeRequest
from cxr_engine.pixels.rendering import Renderer
from cxr_engine.pixels.resampling import resize_area

logger = logging.getLogger(__name__)

THUMBNAIL_PX = 96


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image with its renderer, ready for the viewer."""

    image: CxrImage
    renderer: Renderer


def thumbnail(image: CxrImage, size: int = THUMBNAIL_PX) -> np.ndarray:
    """uint8 greyscale, longest side ``size``, with the image's default window, at the physical
    aspect (``CxrImage.display_shape``: non-square pixels are not squashed)."""
    pixels = Renderer(image).render()
    height, width = image.display_shape
    scale = size / max(height, width)
    return resize_area(pixels, max(1, round(height * scale)), max(1, round(width * scale)))


_shared_decoder: CachedDecoder | None = None
_shared_lock = threading.Lock()


def shared_decoder() -> CachedDecoder:
    """The app's decoding pool (one isolated worker per core, ``cxr_engine.reading.decode_pool``) behind one
    cache (``cxr_engine.reading.decode_cache``), shared by the viewer, the thumbnails, classify-all and the
    PDF export (through ``controllers.workspace.StudyWorkspace``) so that a film is decoded once per size.
    Started on first use; its workers end with the app."""
    global _shared_decoder
    with _shared_lock:
        if _shared_decoder is None:
            import atexit

            from cxr_engine.reading.decode_pool import DecodePool

            _shared_decoder = CachedDecoder(DecodePool())
            atexit.register(_shared_decoder.close)
        return _shared_decoder


def warm_up() -> threading.Thread:
    """Start, in a background thread, what the first film and thumbnails opened would otherwise wait for:
    the shared decoder's workers (each spawns and imports its decoders, about half a second of CPU) and
    ``numpy.ma``, which numpy imports on the first ``np.percentile`` (the first automatic window), a
    100–170 ms GUI stall under load (``benchmarks/README.md``). Returns the (daemon) thread."""
    def work():
        import numpy.ma  # noqa: F401

        from cxr_engine.errors import DecoderStartError

        try:
            shared_decoder().pool.start()
        except DecoderStartError as exc:  # no traceback: each film opened says so where it would be shown
            logger.warning("%s", exc)

    thread = threading.Thread(target=work, name="cxr-warm-up", daemon=True)
    thread.start()
    return thread


def read_in_order(paths: list[Path], request: DecodeRequest, decoder: CachedDecoder, priority: int = BATCH):
    """``(path, CxrImage or the exception)`` per file in order, decoded as ``request`` asks through
    ``decoder``, as many at once as its pool has workers, each waiting for a worker at ``priority``
    (``cxr_engine.reading.decode_pool.decode_priority``)."""
    def read(path: Path) -> CxrImage:
        with decode_priority(priority):
            return decoder.read(path, request)

    return decode_in_order(paths, read, decoder.pool.workers)


def thumbnails(paths: list[Path], decoder: CachedDecoder):
    """Generator worker: yields ``(path, thumbnail or None, error reason, file_fault)`` per file, in order.

    Each file is decoded through ``decoder`` at the least resolution the thumbnail needs
    (``DecodeRequest.thumbnail``). ``file_fault`` is False for a decoding process that could not start
    (``DecoderStartError``): no file is to blame and every other file would fail alike, so that is yielded
    once and the worker stops."""
    for path, image in read_in_order(paths, DecodeRequest.thumbnail(THUMBNAIL_PX), decoder, THUMBNAIL):
        try:
            if isinstance(image, Exception):
                raise image
            yield path, thumbnail(image), "", True
        except DecoderStartError as exc:
            yield path, None, exc.reason, False
            return
        except CxrError as exc:
            yield path, None, getattr(exc, "reason", str(exc)), True
        except Exception as exc:  # a decoder bug must not stop the other thumbnails
            logger.exception("thumbnail failed for one file")
            yield path, None, f"{type(exc).__name__}: {exc}", True
