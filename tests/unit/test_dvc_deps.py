"""dvc.yaml: every stage depends on the project code it runs, so `dvc repro` reruns it when that code changes."""

import ast
from pathlib import Path

import pytest
import yaml

from anigan.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]
STAGE_CODE = ("crawler", "preprocess", "train")  # the stage rooms; the anigan/ core is shared by all
# Modules a stage runs without importing them: the crawl's Scrapy worker is started as a subprocess.
ALSO_RUNS = {"crawl": ["crawler/worker.py"]}
# Modules a stage's command module imports for another command: train/cli.py also holds `anigan generate`.
NOT_RUN = {"train": {"train/generate.py"}}


def project_imports(path: Path) -> set[str]:
    """Repo-relative files of the stage rooms that `path` imports directly."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            file = Path(*name.split(".")).with_suffix(".py")
            if name.split(".")[0] in STAGE_CODE and (REPO / file).is_file():
                found.add(file.as_posix())
    return found


def code_of(stage: str) -> set[str]:
    """Every stage-room file the stage's command imports, directly or not."""
    module = COMMANDS[stage][0].split(":")[0]
    todo, seen = [Path(*module.split(".")).with_suffix(".py").as_posix(), *ALSO_RUNS.get(stage, [])], set()
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(project_imports(REPO / file))
    return {f for f in seen if not f.endswith("__init__.py")} - NOT_RUN.get(stage, set())


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_depends_on_the_code_it_imports(stage):
    deps = [d for d in STAGES[stage]["deps"] if isinstance(d, str) and "${" not in d]
    covered = lambda f: any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)  # noqa: E731
    assert sorted(f for f in code_of(stage) if not covered(f)) == []
