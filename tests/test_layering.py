"""The packages import one way: ``storage <- mirror <- api <- cli``, the simulator apart.

- ``storage`` (tables, engines, the writer, reads) imports none of the others;
- ``mirror`` (the sync engine) imports ``storage`` only;
- ``api`` (the aiohttp application) imports ``storage`` and ``mirror``;
- ``cli`` (the composition root: the commands, ``serve``, ``demo``) may import them all;
- ``simulator`` (a local Booxi) imports none of them, and only ``cli`` and the tests
  import it.

Every import counts, at any depth: inside functions, under ``if TYPE_CHECKING:``, and
``importlib.import_module("...")`` with a literal name. No module is named after a
standard-library module either.
"""

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("storage", "mirror", "api", "cli", "simulator")
FORBIDDEN = {
    "storage": {"mirror", "api", "cli", "simulator"},
    "mirror": {"api", "cli", "simulator"},
    "api": {"cli", "simulator"},
    "cli": set(),
    "simulator": {"storage", "mirror", "api", "cli"},
}
# Modules allowed a standard-library name for now (none).
PENDING_RENAMES: set[str] = set()


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                base = package.split(".")
                module = ".".join([*base[: len(base) - node.level + 1], *filter(None, [module])])
            if module:
                yield node.lineno, module
            else:  # ``from .. import name``: the names are the modules
                for alias in node.names:
                    yield node.lineno, alias.name
        elif (
            isinstance(node, ast.Call)
            and _called_name(node.func) in {"importlib.import_module", "import_module"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def violations(root: Path) -> list[str]:
    """Every import against the direction: ``file:line: package must not import module``."""
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in sorted(imports(path, root)):
                if module.split(".")[0] in forbidden:
                    where = path.relative_to(root).as_posix()
                    found.append(f"{where}:{line}: {package} must not import {module}")
    return found


def test_packages_import_in_one_direction() -> None:
    found = violations(ROOT)

    assert not found, "imports against storage <- mirror <- api <- cli:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (  # what mirror/runtime.py did before cli/ existed
            "mirror/runtime.py",
            "async def serve():\n    from api.app import create_app\n",
            "mirror/runtime.py:2: mirror must not import api.app",
        ),
        (
            "storage/models.py",
            "import typing\nif typing.TYPE_CHECKING:\n    from mirror.config import C\n",
            "storage/models.py:3: storage must not import mirror.config",
        ),
        (
            "api/app.py",
            "import cli.main as m\n",
            "api/app.py:1: api must not import cli.main",
        ),
        (
            "simulator/app.py",
            "import importlib\nimportlib.import_module('storage.models')\n",
            "simulator/app.py:2: simulator must not import storage.models",
        ),
        (
            "mirror/poller.py",
            "from storage.writer import Writer\nfrom mirror.client import BooxiClient\n",
            None,
        ),
        (
            "mirror/sub/deep.py",
            "from .. import audit\nfrom .near import x\nfrom . import y\n",
            None,
        ),
    ],
    ids=["function-level", "type-checking", "import-as", "import_module", "allowed", "relative"],
)
def test_layering_check_catches_a_reverse_import(
    tmp_path: Path, path: str, source: str, expected: str | None
) -> None:
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(source)

    assert violations(tmp_path) == ([expected] if expected else [])


_IMPORT_ALL = """
import importlib, json, pkgutil, sys
first = {first!r}
for name in first:
    importlib.import_module(name)
after_first = sorted(sys.modules)
for name in first:
    package = sys.modules[name]
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        if module.name.startswith("storage.migrations.") or module.name.endswith(".__main__"):
            continue  # scripts: Alembic runs the migration ones, a __main__ runs a program
        importlib.import_module(module.name)
print(json.dumps({{"first": after_first, "all": sorted(sys.modules)}}))
"""


@pytest.mark.parametrize(
    "packages",
    [("mirror", "storage"), ("storage",), ("api",), ("simulator",)],
    ids=lambda p: "+".join(p),
)
def test_importing_a_layer_loads_nothing_above_it(packages: tuple[str, ...]) -> None:
    """``python -c "import mirror, storage"`` (then every module of theirs) loads no module
    of ``api``, ``cli`` or the simulator; likewise for storage alone, ``api`` and the
    simulator."""
    forbidden = set.union(*(FORBIDDEN[p] for p in packages)) - set(packages)
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL.format(first=list(packages))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)

    for stage in ("first", "all"):
        above = [m for m in loaded[stage] if m.split(".")[0] in forbidden]
        assert above == [], f"importing {', '.join(packages)} ({stage}) loaded {above}"
    assert {m.split(".")[0] for m in loaded["all"]} >= set(packages)


def test_no_module_is_named_after_a_standard_library_module() -> None:
    shadowing = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            name = path.stem if path.suffix == ".py" else path.name if path.is_dir() else ""
            if name in sys.stdlib_module_names:
                shadowing.add(path.relative_to(ROOT).as_posix())

    assert shadowing == PENDING_RENAMES, "named after a standard-library module (rename it)"
