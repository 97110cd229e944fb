"""Guards on the codebase's shape: import boundaries and no pickle loading."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("cxr_engine", "cxr_desktop", "training", "benchmarks", "packaging")


def python_files():
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    proc = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_engine_never_imports_qt_even_lazily():
    for path in sorted((REPO / "cxr_engine").rglob("*.py")) + sorted((REPO / "training").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] in {"PySide6", "shiboken6", "cxr_desktop"} for n in names), path


def test_no_pickle_loading_anywhere():
    """torch.load only with weights_only=True; no pickle module at all."""
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in {"pickle", "cPickle", "dill", "joblib"} for n in names), path
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load":
                owner = getattr(node.func.value, "id", None)
                if owner == "torch":
                    kwargs = {k.arg: k.value for k in node.keywords}
                    ok = "weights_only" in kwargs and getattr(kwargs["weights_only"], "value", None) is True
                    assert ok, f"{path}:{node.lineno}: torch.load without weights_only=True"


def test_importing_the_engine_does_not_import_torch():
    code = "import sys, cxr_engine, cxr_engine.reading.read, cxr_engine.reading.scanning; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
