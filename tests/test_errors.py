"""Every exception flask_sente raises on purpose is a SenteError that also inherits the
builtin matching its meaning, and the tree in ``errors.py``'s docstring is the real one."""

from __future__ import annotations

import ast
import builtins
import inspect
import re
from pathlib import Path

import flask_sente
from flask_sente import errors

PACKAGE = Path(flask_sente.__file__).parent

#: (module, function, exception): the builtin raises that are part of a Python protocol or
#: never leave the module, each with the reason.
ALLOWED = {
    # a module's __getattr__ must raise AttributeError (PEP 562)
    ("__init__.py", "__getattr__", "AttributeError"),
    # gunicorn closes a taken-over connection quietly when the WSGI app stops iteration
    ("route.py", "__call__", "StopIteration"),
    # msgpack extension readers: loads() turns whatever they raise into UnpackError
    ("msgpack_reader.py", "_extension", "ValueError"),
    # a value type refuses a bad value as its builtin base does (str, like int("x"))
    ("values.py", "__new__", "ValueError"),
}

BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def builtin_raises(path: Path) -> list[tuple[str, str, str, int]]:
    """Every ``raise Builtin(...)`` / ``raise Builtin`` in a module, with its function."""
    found = []

    class Visitor(ast.NodeVisitor):
        def __init__(self) -> None:
            self.functions: list[str] = ["<module>"]

        def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
            self.functions.append(node.name)
            self.generic_visit(node)
            self.functions.pop()

        visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

        def visit_Raise(self, node: ast.Raise) -> None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in BUILTIN_EXCEPTIONS:
                found.append((path.name, self.functions[-1], exc.id, node.lineno))
            self.generic_visit(node)

    Visitor().visit(ast.parse(path.read_text(), str(path)))
    return found


def test_the_walk_finds_builtin_raises(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    raise ValueError('x')\n\ndef g():\n    raise RuntimeError\n"
        "def h():\n    raise KeyError('k') from None\n"
        "def i():\n    raise SenteError('fine')\n"
    )
    assert [(fn, exc) for _, fn, exc, _ in builtin_raises(sample)] == [
        ("f", "ValueError"),
        ("g", "RuntimeError"),
        ("h", "KeyError"),
    ]


def test_the_library_raises_no_builtin_exception_on_purpose() -> None:
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {fn}() raises {exc}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, fn, exc, line in builtin_raises(path)
        if (module, fn, exc) not in ALLOWED
    ]
    assert not offending, "raise a SenteError subclass instead:\n" + "\n".join(offending)


def test_the_allowed_exceptions_are_still_there() -> None:
    present = {
        (module, fn, exc)
        for path in PACKAGE.rglob("*.py")
        for module, fn, exc, _ in builtin_raises(path)
    }
    assert present >= ALLOWED, f"no longer raised, drop from ALLOWED: {ALLOWED - present}"


def test_the_docstring_tree_is_the_class_tree() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == errors.__name__
    }
    drawn = dict(re.findall(r"\+-- (\w+)\s+(?:\(also (\w+)\))?", errors.__doc__ or ""))
    assert set(drawn) == set(classes) - {"SenteError"}
    for name, builtin in drawn.items():
        cls = classes[name]
        assert issubclass(cls, errors.SenteError), name
        if builtin:
            assert issubclass(cls, getattr(builtins, builtin)), (name, builtin)
        assert name in flask_sente.__all__, f"{name} is not exported by flask_sente"
