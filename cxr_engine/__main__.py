"""``python -m cxr_engine`` is ``cxr-classify``."""
import sys

from .cli import main

sys.exit(main())
