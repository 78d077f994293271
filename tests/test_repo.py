"""The project's own hygiene: ruff is clean, every dependency is pinned and installed at its pin."""

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    for command in (["check"], ["format", "--check"]):
        proc = subprocess.run([str(ruff), *command, str(ROOT)], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, f"ruff {' '.join(command)}:\n" + proc.stdout + proc.stderr


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert m, f"requirements.txt line is not an exact pin: {line!r}"
        pins[m[1].lower().replace("_", "-")] = m[2]
    return pins


def test_every_direct_dependency_is_pinned_and_installed_at_its_pin():
    pins = _pins()
    assert pins["torch"] == "2.13.0"
    direct = []
    for line in (ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            direct.append(re.split(r"[<>=!~\[ ]", line)[0].lower().replace("_", "-"))
    missing = [d for d in direct if d not in pins]
    assert not missing, f"direct dependencies without a pin in requirements.txt: {missing}"
    wrong = {}
    for name, version in pins.items():
        installed = metadata.version(name)
        if installed.split("+")[0] != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from the pins (pinned, installed): {wrong}"
