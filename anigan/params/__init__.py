"""params.yaml, loaded once into frozen dataclasses: one section per stage.

Usage: `params = load_params("params.yaml", overrides={"lr": 0.001})`, then `params.train.lr`.

The settings users sweep most have short top-level names (`lr`, `iterations`, `test_ratio`) so
that `dvc exp run -S lr=0.0001` works; they live only at the top level of params.yaml and are
folded into their section here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from anigan.params.crawl import CrawlParams
from anigan.params.dedupe import DedupeParams
from anigan.params.demo import DemoParams
from anigan.params.evaluate import EvaluateParams
from anigan.params.faces import FacesParams
from anigan.params.paths import PathsParams
from anigan.params.schema import ParamsError, build_section, unknown_key_error
from anigan.params.split import SplitParams
from anigan.params.train import TrainParams

__all__ = ["Params", "ParamsError", "load_params", "parse_override", "SHORT_NAMES", "DEFAULT_PATH"]

DEFAULT_PATH = "params.yaml"

# short top-level name -> (section, key)
SHORT_NAMES: dict[str, tuple[str, str]] = {
    "lr": ("train", "lr"),
    "iterations": ("train", "iterations"),
    "test_ratio": ("split", "test_ratio"),
}


@dataclasses.dataclass(frozen=True)
class Params:
    paths: PathsParams = dataclasses.field(default_factory=PathsParams)
    demo: DemoParams = dataclasses.field(default_factory=DemoParams)
    crawl: CrawlParams = dataclasses.field(default_factory=CrawlParams)
    faces: FacesParams = dataclasses.field(default_factory=FacesParams)
    dedupe: DedupeParams = dataclasses.field(default_factory=DedupeParams)
    split: SplitParams = dataclasses.field(default_factory=SplitParams)
    train: TrainParams = dataclasses.field(default_factory=TrainParams)
    evaluate: EvaluateParams = dataclasses.field(default_factory=EvaluateParams)


SECTIONS: dict[str, type] = {f.name: typing.get_type_hints(Params)[f.name] for f in dataclasses.fields(Params)}


def parse_override(text: str) -> tuple[str, Any]:
    """`"train.lr=0.001"` -> ("train.lr", 0.001); the value is read as YAML, like DVC's -S."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ParamsError(f"{text!r}: an override is KEY=VALUE, e.g. lr=0.0001 or crawl.limit=50")
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def _fold(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Merge the file's mapping and dotted overrides into {section: {key: value}}."""
    sections: dict[str, dict[str, Any]] = {}
    for name, values in raw.items():
        if name in SHORT_NAMES:
            section, key = SHORT_NAMES[name]
            if key in (raw.get(section) or {}):
                raise ParamsError(f"{name} and {section}.{key} are both set: keep only the top-level {name}")
            sections.setdefault(section, {})[key] = values
        elif name in SECTIONS:
            if values is not None and not isinstance(values, Mapping):
                raise ParamsError(f"{name}: must be a mapping of keys to values, got {values!r}")
            sections.setdefault(name, {}).update(values or {})
        else:
            raise unknown_key_error(name, list(SECTIONS) + list(SHORT_NAMES))
    for dotted, value in overrides.items():
        if dotted in SHORT_NAMES:
            section, key = SHORT_NAMES[dotted]
        else:
            section, _, key = dotted.partition(".")
            if section not in SECTIONS or not key:
                raise unknown_key_error(dotted, list(SECTIONS) + list(SHORT_NAMES))
        sections.setdefault(section, {})[key] = value
    return sections


def load_params(path: str | Path | None = DEFAULT_PATH, overrides: Mapping[str, Any] | None = None) -> Params:
    """Read params.yaml (defaults for what it leaves out) and apply dotted overrides.

    `path=None`, or the default path when it does not exist, means all defaults.
    """
    raw: Any = {}
    if path is not None:
        p = Path(path)
        if p.exists():
            try:
                raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as e:
                raise ParamsError(f"{p}: not valid YAML: {e}") from None
            if not isinstance(raw, Mapping):
                raise ParamsError(f"{p}: must be a mapping of sections, got {type(raw).__name__}")
        elif str(path) != DEFAULT_PATH:
            raise ParamsError(f"{p}: params file not found")
    sections = _fold(raw, overrides or {})
    return Params(**{name: build_section(cls, name, sections.get(name)) for name, cls in SECTIONS.items()})
