"""Where results go: output paths checked before any work starts, and written safely.

A result already computed is never lost to its own output: every path is
checked (by creating it) before the program is built, and a write that fails at
the end is reported on one line after everything else has been printed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dse_milp.errors import InputError


def check_file(option: str, path: Path | None) -> None:
    """Raise InputError unless ``path`` can be written as a file (tried, and left as it was)."""
    if path is None:
        return
    shown = repr(str(path))
    try:
        if path.is_dir():
            raise InputError([f"{option}: cannot write {shown} (it is a folder)"])
        if path.exists():
            if not os.access(path, os.W_OK):
                raise InputError([f"{option}: cannot write {shown} (permission denied)"])
            if path.is_file() and _full(path.parent):
                raise InputError([f"{option}: cannot write {shown} (no space left on its device)"])
            return
        with path.open("x"):
            pass
        path.unlink()
    except OSError as exc:  # the path itself may be unusable (a name too long for the file system)
        raise InputError([f"{option}: cannot write {shown} ({exc.strerror or exc})"]) from None


def _full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has no block left for an ordinary user."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def check_folder(option: str, path: Path) -> None:
    """Raise InputError unless ``path`` is (or can be made) a folder files can be written in;
    it is created if missing."""
    shown = repr(str(path))
    try:
        if path.exists() and not path.is_dir():
            raise InputError([f"{option}: {shown} exists and is not a folder"])
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise InputError([f"{option}: cannot write in {shown} ({exc.strerror or exc})"]) from None


def write_text(option: str, path: Path, text: str) -> None:
    """Write ``text`` to ``path``; an OSError becomes a one-line InputError."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError([f"{option}: cannot write {str(path)!r} ({exc.strerror or exc})"]) from None


def silence_stdout() -> None:
    """After a BrokenPipeError (``solve ... | head``): point standard output at /dev/null, so
    neither the rest of the run nor Python's exit flush writes to the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def network_yaml(spec: dict[str, Any], comment: str = "") -> str:
    """``spec`` as a network YAML file in the style of the bundled ones: one line per layer,
    names quoted where YAML needs it, ``comment`` (lines) on top."""

    def flow(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 16).strip()

    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    top = {"name": spec["name"], "input": spec["input"]}
    lines += [yaml.safe_dump(top, default_flow_style=None, sort_keys=False, width=1 << 16).strip(), "layers:"]
    lines += [f"  - {flow(layer)}" for layer in spec["layers"]]
    return "\n".join(lines) + "\n"
