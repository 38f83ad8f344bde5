"""What every stage command receives from the `anigan` group: the params file and the -S overrides.

Stage `cli.py` modules import this, never `anigan.cli`: the group imports the stage commands
(lazily), so the stages importing the group back would make a cycle.
"""

from __future__ import annotations

from typing import Any

import click

from anigan.params import Params, load_params


class AniganContext:
    """What the group passes to every command: the params file and the -S overrides."""

    def __init__(self, params_path: str, overrides: dict[str, Any]) -> None:
        self.params_path = params_path
        self.overrides = overrides

    def params(self, **options: Any) -> Params:
        """Load params, then apply -S overrides, then this command's own options (those not None)."""
        merged = dict(self.overrides)
        merged.update({k: v for k, v in options.items() if v is not None})
        return load_params(self.params_path, merged)


pass_anigan = click.make_pass_decorator(AniganContext)
