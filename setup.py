"""Build hook: compile the ingest hot path to C with mypyc when this machine can.

Everything else about the package is declared in ``pyproject.toml``.  The modules it
compiles (``tansiq.native.MODULES``) do the per-object work of every ingest: read a
stream, validate, parse timestamps, read and write the distribution extension.  Compiled, a
200k-object ingest runs 8-25% faster (docs/design.md, "Compiled hot path").  They are the
same source either way, and stay importable as plain Python:

- ``TANSIQ_PURE_PYTHON=1`` at install time skips the compile;
- a failed compile (no C compiler or Python headers) warns and installs them uncompiled.

``tansiq --version`` tells which one an installation got.  In an editable install the
compiled modules sit beside their sources; after editing one of those, run
``pip install -e .`` again (scripts/test does; a test fails while a compiled module is older
than its source).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The list of compiled modules is declared once, in tansiq/native.py (read without importing
# the package, whose dependencies are not installed yet).
_MODULES = runpy.run_path(str(Path(__file__).parent / "tansiq" / "native.py"))["MODULES"]
COMPILED = [name.replace(".", "/") + ".py" for name in _MODULES]


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure-Python modules when compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # the compiler, headers or linker: warn, install pure Python
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            print(
                f"tansiq: compiling the hot path failed ({exc}); installing it as plain Python"
                " (same behaviour, slower ingest)",
                file=sys.stderr,
            )


def extensions() -> list[Any]:
    if os.environ.get("TANSIQ_PURE_PYTHON") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        print(f"tansiq: mypyc is not available ({exc}); installing plain Python", file=sys.stderr)
        return []
    try:
        return mypycify(COMPILED, opt_level="3", debug_level="0", group_name="tansiq._native")
    except (Exception, SystemExit) as exc:  # mypyc reports a type error by exiting
        print(f"tansiq: mypyc failed ({exc!r}); installing plain Python", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
