"""A curriculum as an inner loop: recurrent PPO whose envs are moved to levels chosen by a
level sampler at every update, with `metarl.ppo.PPO`'s protocol (`init`, `step`, `score`,
`train`, `meta_objective`), so any search kind can train agents with it.

Methods (all at equal env steps: every update plays `num_envs x num_steps` steps):
* `dr`, domain randomisation: fresh generated levels, learned from, every update;
* `plr`, Prioritized Level Replay (Jiang et al. 2021): with probability `replay_prob`, replay
  buffer levels drawn from the replay distribution, else play fresh ones; learn from both;
* `robust_plr`, PLR-perp (Jiang et al. 2021, "Replay-Guided Adversarial Environment Design"):
  as `plr`, but fresh levels are only scored, never learned from;
* `accel` (Parker-Holder et al. 2022, "Evolving Curricula with Regret-Based Environment
  Design"): robust PLR in which a replay is followed, with probability `edit_rate`, by an
  update that plays edited copies of the levels just replayed, scores them without learning,
  and offers them to the buffer (one rollout per update, as every method).

Every update restarts all envs on the chosen levels, and envs reset to their *own* level
when an episode ends (the env's automatic reset keeps its params), so a replayed episode is
never sent to a random level. After training stretches (`step`), the agent is evaluated on
`eval_levels`: each env plays one episode from its start, and the score is the fraction of
episodes solved (envs with a `solved` notion, e.g. mazes) or the mean episode return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.curriculum import sampler as buffer
from metarl.curriculum.levels import LevelSpace
from metarl.curriculum.scores import level_figures, level_scores
from metarl.ppo.config import HParams
from metarl.rppo.train import METRIC_NAMES, Batch, RecurrentPPO, RecurrentTrainState

PyTree = Any

METHODS = ("dr", "plr", "robust_plr", "accel")


@dataclass(frozen=True)
class CurriculumConfig:
    """Static settings (changing one recompiles)."""

    method: str = "robust_plr"
    capacity: int = 256  # levels the buffer holds
    prioritization: str = "rank"  # rank or power
    score_function: str = "maxmc"  # pvl, maxmc (the default score_mix) or learned
    min_fill: float = 0.5  # no replay before the buffer is this full
    num_edits: int = 5  # ACCEL: edits per edited level
    eval_rollouts: int = 1  # rollouts per evaluation episode window
    eval_every: int = 0  # updates between evaluations (0: at the end of each `step`)


class CurriculumParams(NamedTuple):
    """The traced settings a curriculum search may move."""

    sampler: buffer.SamplerParams
    score_mix: jax.Array | float  # 0: PVL, 1: MaxMC
    edit_rate: jax.Array | float  # ACCEL: chance a replay is followed by edits


class CurriculumMeta(NamedTuple):
    """What a curriculum search hands the loop as `meta_params`: its curriculum settings, a
    learned level scorer (or None), and the agent's own meta-parameters (e.g. None)."""

    curriculum: CurriculumParams
    scorer: PyTree
    agent: PyTree


class CurriculumState(NamedTuple):
    agent: RecurrentTrainState
    sampler: buffer.SamplerState
    key: jax.Array
    last_eval: jax.Array  # (eval levels,) the latest evaluation's per-level score
    # updates played, learned from or not (the agent's own counter counts learning only)
    update: jax.Array
    edit_next: jax.Array  # () bool: ACCEL edits the levels just replayed in the next update

    @property
    def hparams(self) -> HParams:
        return self.agent.hparams


class CurriculumLoop:
    def __init__(self, agent: RecurrentPPO, space: LevelSpace, config: CurriculumConfig,
                 defaults: CurriculumParams, eval_levels: PyTree, solved: Any = None):
        if config.method not in METHODS:
            raise ValueError(f"unknown curriculum method {config.method!r}; allowed: {METHODS}")
        self.agent, self.space, self.curriculum = agent, space, config
        self.defaults = defaults
        self.eval_levels = eval_levels  # leading axis: levels
        self.solved = solved  # reward -> bool, or None: score by return
        self.config = agent.config
        self.default_env_params = agent.default_env_params
        self.num_envs = agent.config.num_envs

    # -- meta-parameters --------------------------------------------------------------------
    def split_meta(self, meta: PyTree) -> tuple[CurriculumParams, PyTree, PyTree]:
        if isinstance(meta, CurriculumMeta):
            return meta.curriculum, meta.scorer, meta.agent
        return self.defaults, None, meta

    # -- the pieces -------------------------------------------------------------------------
    def init(self, key: jax.Array, meta: PyTree = None, hparams: HParams | None = None,
             env_params: PyTree = None) -> CurriculumState:
        """A fresh agent on freshly generated levels and an empty buffer. The task's own
        `env_params` draw is not used: the curriculum chooses every env's level."""
        del env_params
        _, _, agent_meta = self.split_meta(meta)
        k_agent, k_levels, key = jax.random.split(key, 3)
        levels = self._generate(k_levels)
        agent = self.agent.init(k_agent, agent_meta, hparams, levels)
        template = jax.tree.map(lambda x: x[0], levels)
        n_eval = jax.tree.leaves(self.eval_levels)[0].shape[0]
        return CurriculumState(agent, buffer.init(template, self.curriculum.capacity), key,
                               jnp.zeros(n_eval, jnp.float32), jnp.zeros((), jnp.int32),
                               jnp.zeros((), bool))

    def update(self, state: CurriculumState, meta: PyTree = None
               ) -> tuple[CurriculumState, dict[str, jax.Array]]:
        """One update, one rollout of every env: fresh levels, replayed buffer levels, or
        (ACCEL, after a replay) edits of the levels just replayed (see the module
        docstring)."""
        params, scorer, agent_meta = self.split_meta(meta)
        key, k_choice, k_edit, k_step = jax.random.split(state.key, 4)
        args = (state, params, scorer, agent_meta, k_step)
        if self.curriculum.method == "dr":
            replay, edit = jnp.zeros((), bool), jnp.zeros((), bool)
            agent, sampler, metrics = self._fresh(*args)
        else:
            replay = self._replays(state.sampler, params, k_choice) & ~state.edit_next
            edit = state.edit_next
            # only ACCEL compiles the edit branch
            branches = [self._fresh, self._replay] + [self._edit] * (
                self.curriculum.method == "accel")
            branch = jnp.where(edit, len(branches) - 1, replay.astype(jnp.int32))
            agent, sampler, metrics = jax.lax.switch(branch, branches, *args)
        metrics = {**metrics, "replayed": replay.astype(jnp.float32),
                   "edited": edit.astype(jnp.float32)}
        edit_next = (self.curriculum.method == "accel") & replay & (
            jax.random.uniform(k_edit) < params.edit_rate)
        return state._replace(agent=agent, sampler=buffer.tick(sampler), key=key,
                              update=state.update + 1, edit_next=edit_next), metrics

    def step(self, state: CurriculumState, meta: PyTree = None, num_updates: int = 1
             ) -> tuple[CurriculumState, dict[str, jax.Array]]:
        """`num_updates` (static) updates, evaluated on `eval_levels` after every
        `eval_every` of them when that divides `num_updates`, else after the last: metrics
        are `(num_updates,)` each; `eval_score` and `eval_per_level` hold, at every update,
        the evaluation that follows it."""
        every = self.curriculum.eval_every
        if not every or every >= num_updates or num_updates % every:
            return self._stretch(state, meta, num_updates)
        state, metrics = jax.lax.scan(lambda s, _: self._stretch(s, meta, every), state, None,
                                      length=num_updates // every)
        return state, jax.tree.map(lambda x: x.reshape(num_updates, *x.shape[2:]), metrics)

    def _stretch(self, state: CurriculumState, meta: PyTree, num_updates: int
                 ) -> tuple[CurriculumState, dict[str, jax.Array]]:
        """`num_updates` updates, then one evaluation."""
        state, metrics = jax.lax.scan(lambda s, _: self.update(s, meta), state, None,
                                      length=num_updates)
        key, k_eval = jax.random.split(state.key)
        per_level = self.evaluate(state.agent, k_eval)
        state = state._replace(key=key, last_eval=per_level)
        metrics["eval_per_level"] = jnp.broadcast_to(per_level, (num_updates, *per_level.shape))
        metrics["eval_score"] = jnp.broadcast_to(per_level.mean(), (num_updates,))
        return state, metrics

    def train(self, key: jax.Array, meta: PyTree = None, hparams: HParams | None = None,
              env_params: PyTree = None) -> tuple[CurriculumState, dict[str, jax.Array]]:
        state = self.init(key, meta, hparams, env_params)
        return self.step(state, meta, self.config.num_updates)

    def score(self, metrics: dict[str, jax.Array]) -> jax.Array:
        """The evaluation score (solve rate or return on `eval_levels`), per update."""
        return metrics["eval_score"]

    def with_hparams(self, state: CurriculumState, hparams: HParams) -> CurriculumState:
        return state._replace(agent=state.agent._replace(hparams=hparams))

    def meta_objective(self, state: CurriculumState) -> jax.Array:
        return self.agent.meta_objective(state.agent)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, agent: RecurrentTrainState, key: jax.Array) -> jax.Array:
        """Per eval level: every env plays one episode from the level's start with the
        current policy; the fraction solved (or the mean return). Learns nothing."""
        n_levels = jax.tree.leaves(self.eval_levels)[0].shape[0]

        def one(level: PyTree, k: jax.Array) -> jax.Array:
            levels = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.num_envs, *x.shape)),
                                  level)
            s = self.agent.reset_envs(agent, k, levels, jnp.ones(self.num_envs, bool))
            _, batches = jax.lax.scan(lambda s, _: self.agent.collect(s), s, None,
                                      length=self.curriculum.eval_rollouts)
            reward = batches.traj.reward.reshape(-1, self.num_envs)
            done = batches.done.reshape(-1, self.num_envs) > 0
            return self._first_episode_score(reward, done)

        return jax.vmap(one)(self.eval_levels, jax.random.split(key, n_levels))

    def _first_episode_score(self, reward: jax.Array, done: jax.Array) -> jax.Array:
        """Mean over envs of each env's first episode: solved, or its return (unfinished
        episodes count as unsolved / their partial return)."""
        before_end = jnp.cumsum(done, 0) - done < 1  # steps up to and including the first end
        ret = jnp.where(before_end, reward, 0.0).sum(0)
        if self.solved is None:
            return ret.mean()
        solved = (before_end & done & self.solved(reward)).any(0)
        return solved.astype(jnp.float32).mean()

    # -- update branches --------------------------------------------------------------------
    def _generate(self, key: jax.Array) -> PyTree:
        return jax.vmap(self.space.generate)(jax.random.split(key, self.num_envs))

    def _replays(self, sampler: buffer.SamplerState, params: CurriculumParams,
                 key: jax.Array) -> jax.Array:
        ready = buffer.fill_fraction(sampler) >= self.curriculum.min_fill
        return ready & (jax.random.uniform(key) < params.sampler.replay_prob)

    def _play(self, agent: RecurrentTrainState, levels: PyTree, key: jax.Array,
              prior_best: jax.Array, params: CurriculumParams, scorer: PyTree
              ) -> tuple[RecurrentTrainState, Batch, jax.Array, jax.Array]:
        """Every env restarted on its level and one rollout collected: the agent, the batch,
        each level's score and best return."""
        agent = self.agent.reset_envs(agent, key, levels, jnp.ones(self.num_envs, bool))
        agent, batch = self.agent.collect(agent)
        figures = level_figures(batch, prior_best)
        scores = level_scores(figures, params.score_mix, scorer)
        return agent, batch, scores, jnp.maximum(prior_best, figures.max_return)

    def _fresh(self, state: CurriculumState, params: CurriculumParams, scorer: PyTree,
               agent_meta: PyTree, key: jax.Array) -> tuple:
        k_levels, k_play = jax.random.split(key)
        levels = self._generate(k_levels)
        unseen = jnp.full(self.num_envs, -jnp.inf)
        agent, batch, scores, best = self._play(state.agent, levels, k_play, unseen, params,
                                                scorer)
        sampler = state.sampler
        if self.curriculum.method != "dr":
            sampler, _ = buffer.insert(sampler, levels, scores, best)
        if self.curriculum.method in ("robust_plr", "accel"):
            return agent, sampler, self._played_metrics(batch, scores, learned=False)
        agent, metrics = self.agent.learn(agent, batch, agent_meta)
        return agent, sampler, {**metrics, **self._played_metrics(batch, scores, True)}

    def _replay(self, state: CurriculumState, params: CurriculumParams, scorer: PyTree,
                agent_meta: PyTree, key: jax.Array) -> tuple:
        k_sample, k_play = jax.random.split(key)
        sampler, index = buffer.sample(state.sampler, params.sampler, k_sample, self.num_envs,
                                       self.curriculum.prioritization)
        levels = jax.tree.map(lambda x: x[index], sampler.levels)
        agent, batch, scores, best = self._play(state.agent, levels, k_play,
                                                sampler.max_return[index], params, scorer)
        sampler = buffer.update(sampler, index, scores, best)
        agent, metrics = self.agent.learn(agent, batch, agent_meta)
        return agent, sampler, {**metrics, **self._played_metrics(batch, scores, True)}

    def _edit(self, state: CurriculumState, params: CurriculumParams, scorer: PyTree,
              agent_meta: PyTree, key: jax.Array) -> tuple:
        """ACCEL: `num_edits` edits of each level the envs just replayed (their params), played
        and scored without learning, and offered to the buffer."""
        del agent_meta
        k_edits, k_play = jax.random.split(key)
        edits = jnp.full(self.num_envs, self.curriculum.num_edits, jnp.int32)
        edited = jax.vmap(self.space.mutate)(jax.random.split(k_edits, self.num_envs),
                                             state.agent.env_params, edits)
        unseen = jnp.full(self.num_envs, -jnp.inf)
        agent, batch, scores, best = self._play(state.agent, edited, k_play, unseen, params,
                                                scorer)
        sampler, _ = buffer.insert(state.sampler, edited, scores, best)
        return agent, sampler, self._played_metrics(batch, scores, learned=False)

    def _played_metrics(self, batch: Batch, scores: jax.Array, learned: bool
                        ) -> dict[str, jax.Array]:
        """Per-update figures of what was played; a step that learned nothing reports the
        agent's loss figures as 0 (its `learned` is 0)."""
        out = {"episode_return": batch.episodes.mean_return,
               "episodes": batch.episodes.finished, "level_score": scores.mean(),
               "learned": jnp.asarray(learned, jnp.float32)}
        if not learned:
            out.update({name: jnp.zeros(()) for name in METRIC_NAMES if name not in out})
        return out
