"""The app's behaviour without Qt: what the reader opened, the classification results, what an
export needs. The widgets mirror these objects and Qt adapters run their long steps in workers;
nothing here imports PySide6, shiboken6 or superqt (an import-linter contract in pyproject.toml)."""
