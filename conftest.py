"""Root conftest: test isolation, perf-suite options and skip helpers."""

from __future__ import annotations

import numpy  # noqa: F401  (see below)
import pytest
import scipy.stats  # noqa: F401

# pytester's in-process runs put sys.modules back as they found it; numpy's extension modules
# (numpy.fft, which scipy.stats loads) cannot be loaded twice in one process, so both are
# imported once, before any such run

# --perf-scale, machine info for the benchmark JSON, per-hardware storage
pytest_plugins = ["fer.suite.plugin", "pytester"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session parses into its own cache folder, and `fer train` writes its run
    folders into the session's temporary folder, never the user's."""
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "fer-cache"))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path_factory.getbasetemp() / "fer-runs"))
