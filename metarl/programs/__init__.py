"""Search programs: one module per search kind, wiring envs, inner loop, learned component
and outer loop together."""

from __future__ import annotations

from typing import Any

from metarl.spec.schema import SearchSpec


def build_program(spec: SearchSpec) -> Any:
    """The search program for `spec.kind`. Needs no file: everything a spec refers to (a
    task suite, a `module:` rule) was read into it by `metarl.spec.load_spec`."""
    if spec.kind == "hparams":
        from metarl.programs.hparams import HParamSearch

        return HParamSearch(spec)
    if spec.kind == "update_rule":
        from metarl.programs.update_rule import UpdateRuleSearch

        return UpdateRuleSearch(spec)
    raise ValueError(f"unknown search kind {spec.kind!r}")
