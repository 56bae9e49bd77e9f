"""The README's shell examples, run as written: offline ones alone, the rest against `tierserve up`.

A `# ...` line right under a command is the output the README promises for it; a trailing
`# exit 1 ...` comment is the exit status it promises.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from base.procs import free_port, tierserve_command

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


@dataclass
class Example:
    line: str
    argv: list[str]
    comment: str
    expected: list[str] = field(default_factory=list)

    @property
    def offline(self) -> bool:
        """Runs without a stack: `tierserve policy ...`, `--version`, `--help`."""
        return self.argv[0] == "tierserve" and (
            self.argv[1] == "policy" or bool({"--version", "--help", "-h"} & set(self.argv)))

    @property
    def needs_stack(self) -> bool:
        return self.argv[0] == "curl" or self.argv[:2] == ["tierserve", "experiments"]


def _split_comment(line: str) -> tuple[str, str]:
    """`cmd args   # note` -> (`cmd args`, `note`), a `#` inside quotes left alone."""
    for match in re.finditer(r"\s#", line):
        try:
            shlex.split(line[:match.start()])
        except ValueError:  # inside quotes
            continue
        return line[:match.start()].strip(), line[match.end():].strip()
    return line.strip(), ""


def readme_examples() -> list[Example]:
    examples: list[Example] = []
    for block in re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.M | re.S):
        current: Example | None = None
        for line in block.splitlines():
            if line.startswith("#"):
                if current is not None:
                    current.expected.append(line.removeprefix("#").strip())
                continue
            command, comment = _split_comment(line)
            if command:
                current = Example(line, shlex.split(command), comment)
                examples.append(current)
    return examples


EXAMPLES = readme_examples()
ALLOWED_UNTESTED = {"make", ".", "tierserve up", "tierserve demo"}


def test_every_readme_command_is_run_by_a_test() -> None:
    assert any(e.offline for e in EXAMPLES) and any(e.needs_stack for e in EXAMPLES)
    untested = [e.line for e in EXAMPLES if not e.offline and not e.needs_stack
                and e.argv[0] not in ALLOWED_UNTESTED
                and " ".join(e.argv[:2]) not in ALLOWED_UNTESTED]
    assert not untested, "a README command no test runs"


def test_the_readme_says_how_to_put_tierserve_on_path() -> None:
    lines = [e.argv for e in EXAMPLES]
    assert [".", ".venv/bin/activate"] in lines
    assert (REPO / ".venv" / "bin" / "activate").exists() or not (REPO / ".venv").exists()


def _run_example(example: Example, env: dict[str, str] | None = None,
                 replace: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = example.argv
    if replace is not None:
        argv = [a.replace(*replace) for a in argv]
    command = tierserve_command(*argv[1:]) if argv[0] == "tierserve" else argv
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.offline],
                         ids=lambda e: " ".join(e.argv))
def test_offline_command_works_as_written(example: Example) -> None:
    result = _run_example(example)
    expected_code = 1 if "exit 1" in example.comment else 0
    assert result.returncode == expected_code, result.stderr
    if example.expected:
        shown = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
        assert shown == example.expected


@pytest.mark.slow
def test_stack_commands_work_as_written(tmp_path: Path) -> None:
    port = free_port()
    router = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        tierserve_command("up", "--var", str(tmp_path / "var"), "--port", str(port),
                          "--grpc-port", str(free_port()), "--pool-port", str(free_port()),
                          "--pool-grpc-port", str(free_port()),
                          "--status-port", str(free_port())),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 240
        while True:  # ready when the first example model answers through the router
            assert proc.poll() is None and time.monotonic() < deadline, "tierserve up failed"
            try:
                if httpx.post(f"{router}/v1/models/example-a:predict", timeout=60,
                              json={"instances": [1.0]}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        env = {"TIERSERVE_ROUTER_URL": router}
        for example in [e for e in EXAMPLES if e.needs_stack and not e.offline]:
            result = _run_example(example, env, ("127.0.0.1:8501", f"127.0.0.1:{port}"))
            assert result.returncode == 0, (example.line, result.stdout, result.stderr)
            if example.argv[0] == "curl":
                answer = json.loads(result.stdout)
                if example.expected:  # `{"predictions": ...}      headers: ...`
                    promised = example.expected[0].split("  ")[0]
                    assert answer == json.loads(promised), example.line
                else:
                    assert answer["predictions"] in ([2.0], [4.0]), example.line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
