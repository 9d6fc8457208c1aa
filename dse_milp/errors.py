"""Errors that the command line turns into exit codes.

Library code raises these; only ``dse_milp.cli`` prints them and chooses the
exit code. Each message is complete on its own line.
"""

from __future__ import annotations


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
