"""Errors that the command line turns into exit codes.

Library code raises these; only ``dse_milp.cli`` prints them and chooses the
exit code. Each message is complete on its own line.
"""

from __future__ import annotations

import reprlib


class DseError(Exception):
    """Base class of every error the user is meant to read."""


class InputError(DseError):
    """Invalid input files: every problem found, one line each (exit code 2)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InfeasibleError(DseError):
    """Some layers fit no mapping in the buffers (exit code 3)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NoSolutionError(DseError):
    """The solver stopped, at its time limit or otherwise, without a solution (exit code 4)."""


class InterruptedRun(DseError):
    """Ctrl-C stopped the run before it had a solution (exit code 130)."""


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 2, 50, 50, 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 4


def show(value: object) -> str:
    """``repr(value)`` bounded to about 60 characters and one line, however large or deep
    the value (a message never spends its time or space formatting the user's data)."""
    if value is None:
        return "null"
    try:
        text = _SHOWN.repr(value)
    except ValueError:  # an integer of more digits than Python converts
        return "(a number too long to show)"
    return text if len(text) <= 80 else text[:77] + "..."


def clip(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
