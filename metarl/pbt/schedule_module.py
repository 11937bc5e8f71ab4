"""`metarl export` of a `pbt` search: the best member's hyperparameter schedule as a Python
module that replays it in a plain run of the same inner loop (PPO for `algorithm = "ppo"`).

The module holds only literals (`SCHEDULE`, `HPARAMS`, `INNER`, `TASKS`, `PROVENANCE`), so it
can be read back with `ast.literal_eval` without running it; `hparams_at(interval)` and
`train(...)` use metarl to replay the schedule: a fresh run, the schedule's values set in its
state at the start of every interval (hyperparameters are traced values of the state, so this
compiles once)."""

from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any

from metarl.export.writer import stamped, write_source

_BODY = '''

def hparams_at(interval: int) -> dict[str, float]:
    """The hyperparameters of `interval` (0-based); past the intervals the search trained,
    the last ones it trained with."""
    return {**HPARAMS, **{name: values[min(max(interval, 0), len(values) - 1)]
                          for name, values in SCHEDULE.items() if values}}


def train(seed: int = 0, task: int = 0):
    """Replay the schedule on `TASKS[task]`: one run of the `INNER` loop, `INTERVALS`
    intervals, the hyperparameters of each set before it starts. Returns the final training
    state and the per-update score curve (mean episode return for RL loops)."""
    import jax
    import jax.numpy as jnp

    from metarl.ppo import HParams
    from metarl.spec.inner import INNER_SECTIONS
    from metarl.spec.schema import Task

    section = INNER_SECTIONS[INNER["algorithm"]].model_validate(INNER)
    loop = section.build_task(Task.model_validate(TASKS[task]))
    updates = loop.config.num_updates // INTERVALS
    step = jax.jit(loop.step, static_argnums=2)
    state = jax.jit(loop.init)(jax.random.PRNGKey(seed), None, HParams(**hparams_at(0)))
    curves = []
    for interval in range(INTERVALS):
        state = state._replace(hparams=HParams(**hparams_at(interval)).as_arrays())
        state, metrics = step(state, None, updates)
        curves.append(loop.score(metrics))
    return state, jnp.concatenate(curves)
'''


def render_schedule(schedule: dict[str, list[float]], intervals: int,
                    hparams: dict[str, float], inner: dict[str, Any],
                    tasks: list[dict[str, Any]], provenance: dict[str, Any]) -> str:
    """The module's source: `schedule` covers the first of a run's `intervals` (all of them
    unless the search was stopped early)."""
    lines = [f'"""A PBT hyperparameter schedule exported by metarl (run '
             f'{provenance.get("run_id", "?")}, search {provenance.get("search", "?")}).',
             "",
             "SCHEDULE[name][i] is the value of hyperparameter `name` in interval i of a run",
             "(each interval: a task's inner updates / INTERVALS; intervals past the schedule",
             "keep its last values); HPARAMS are the other hyperparameters.",
             "`train()` replays it with metarl; the literals need nothing to read.",
             '"""', "",
             f"PROVENANCE = {pprint.pformat(provenance, width=96, sort_dicts=False)}",
             f"INTERVALS = {intervals}",
             f"SCHEDULE = {pprint.pformat(schedule, width=96, sort_dicts=False)}",
             f"HPARAMS = {pprint.pformat(hparams, width=96, sort_dicts=False)}",
             f"INNER = {pprint.pformat(inner, width=96, sort_dicts=False)}",
             f"TASKS = {pprint.pformat(tasks, width=96, sort_dicts=False)}"]
    return "\n".join(lines) + "\n" + _BODY


def write_schedule(path: str | Path, schedule: dict[str, list[float]], intervals: int,
                   hparams: dict[str, float], inner: dict[str, Any],
                   tasks: list[dict[str, Any]], provenance: dict[str, Any]) -> Path:
    return write_source(path, render_schedule(schedule, intervals, hparams, inner, tasks,
                                              stamped(provenance)))
