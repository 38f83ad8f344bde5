"""dvc.yaml: every stage depends on all the project code its command runs, and on nothing else.

The code a stage runs is found the way Python finds it: a fresh interpreter imports the stage's
command module, every module of the stage packages it loads (so a registry that imports by name,
or a worker started as a subprocess, is included), and every project module those import, at the
top or inside a function. What ends up in `sys.modules` from this repository is the stage's code.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from anigan.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
# The dispatcher that starts every command: it decides which command runs, not what it writes.
NOT_STAGE_CODE = {"anigan/cli.py", "anigan/__main__.py", "anigan/__init__.py"}

PROBE = r"""
import ast, importlib, json, pkgutil, sys
from pathlib import Path

repo = Path(sys.argv[1]).resolve()
package = sys.argv[3]  # the stage's own package: every module of it counts once it is loaded


def project_files():
    found = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        # (a few compiled modules report a bare file name: not ours)
        if file and Path(file).is_absolute() and Path(file).resolve().is_relative_to(repo) and ".venv" not in Path(file).parts:
            found[name] = Path(file).resolve()
    return found


def imports_in(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


importlib.import_module(sys.argv[2])
done = set()
while True:
    todo = {n: f for n, f in project_files().items() if n not in done}
    if not todo:
        break
    for name, file in todo.items():
        done.add(name)
        for wanted in imports_in(file):
            top = wanted.split(".")[0]
            if (repo / top).is_dir() and top != "tests":
                try:
                    importlib.import_module(wanted)
                except ImportError:
                    pass  # `from package import name` where name is not a module
        if file.name == "__init__.py" and (name == package or name.startswith(package + ".")):
            for info in pkgutil.iter_modules([str(file.parent)]):
                importlib.import_module(f"{name}.{info.name}")
print(json.dumps(sorted(f.relative_to(repo).as_posix() for f in project_files().values())))
"""


def stage_code(stage: str) -> set[str]:
    """Repository files the stage's command runs (see the module docstring)."""
    module = COMMANDS[stage][0].split(":")[0]
    package = module.rpartition(".")[0]
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO), module, package], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout)) - NOT_STAGE_CODE


def code_deps(stage: str) -> list[str]:
    deps = [d for d in STAGES[stage]["deps"] if isinstance(d, str) and "${" not in d]
    return [d.rstrip("/") for d in deps]


def covered(file: str, deps: list[str]) -> bool:
    return any(file == d or file.startswith(d + "/") for d in deps)


@pytest.fixture(scope="module", params=sorted(STAGES))
def stage(request):
    return request.param, stage_code(request.param)


def test_each_stage_depends_on_all_the_code_it_runs(stage):
    name, code = stage
    assert sorted(f for f in code if not covered(f, code_deps(name))) == []


def test_each_code_dependency_is_code_the_stage_runs(stage):
    """A dependency the stage does not run would rerun it for nothing (an edit to `anigan doctor`, say)."""
    name, code = stage
    code_like = [d for d in code_deps(name) if d.endswith(".py") or (REPO / d).is_dir()]
    assert [d for d in code_like if not any(covered(f, [d]) for f in code)] == []
