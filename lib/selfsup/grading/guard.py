"""Code the grader runs inside a student's kernel so that tests check what they say, whatever the student patched.

The kernel is the student's: code in it can change anything the tests call. Before any student code runs, the
executor sends `setup_code()`, which snapshots the modules tests rely on (builtins, math, operator, and numpy,
numpy.testing, torch, torch.testing when the notebook uses them) and installs two functions under names drawn
at random for this kernel:

- the guard, run (silently) before each test cell: it puts back every snapshotted module in `sys.modules` and
  every attribute the student replaced or deleted in them (`math.isclose = lambda *a, **k: True`,
  `builtins.isinstance = ...`, `numpy.testing.assert_allclose = ...`, `torch.Tensor.__eq__ = ...`), and
  drops the earlier hidden-test cells' source from linecache (where tracebacks read it; test cells are also run
  without storing history, so `In` and `_ih` never hold them);
- a strict `==` that the test cells' `assert a == b` statements are rewritten to call (`rewrite_asserts`): it
  is False when either side's class defines `__eq__` in code that is not an installed library (an object
  whose `==` is always True), and it compares lists, tuples, dicts and sets element by element the same way.

This stops a submission that patches what tests use or returns an object that equals everything. It is not a
proof against code written to attack the grader itself (finding the guard and replacing it): the tests run in
the student's process, as with nbgrader. The sandbox bounds what such code can reach; the limits bound its cost.
"""

from __future__ import annotations

import ast
import secrets

# Modules snapshotted when the notebook mentions them (their sub-modules already imported come along).
OPTIONAL = {"numpy": ("numpy", "numpy.testing"), "torch": ("torch", "torch.testing")}

_SETUP = r"""
def __selfsup_setup(guard_name, eq_name, wanted, trusted_prefixes, marker):
    import builtins, importlib, linecache, sys, types
    modules = {}
    for name in ["builtins", "math", "operator", "cmath", *wanted]:
        try:
            modules[name] = importlib.import_module(name)
        except Exception:
            pass
    for name in list(sys.modules):
        if any(name.startswith(w + ".") for w in ("numpy.testing", "torch.testing")) and sys.modules[name]:
            modules[name] = sys.modules[name]
    classes = []
    if "torch" in modules:
        classes.append(modules["torch"].Tensor)
    if "numpy" in modules:
        classes.append(modules["numpy"].ndarray)
    saved = {name: (module, dict(vars(module))) for name, module in modules.items()}
    saved_classes = [(cls, {k: v for k, v in vars(cls).items() if k.startswith("__") or k in ("eq", "equal")})
                     for cls in classes]
    trusted = tuple(trusted_prefixes)
    builtin_kinds = (types.BuiltinFunctionType, types.WrapperDescriptorType, types.MethodDescriptorType,
                     types.MethodWrapperType, types.BuiltinMethodType)
    plain = (int, float, complex, bool, str, bytes, type(None))
    containers = (list, tuple, dict, set, frozenset)

    def _untrusted(value):
        for cls in type(value).__mro__:
            method = vars(cls).get("__eq__")
            if method is None:
                continue
            if isinstance(method, builtin_kinds):
                return False
            code = getattr(method, "__code__", None)
            return code is None or not code.co_filename.startswith(trusted)
        return False

    def strict_eq(a, b):
        if _untrusted(a) or _untrusted(b):
            return False
        if type(a) in containers or type(b) in containers:
            if type(a) is not type(b) and not (type(a) in (list, tuple) and type(b) in (list, tuple)):
                return a == b if not (type(a) in containers and type(b) in containers) else False
            if isinstance(a, dict):
                return a.keys() == b.keys() and all(strict_eq(a[k], b[k]) for k in a)
            if isinstance(a, (set, frozenset)):
                return all(type(x) in plain for x in (*a, *b)) and a == b
            if type(a) is not type(b):
                return a == b  # [1] == (1,) is False in Python; keep Python's answer
            return len(a) == len(b) and all(strict_eq(x, y) for x, y in zip(a, b))
        return a == b

    def guard():
        for name, (module, values) in saved.items():
            sys.modules[name] = module
            current = vars(module)
            for key, value in values.items():
                if current.get(key, guard) is not value:
                    current[key] = value
        for cls, values in saved_classes:
            for key, value in values.items():
                if vars(cls).get(key, guard) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
        for key, entry in list(linecache.cache.items()):
            if len(entry) > 2 and any(marker in line for line in entry[2]):
                del linecache.cache[key]

    builtins.__dict__[guard_name] = guard
    builtins.__dict__[eq_name] = strict_eq
    saved["builtins"][1][guard_name] = guard
    saved["builtins"][1][eq_name] = strict_eq

__selfsup_setup(GUARD, EQ, WANTED, TRUSTED, MARKER)
del __selfsup_setup
"""


def names() -> tuple[str, str]:
    """(guard name, strict-equality name), new for each kernel."""
    token = secrets.token_hex(6)
    return f"_grader_guard_{token}", f"_grader_strict_equal_{token}"


def setup_code(guard_name: str, eq_name: str, notebook_text: str, trusted: list[str], marker: str) -> str:
    """The code that snapshots the modules and installs the guard and the strict `==` (see the module doc)."""
    wanted = [m for key, mods in OPTIONAL.items() if key in notebook_text for m in mods]
    return (
        _SETUP.replace("GUARD", repr(guard_name), 1)
        .replace("EQ, ", f"{eq_name!r}, ", 1)
        .replace("WANTED", repr(wanted), 1)
        .replace("TRUSTED", repr(trusted), 1)
        .replace("MARKER", repr(marker), 1)
    )


def rewrite_asserts(source: str, eq_name: str) -> str:
    """`assert a == b, msg` becomes `assert EQ(a, b), msg`, in place (other lines and columns unchanged).

    Only an assert whose whole test is one `==` is rewritten; a source that does not parse is returned as is.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.split("\n")
    targets = [
        node.test
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
        and isinstance(node.test, ast.Compare)
        and len(node.test.ops) == 1
        and isinstance(node.test.ops[0], ast.Eq)
    ]
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()) + 1)
    data = source.encode()

    def at(line: int, col: int) -> int:
        return offsets[line - 1] + col

    # From the last to the first, so earlier offsets stay valid.
    for test in sorted(targets, key=lambda t: (t.lineno, t.col_offset), reverse=True):
        left = data[at(test.left.lineno, test.left.col_offset) : at(test.left.end_lineno, test.left.end_col_offset)]
        right_node = test.comparators[0]
        right = data[
            at(right_node.lineno, right_node.col_offset) : at(right_node.end_lineno, right_node.end_col_offset)
        ]
        start, end = at(test.lineno, test.col_offset), at(test.end_lineno, test.end_col_offset)
        data = data[:start] + f"{eq_name}((".encode() + left + b"), (" + right + b"))" + data[end:]
    return data.decode()
