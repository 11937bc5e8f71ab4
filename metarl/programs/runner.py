"""The host-side search loop: compile once, run generations, track, checkpoint, resume.

Everything numerical happens in one jitted `generation` call; between calls this loop logs
to MLflow (on the tracker's background thread), writes checkpoints and updates the progress
bar. The next generation is dispatched before the current one is logged, so logging overlaps
with compute.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metarl.outer import (
    CheckpointError,
    StorageError,
    check_writable,
    load_checkpoint,
    make_outer_loop,
    population_mesh,
    save_checkpoint,
)
from metarl.outer.search_step import (
    Generation,
    NoValidMembers,
    SearchState,
    init_search_state,
    make_search_step,
)
from metarl.outer.settings import allowed_settings, loop_settings, needs_gradients
from metarl.outer.sharding import is_main_process
from metarl.programs.curves import fitness_figure
from metarl.programs.kind import build_kind
from metarl.spec import SearchSpec, flatten, spec_hash, spec_json
from metarl.tracking import SearchTracker, check_tracking_uri, default_tags
from metarl.tracking.tracker import local_folders

log = logging.getLogger(__name__)

CHECKPOINT_ROOT = Path(".metarl") / "checkpoints"
META_TEST_STREAM = 0  # generations count from 1, so this fold of the spec seed is free
SPEC_ARTIFACT = "spec.resolved.json"
HISTORY_KEYS = ("best_fitness", "gen_best_fitness", "mean_fitness", "median_fitness",
                "std_fitness")


@dataclass
class SearchResult:
    run_id: str
    generations: int
    best_fitness: float
    best: dict[str, Any]
    mean: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    status: str = "FINISHED"
    best_params: Any = None  # the raw meta-parameter pytrees behind `best` and `mean`
    mean_params: Any = None
    headline: dict[str, dict[str, float]] = field(default_factory=dict)  # what the CLI prints


class Search:
    """A search spec made runnable: its kind, its outer loop over the kind's problem, and the
    compiled outer step."""

    def __init__(self, spec: SearchSpec, max_devices: int | None = None):
        self.spec = spec
        self.program = build_kind(spec)
        outer = spec.outer
        self.problem = self.program.problem(outer.truncations,
                                            differentiable=needs_gradients(outer.algorithm))
        self.loop = make_outer_loop(outer.algorithm, self.program.initial_mean(),
                                    **self._loop_settings(max_devices))
        self._step = jax.jit(make_search_step(self.loop, self.problem))
        self._compiled: Any = None
        self.compile_seconds = 0.0

    def _loop_settings(self, max_devices: int | None) -> dict[str, Any]:
        outer = self.spec.outer
        settings = loop_settings(outer.algorithm, outer.model_dump(), ())  # checked in spec
        allowed = allowed_settings(outer.algorithm)
        if "mesh" in allowed:  # members spread over every device
            settings["mesh"] = population_mesh(outer.population_size, max_devices)
        if "sample" in allowed and self.program.sampler() is not None:
            settings["sample"] = self.program.sampler()
        # what the kind hands a loop that takes it (e.g. how PBT explores its hyperparameters)
        settings.update({k: v for k, v in self.program.loop_settings().items() if k in allowed})
        return settings

    def initial_state(self) -> SearchState:
        key = jax.random.PRNGKey(self.spec.seed)
        return init_search_state(self.loop, key, self.program.initial_mean(), self.problem)

    def state_template(self) -> SearchState:
        """The state's structure, shapes and dtypes, computing nothing (to restore into)."""
        return jax.eval_shape(self.initial_state)

    def mean(self, state: SearchState) -> Any:
        return self.loop.mean(state.loop)

    def compile(self, state: SearchState) -> None:
        t0 = time.perf_counter()
        self._compiled = self._step.lower(state).compile()
        self.compile_seconds = time.perf_counter() - t0

    def step(self, state: SearchState) -> tuple[SearchState, Generation]:
        if self._compiled is None:
            self.compile(state)
        return self._compiled(state)

    def env_steps(self, members: int) -> int:
        """Env steps of one outer step that scored `members` members (each a whole run, or
        one truncation of a run)."""
        return members * self.program.steps_per_candidate // self.spec.outer.truncations


def checkpoint_dir(run_id: str) -> Path:
    return CHECKPOINT_ROOT / run_id


class SearchRunner:
    """Runs a `Search` under a tracker; `run()` returns a `SearchResult`."""

    def __init__(self, search: Search, tracker: SearchTracker | None, progress: Any = None,
                 history: dict[str, list[float]] | None = None,
                 population: list[dict[str, Any]] | None = None):
        self.search = search
        self.spec = search.spec
        self.tracker = tracker
        self.progress = progress
        self.history = history or {k: [] for k in HISTORY_KEYS}
        # every member's fitness per generation, kept in checkpoints so a resumed run's
        # population table is complete
        self.population = population or []
        self.t_start = time.perf_counter()
        self._mean: tuple[int | None, Any] = (None, None)  # (generation, strategy mean)

    # -- the loop -----------------------------------------------------------------------------
    def run(self, state: SearchState, stop_after: int | None = None) -> SearchResult:
        """Run to the last generation (or `stop_after`). Whatever stops it, what was computed
        is checkpointed and tracked and the run gets its status before an error is raised."""
        self._state, self._saved = state, int(state.generation)
        error: BaseException | None = None
        try:
            status = self._generations(stop_after)
        except KeyboardInterrupt:
            status = "KILLED"
            log.warning("interrupted: keeping everything up to generation %d",
                        int(self._state.generation))
        except BaseException as err:  # noqa: BLE001 - raised again once the run is closed
            status, error = "FAILED", err
        # after a failed write, trying again would only fail again, half-way
        if int(self._state.generation) != self._saved and not isinstance(error, StorageError):
            try:
                self._checkpoint(self._state)
            except StorageError as err:
                status, error = "FAILED", error or err  # the first failure is the one to tell
        result = self._finish(self._state, status)
        if error is not None:
            raise error  # outside any handler: one traceback, no "during handling of" chain
        return result

    def _generations(self, stop_after: int | None) -> str:
        """The generations themselves; returns "FINISHED", or "KILLED" at `stop_after`."""
        total = self.spec.outer.generations
        if self.progress:
            self.progress.compiling()
        if self.search._compiled is None:
            self.search.compile(self._state)
        self._log_setup()
        pending = self.search.step(self._state) if int(self._state.generation) < total \
            else None
        status, t_prev = "FINISHED", time.perf_counter()
        while pending is not None:
            new_state, out = pending
            gen = int(new_state.generation)  # blocks until this generation is computed
            stop = gen >= total or (stop_after is not None and gen >= stop_after)
            pending = None if stop else self.search.step(new_state)
            if stop and gen < total:
                status = "KILLED"  # stopped early on request (stop_after)
            self._state = new_state  # finished: from here on, Ctrl-C keeps this generation
            now = time.perf_counter()
            out = jax.device_get(out)
            self._record(gen, out, now - t_prev, new_state)
            t_prev = now
            if np.all(out.invalid):
                raise self._no_valid_members(gen, len(out.invalid))
            self._meta_test(new_state, gen)
            if gen % self.spec.tracking.checkpoint_every == 0 or gen >= total:
                self._checkpoint(new_state)
        return status

    def _no_valid_members(self, gen: int, members: int) -> NoValidMembers:
        where = "" if self.tracker is None else f" (MLflow run {self.tracker.run_id}, FAILED)"
        return NoValidMembers(
            f"generation {gen - 1}: all {members} members scored NaN or inf, so none can be "
            f"ranked and the search stopped{where}. Usual causes: a search_space range that "
            "makes training diverge (lr too high), env_params the env cannot run with, or a "
            "task without return_range whose returns are not finite")

    # -- per generation -----------------------------------------------------------------------
    def _record(self, gen: int, out: Any, seconds: float, state: SearchState) -> None:
        self._mean = (gen, out.mean)
        fitness = np.asarray(out.fitness, np.float64)
        finite = fitness[np.isfinite(fitness)]
        stats = {
            "generation": gen - 1,
            "best_fitness": _finite_or_nan(state.best_fitness),  # -inf until a member scores
            "gen_best_fitness": _finite_stat(np.max, finite),
            "mean_fitness": _finite_stat(np.mean, finite),
            "median_fitness": _finite_stat(np.median, finite),
            "std_fitness": _finite_stat(np.std, finite),
            "invalid_members": int(np.sum(out.invalid)),
            "generation_seconds": seconds,
            "wall_seconds": time.perf_counter() - self.t_start,
            "env_steps_per_second": self.search.env_steps(len(fitness)) / max(seconds, 1e-9),
        }
        program = self.search.program
        stats.update(program.generation_metrics(out.info))
        stats.update({f"outer/{k}": float(v) for k, v in out.metrics.items()})
        for k in HISTORY_KEYS:
            self.history[k].append(stats[k])
        members = program.member_metrics(out.info)
        extra = dict(members)
        if out.population is not None:  # meta-gradients score the mean alone
            extra.update(program.population_columns(out.population))
        self.population.append({"generation": gen - 1, "fitness": fitness.tolist(),
                                "extra": {k: np.asarray(v).tolist() for k, v in extra.items()}})
        if stats["invalid_members"]:
            log.warning("generation %d: %d member(s) had NaN/inf fitness (ranked worst)",
                        gen - 1, stats["invalid_members"])
        if self.tracker is not None:
            # no point rather than a false one: MLflow stores -inf as -1.8e308
            self.tracker.log_metrics({k: v for k, v in stats.items() if np.isfinite(v)},
                                     step=gen - 1)
            self.tracker.log_population(gen - 1, fitness, extra)
            self._log_trials(gen - 1, out, fitness, members)
        if self.progress:
            self.progress.update(gen, stats)

    def _log_trials(self, gen: int, out: Any, fitness: np.ndarray,
                    member_metrics: dict[str, np.ndarray]) -> None:
        # a member is a candidate only when it was scored on whole runs: meta-gradients score
        # the mean alone, and PES particles score stretches of runs at staggered positions;
        # meta-tests report on those loops' mean
        if out.population is None or self.search.problem.truncations > 1:
            return
        members = range(len(fitness))
        if self.spec.tracking.trials == "best":
            members = [int(np.nanargmax(np.where(np.isfinite(fitness), fitness, -np.inf)))]
        for m in members:
            z = jax.tree.map(lambda x, m=m: np.asarray(x[m]), out.population)
            metrics = {"fitness": float(fitness[m])}
            metrics.update({k: float(v[m]) for k, v in member_metrics.items()})
            self.tracker.log_trial(f"g{gen:04d}-m{m:03d}", self.search.program.describe(z),
                                   metrics, tags={"metarl.generation": str(gen),
                                                  "metarl.member": str(m),
                                                  "metarl.trial": "candidate"})

    def _meta_test(self, state: SearchState, gen: int) -> None:
        """Evaluate the search mean (e.g. on held-out tasks) as a child run every K gens."""
        every = self.spec.tracking.meta_test_every
        meta_test = self.search.program.meta_test  # None: no held-out tasks
        due = gen >= self.spec.outer.generations or (every and gen % every == 0)
        if not due or meta_test is None or self.tracker is None:
            return
        # the same seeds at every meta-test: figures differ by the candidate, not by luck
        key = jax.random.fold_in(jax.random.PRNGKey(self.spec.seed), META_TEST_STREAM)
        metrics = meta_test(self._host_mean(state), key)
        self.tracker.log_metrics({f"meta_test/{k}": v for k, v in metrics.items()}, gen - 1)
        if self.progress:
            self.progress.meta_test(gen - 1, metrics)
        self.tracker.log_trial(f"mean@g{gen - 1:04d}", {"generation": gen - 1}, metrics,
                               tags={"metarl.trial": "mean-evaluation",
                                     "metarl.generation": str(gen - 1)})

    # -- setup, checkpoints, finish -----------------------------------------------------------
    def _log_setup(self) -> None:
        if self.tracker is not None:
            self.tracker.set_tags({"metarl.compile_seconds": f"{self.search.compile_seconds:.1f}",
                                   "metarl.generations": str(self.spec.outer.generations)})

    def _host_mean(self, state: SearchState) -> Any:
        """The strategy's mean as the generation handed it back; computing it here instead
        would be a JAX call queued behind the generation already dispatched."""
        gen, mean = self._mean
        if gen == int(state.generation):
            return mean
        return jax.device_get(self.search.mean(state))

    def _host_data(self, state: SearchState) -> dict[str, Any]:
        return {"generation": int(state.generation), "history": self.history,
                "population": self.population}

    def _checkpoint(self, state: SearchState) -> None:
        if self.tracker is None or not is_main_process():
            return
        gen = int(state.generation)
        if not np.isfinite(state.best_fitness):
            return  # no member has scored yet: nothing to resume from or to call best
        try:
            self._save_and_upload(state, gen)
        except OSError as err:  # disk full or folder gone mid-run: one clear line, no chain
            self.tracker.flush()  # what is queued still reaches MLflow before the run fails
            raise StorageError(
                f"could not save the checkpoint of generation {gen - 1}: "
                f"{err.filename or checkpoint_dir(self.tracker.run_id).absolute()}: "
                f"{err.strerror or err}. Tracking up to here is in MLflow run "
                f"{self.tracker.run_id} (FAILED); {self._resume_hint()}") from None
        self._saved = gen
        log.info("checkpoint at generation %d: %s", gen,
                 checkpoint_dir(self.tracker.run_id) / "latest.npz")

    def _resume_hint(self) -> str:
        if self._saved == 0:
            return "free some space and launch it again"
        return (f"free some space, then `metarl search resume {self.tracker.run_id}` carries "
                f"on after generation {self._saved - 1}")

    def _save_and_upload(self, state: SearchState, gen: int) -> None:
        """Upload the checkpoint (as `latest` and, for `metarl export --generation`, as this
        generation's), log what goes with it, wait until MLflow has all of it, and only then
        make it the local `latest.npz`: a search killed before that resumes from the previous
        checkpoint and logs these generations again, rather than from this one with their
        metrics lost."""
        folder = checkpoint_dir(self.tracker.run_id)
        snapshot = save_checkpoint(folder / f"gen_{gen:05d}.npz", state, self._host_data(state))
        staged = folder / "upload" / "latest.npz"
        try:
            staged.parent.mkdir(exist_ok=True)
            shutil.copyfile(snapshot, staged)
            self.tracker.log_artifact(str(staged), "checkpoints")  # copied at the call
            self.tracker.log_artifact(str(snapshot), "checkpoints")
        finally:
            staged.unlink(missing_ok=True)
        self._log_params_artifacts(state)
        if self.history["mean_fitness"]:
            self.tracker.log_figure(fitness_figure(self.history, self.spec.name),
                                    "learning_curve.png")
        mean = self._host_mean(state)
        for name, fig in self.search.program.figures(mean, gen).items():
            self.tracker.log_figure(fig, name)
        self._log_history_artifacts()
        if gen >= self.spec.outer.generations:
            self._log_member_runs()
        self.tracker.flush()
        os.replace(snapshot, folder / "latest.npz")  # only `latest` stays on local disk

    def _log_history_artifacts(self) -> None:
        """What the kind makes of the whole population table (e.g. a PBT lineage)."""
        for name, item in self.search.program.history_artifacts(self.population).items():
            if isinstance(item, str):
                self.tracker.log_text(item, name)
            else:
                self.tracker.log_figure(item, name)

    def _log_member_runs(self) -> None:
        """Child runs the kind makes of the whole population table: with the last
        generation's checkpoint, so they are logged once, complete, and (like every record
        of a generation) again only if that checkpoint never became `latest`."""
        for run in self.search.program.member_runs(self.population):
            self.tracker.log_trial(run.name, run.params, run.metrics, run.tags)

    def _log_params_artifacts(self, state: SearchState) -> None:
        program = self.search.program
        best = jax.device_get(state.best_params)
        mean = self._host_mean(state)
        for name, tree in (("best", best), ("mean", mean)):
            payload = {"generation": int(state.generation), "unit": _jsonable(tree),
                       **program.export_params(tree)}
            self.tracker.log_text(json.dumps(payload, indent=1), f"{name}_params.json")

    def _finish(self, state: SearchState, status: str) -> SearchResult:
        program = self.search.program
        mean = jax.device_get(self.search.mean(state))
        run_id = "" if self.tracker is None else self.tracker.run_id
        if self.tracker is not None:
            self.tracker.finish(status)
        if self.progress:
            self.progress.stop()
        # until a member scores, best_params is the start point: never report it as best
        scored = bool(np.isfinite(state.best_fitness))
        best = jax.device_get(state.best_params) if scored else None
        headline = {"best": program.headline(best) if scored else {},
                    "mean": program.headline(mean)}
        return SearchResult(run_id, int(state.generation), _finite_or_nan(state.best_fitness),
                            program.export_params(best) if scored else {},
                            program.export_params(mean), self.history, status, best, mean,
                            headline)


def _finite_or_nan(x: Any) -> float:
    x = float(x)
    return x if np.isfinite(x) else float("nan")


def _finite_stat(fn: Any, values: np.ndarray) -> float:
    """`fn(values)` of the finite values given, NaN (and no numpy warning) when there are
    none."""
    return float(fn(values)) if values.size else float("nan")


def _jsonable(tree: Any) -> Any:
    return jax.tree.map(lambda x: np.asarray(x).tolist(), tree)


def start_tracker(spec: SearchSpec, tracking_uri: str, spec_text: str) -> SearchTracker:
    check_tracking_uri(tracking_uri)
    tracker = SearchTracker.start(
        tracking_uri=tracking_uri, experiment=spec.tracking.experiment or spec.name,
        run_name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        params=flatten(spec.model_dump(mode="json")),
        tags={**default_tags(spec_hash(spec)), "metarl.kind": spec.kind,
              "metarl.search": spec.name},
        spec_text=spec_text)
    tracker.log_text(spec_json(spec), SPEC_ARTIFACT)
    return tracker


def restore(search: Search, run_id: str,
            tracking_uri: str) -> tuple[SearchState, dict[str, Any]]:
    """The latest checkpoint of `run_id`: from local disk, else from the run's artifacts."""
    from metarl.tracking import download_artifact

    local = checkpoint_dir(run_id) / "latest.npz"
    if not local.is_file():
        try:
            local = Path(download_artifact(tracking_uri, run_id, "checkpoints/latest.npz",
                                           str(checkpoint_dir(run_id))))
        except Exception as err:  # noqa: BLE001 - missing artifact or store error alike
            msg = (f"run {run_id} has no checkpoint to resume from (neither {local} nor the "
                   f"run's checkpoints/latest.npz): {err}")
            raise CheckpointError(msg) from None
    return load_checkpoint(local, search.state_template())


def check_local_folders() -> None:
    """Fail with `StorageError` now, before a run exists or anything compiles, if a folder
    the search will write to (checkpoints, unsent tracking, staged uploads) cannot be
    written."""
    if not is_main_process():
        return  # only the main process checkpoints and tracks
    check_writable(CHECKPOINT_ROOT, "checkpoints")
    for purpose, (folder, fix) in local_folders().items():
        check_writable(folder, purpose, fix)


def run_search(spec: SearchSpec, tracking_uri: str, spec_text: str, progress: Any = None,
               stop_after: int | None = None, search: Search | None = None) -> SearchResult:
    """Launch a new search: one MLflow parent run, checked reachable before compiling."""
    check_tracking_uri(tracking_uri)
    check_local_folders()
    search = search or Search(spec)  # builds envs: bad env params fail before a run exists
    tracker = start_tracker(spec, tracking_uri, spec_text) if is_main_process() else None
    runner = SearchRunner(search, tracker, progress)
    return runner.run(search.initial_state(), stop_after)


def load_run_spec(run_id: str, tracking_uri: str) -> SearchSpec:
    from metarl.spec import load_spec_data
    from metarl.tracking import download_artifact

    with tempfile.TemporaryDirectory(prefix="metarl-spec-") as tmp:  # reading writes nothing
        text = Path(download_artifact(tracking_uri, run_id, SPEC_ARTIFACT, tmp)).read_text()
    return load_spec_data(json.loads(text), f"run {run_id}: {SPEC_ARTIFACT}")


def resume_search(run_id: str, tracking_uri: str, progress: Any = None,
                  stop_after: int | None = None, search: Search | None = None) -> SearchResult:
    """Continue `run_id` from its latest checkpoint, in the same MLflow run. An already
    compiled `search` of the same spec may be passed to skip compiling again."""
    check_tracking_uri(tracking_uri)
    check_local_folders()
    spec = load_run_spec(run_id, tracking_uri)
    if search is None or spec_hash(search.spec) != spec_hash(spec):
        search = Search(spec)
    tracker = SearchTracker.attach(run_id, tracking_uri) if is_main_process() else None
    state, host = restore(search, run_id, tracking_uri)
    if tracker is not None:  # the table artifact is rewritten whole on flush
        for entry in host["population"]:
            tracker.log_population(entry["generation"], np.asarray(entry["fitness"]),
                                   {k: np.asarray(v) for k, v in entry["extra"].items()})
    runner = SearchRunner(search, tracker, progress, host["history"], host["population"])
    return runner.run(state, stop_after)
