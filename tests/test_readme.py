"""The README runs: its commands are what CI runs, and its examples work."""

from __future__ import annotations

import re
from pathlib import Path

from dse_milp.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_the_two_readme_commands_verbatim():
    install, tests = (block.strip() for block in blocks("sh")[:2])
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert install in ci
    assert tests in ci


def test_readme_solve_commands_run(capsys):
    commands = set(re.findall(r"`python -m dse_milp (solve [\w@.-]+)`", README))
    assert commands, "the README shows no solve command"
    for command in sorted(commands):
        assert main([*command.split(), "--quiet"]) == 0, command
    assert "optimal" in capsys.readouterr().out


def test_readme_python_example_runs():
    (example,) = blocks("python")
    namespace: dict = {}
    exec(compile(example.replace('"instances/', f'"{ROOT}/instances/'), "README.md", "exec"), namespace)
    solution = namespace["solution"]
    assert solution.dram_bytes >= solution.compulsory_bytes
