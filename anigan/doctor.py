"""`anigan doctor`: is this installation able to run every stage? One line per check, a fix for each failure.

The heavy libraries are imported inside the checks (never at module load), so a broken
install is reported as a failed check instead of an import crash.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from anigan.params import Params

PACKAGES = ("anigan", "torch", "torchvision", "opencv-python-headless", "pillow", "numpy", "animeface", "scrapy", "dvc", "dvclive")


@dataclass(frozen=True)
class Check:
    """The outcome of one check: `fix` says in one line what to do when it failed."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _major(version: str) -> int:
    return int(version.split(".")[0])


def check_python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, sys.version.split()[0], "use Python 3.11 or newer (uv picks it from .python-version or PATH)")


def check_packages() -> Check:
    found = {name: _version(name) for name in PACKAGES}
    missing = [n for n, v in found.items() if v is None]
    detail = ", ".join(f"{n} {v}" for n, v in found.items() if v)
    return Check("packages", not missing, detail + (f"; missing: {', '.join(missing)}" if missing else ""), "run `uv sync` in the repo")


def check_pillow() -> Check:
    from preprocess.faces import selfcheck

    ok = selfcheck.pillow_works_with_animeface()
    detail = f"Pillow {selfcheck.pillow_version()}" + ("" if ok else ": animeface finds no faces with Pillow 12+")
    return Check("pillow", ok, detail, selfcheck.PILLOW_FIX)


def check_opencv() -> Check:
    try:
        cv2 = importlib.import_module("cv2")
    except ImportError as e:
        return Check("opencv", False, f"cannot import cv2: {e}", "run `uv sync`")
    ok = hasattr(cv2, "CascadeClassifier")
    return Check("opencv", ok, f"OpenCV {cv2.__version__}" + ("" if ok else ": no CascadeClassifier (OpenCV 5?)"), "run `uv sync` (the lock pins opencv<5)")


def check_torch() -> Check:
    try:
        torch = importlib.import_module("torch")
        torchvision = importlib.import_module("torchvision")
        torchvision.ops.nms  # noqa: B018 - touching it fails when torch and torchvision do not match
    except Exception as e:  # a mismatched pair fails in many ways; all of them mean the same fix
        return Check("torch", False, f"torch/torchvision do not import together: {e}", "run `uv sync` (the lock pins a matching pair)")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        device = f"cuda ({names})"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps"
    else:
        device = "cpu (no GPU found: training works, slowly)"
    return Check("torch", True, f"torch {torch.__version__}, torchvision {torchvision.__version__}; device: {device}")


def check_animeface() -> Check:
    """Ask animeface to find the one face of a stored test picture: the whole offline pipeline depends on this."""
    from preprocess.faces import selfcheck

    try:
        found = selfcheck.faces_in_test_picture()
    except Exception as e:
        return Check("animeface", False, f"animeface failed: {e}", selfcheck.PILLOW_FIX)
    ok = found >= 1
    return Check("animeface", ok, f"found {found} face(s) on a drawn test face", "animeface sees nothing: " + selfcheck.PILLOW_FIX)


def check_cascade(params: Params) -> Check:
    path = params.faces.cascade_path
    required = params.faces.detector == "cascade"
    if path is None:
        detail = "no faces.cascade_path configured" + (" but faces.detector is cascade" if required else " (only needed for faces.detector: cascade)")
        return Check("cascade", not required, detail, "set faces.cascade_path to an lbpcascade_animeface.xml", required=required)
    try:
        cv2 = importlib.import_module("cv2")
        loaded = Path(path).is_file() and not cv2.CascadeClassifier(str(path)).empty()
    except Exception:
        loaded = False
    return Check("cascade", loaded, f"{path}: " + ("loads" if loaded else "missing or not a cascade"), "point faces.cascade_path at a readable cascade XML", required=required)


def check_dvc() -> Check:
    exe = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return Check("dvc", False, f"dvc not runnable: {e}", "run `uv sync`, then use `uv run dvc ...`")
    return Check("dvc", True, f"dvc {out}")


def run_checks(params: Params) -> list[Check]:
    """Run every check in order; none of them raises."""
    checks: list[Callable[[], Check]] = [
        check_python,
        check_packages,
        check_pillow,
        check_opencv,
        check_torch,
        check_animeface,
        lambda: check_cascade(params),
        check_dvc,
    ]
    return [c() for c in checks]


@click.command("doctor")
@click.pass_context
def doctor_command(ctx: click.Context) -> None:
    """Check the installation: versions, torch device, animeface with this Pillow, cascade, DVC.

    Exits non-zero when something needed is broken, printing the fix.
    """
    params = ctx.obj.params()
    results = run_checks(params)
    for r in results:
        mark = click.style("ok  ", fg="green") if r.ok else click.style("FAIL", fg="red") if r.required else click.style("note", fg="yellow")
        click.echo(f"{mark} {r.name:<9} {r.detail}")
        if not r.ok and r.fix:
            click.echo(f"     fix: {r.fix}")
    broken = [r.name for r in results if not r.ok and r.required]
    if broken:
        raise click.ClickException(f"broken: {', '.join(broken)}")
