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


def _imports(path: Path) -> set[str]:
    """The modules a Python file imports (absolute names), read from its syntax tree."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_imports_point_one_way():
    """The library never imports the book's figures, and the model code never imports the experiments or grading:
    viz and grading sit on top; experiments sit on the models and data."""
    lib = ROOT / "lib" / "selfsup"
    offenders = []
    for path in lib.rglob("*.py"):
        rel = path.relative_to(lib)
        mods = _imports(path)
        forbidden = ["selfsup.viz"] if rel.name != "viz.py" else []
        if rel.parts[0] not in ("experiments", "grading", "cli.py", "viz.py"):
            forbidden += ["selfsup.experiments", "selfsup.grading"]
        offenders += [f"{rel} imports {m}" for m in mods if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert not offenders, offenders
