"""The README works when followed word for word in a fresh folder: the demo, then the tutorial's commands exactly as
printed (a real server in the background), then the Python snippet exactly as printed."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(after: str, language: str) -> str:
    """The first fenced `language` block after the line `after`."""
    found = re.search(rf"{re.escape(after)}.*?```{language}\n(.*?)```", README, re.S)
    assert found, f"no {language} block after {after!r}"
    return found.group(1)


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A folder as a clone gives it, with this environment's installation as its `.venv`."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


def run(folder: Path, *command: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTORBATCH_")}
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_set_up_commands_are_two_a_demo_and_the_tests() -> None:
    first_screen = README[:README.index("## Five-minute tutorial")]
    commands = re.findall(r"```sh\n(.*?)```", first_screen, re.S)
    assert len(commands) == 2
    assert commands[0].strip().endswith(".venv/bin/actorbatch demo")
    assert commands[1].strip().endswith(".venv/bin/python -m pytest")


@pytest.mark.slow
def test_the_demo_then_the_tutorial_then_the_python_snippet_work_as_printed(fresh: Path) -> None:
    demo = run(fresh, ".venv/bin/actorbatch", "demo")
    assert demo.returncode == 0, demo.stderr
    tutorial = block("## Five-minute tutorial", "sh")
    # Each failing command names its line on stderr; then wait for the background server, which `kill %1` drains.
    script = "trap 'echo \"FAILED line $LINENO: exit $?\" >&2' ERR\n" + tutorial + 'wait %1\necho "server exit $?"\n'
    result = run(fresh, "bash", "-c", script)
    lines = tutorial.splitlines()
    failed = re.findall(r"FAILED line (\d+): exit (\d+)", result.stderr)
    assert [(lines[int(n) - 2].split()[:3], code) for n, code in failed] == [
        (["actorbatch", "run", "wait"], "1")], result.stderr  # the first run fails as the comment says: TASK2
    assert "server exit 0" in result.stdout
    assert "error:" not in result.stderr, result.stderr
    run_ids = re.findall(r"^[0-9a-f]{8}-[0-9a-f-]{27}$", result.stdout, re.M)
    assert len(run_ids) == 3 and run_ids[0] == run_ids[1]  # the repeated --key printed the first run's id
    assert "is not in the future" not in result.stderr  # the run-later example is still later

    snippet = block("From Python, the same operations:", "python")
    python = run(fresh, ".venv/bin/python", "-c", snippet)
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() == "succeeded ['TASK1', 'TASK2']"


@pytest.mark.slow
def test_the_python_snippet_works_in_a_fresh_folder(fresh: Path) -> None:
    python = run(fresh, ".venv/bin/python", "-c", block("From Python, the same operations:", "python"))
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() == "succeeded ['TASK1', 'TASK2']"
