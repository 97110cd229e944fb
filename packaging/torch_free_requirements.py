"""Print the requirements of a torch-free environment, one per line, from ``pyproject.toml``.

The engine's runtime dependencies without the torch stack (what the lite bundle carries), the
report's PDF library and the test tools that need no Qt: ``make test-notorch`` installs these
into ``.venv-notorch`` and runs the test suite there, where tests that need torch skip.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Distributions only the torch backend (and training) use.
TORCH_STACK = {"torch", "torchvision", "timm", "grad-cam", "safetensors"}
#: From the extras: the engine writes PDF reports with reportlab; the tests read them with pypdf.
EXTRAS = {"gui": {"reportlab"}, "test": {"pytest", "pypdf"}}


def distribution(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def torch_free_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = [r for r in project["dependencies"] if distribution(r) not in TORCH_STACK]
    for extra, names in EXTRAS.items():
        wanted += [r for r in project["optional-dependencies"][extra] if distribution(r) in names]
    return wanted


if __name__ == "__main__":
    sys.stdout.write("".join(f"{r}\n" for r in torch_free_requirements()))
