"""One lock between starting worker processes and importing libraries that edit ``sys.path`` while
they load.

A spawned child starts with the parent's ``sys.path`` as it is at ``Process.start()``. OpenCV's
loader (``cv2/__init__.py``, imported by pytorch-grad-cam for the torch backend's Grad-CAM) puts its
own package folder at the front of ``sys.path`` while it loads and restores it afterwards. A decoding
worker spawned from another thread inside that window finds ``cv2/typing`` as the standard library's
``typing`` and dies before its first file ("cannot import name 'Any' from partially initialized
module 'typing'"). The process start and such imports therefore both hold ``SYS_PATH_LOCK``.
"""
from __future__ import annotations

import threading

SYS_PATH_LOCK = threading.RLock()
