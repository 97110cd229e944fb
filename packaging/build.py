"""Build one bundle: ``python packaging/build.py lite|full`` (from any folder; Linux and Windows).

Runs PyInstaller on ``packaging/cxr_reader_<variant>.spec`` with its work files in
``build/pyinstaller/<variant>`` and the bundle in ``dist/cxr-reader-<variant>/``, then checks the
lite bundle holds nothing of torch and prints the bundle's size. Exit status 0 on success.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bundles import EXE_NAME, REPO, VARIANTS, forbidden_entries  # noqa: E402

logger = logging.getLogger("build")


def folder_size(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (symbolic links not followed)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="where the bundle folder goes")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "pyinstaller", help="PyInstaller's work files")
    parser.add_argument("--keep-work", action="store_true", help="keep the work files (default: delete them)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if importlib.util.find_spec("PyInstaller") is None:
        logger.error("PyInstaller is not installed: pip install -e '.[packaging]'")
        return 2
    spec = REPO / "packaging" / f"cxr_reader_{args.variant}.spec"
    work = args.work / args.variant
    started = time.perf_counter()
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(args.dist), "--workpath", str(work), str(spec)]
    logger.info("running %s", " ".join(command))
    if subprocess.run(command, cwd=REPO).returncode != 0:
        logger.error("PyInstaller failed")
        return 1
    bundle = args.dist / f"{EXE_NAME}-{args.variant}"
    if not args.keep_work:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    if args.variant == "lite":
        hits = forbidden_entries(bundle / "_internal")
        if hits:
            logger.error("the lite bundle holds torch-stack files: %s", ", ".join(hits[:20]))
            return 1
    logger.info("built %s in %.0f s: %.0f MB", bundle, time.perf_counter() - started, folder_size(bundle) / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
