"""PBT as an inner loop (`[inner] algorithm = "pbt"`): a population of agents of any
PPO-family loop (PPO, recurrent PPO, RL²) trained together, exploiting and exploring every
`interval` updates (Jaderberg et al. 2017), as one pure function of a state pytree. It has the
pieces every inner loop has (`init`, `update`, `step`, `score`, `train`, `meta_objective`), so
any search kind can train PBT-tuned agents: an update-rule search whose fitness is what a PBT
population reaches with the rule, say.

The agents' states are vmapped; the exploit/explore step (`metarl.pbt.population`) is the one
the `pbt` search kind uses. The population's score per update is its members' mean return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.pbt.explore import Explorer, copied, sample_prior
from metarl.pbt.population import exploit_and_explore
from metarl.ppo.config import HParams

PyTree = Any


@dataclass(frozen=True)
class PopulationConfig:
    """What callers read of an inner loop's config: updates per run and env steps per update
    (all members together); `agent` is the agents' own config."""

    agent: Any
    population: int
    interval: int

    @property
    def num_updates(self) -> int:
        return self.agent.num_updates

    @property
    def batch_size(self) -> int:
        return self.agent.batch_size * self.population


class PopulationState(NamedTuple):
    agents: PyTree  # the agents' training states, leading axis (pop,)
    u: jax.Array  # (pop, D) searched hyperparameters as quantiles
    score_sum: jax.Array  # (pop,) finite scores summed over the current interval
    score_count: jax.Array  # (pop,) how many of them were finite
    explorer: PyTree
    key: jax.Array
    update: jax.Array  # updates done (the same for every member: copies keep counters)
    hparams: HParams  # the hyperparameters not searched (callers may set them between steps)
    source: jax.Array  # (pop,) whom each member copied at the last exploit step


class PopulationLoop:
    """`population` agents of `agent`, exploit/explore every `interval` updates."""

    def __init__(self, agent: Any, population: int, interval: int, explorer: Explorer,
                 quantile: float):
        self.agent, self.population, self.interval = agent, population, interval
        self.explorer, self.quantile = explorer, quantile
        self.space = explorer.space
        self.config = PopulationConfig(agent.config, population, interval)
        self.default_env_params = agent.default_env_params

    def member_hparams(self, base: HParams, u: jax.Array) -> HParams:
        """`(pop,)` hyperparameters: `base`, with the searched ones from `u`."""
        values = self.space.value(u)
        full = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.population,)), base)
        return full._replace(**{n: values[:, i] for i, n in enumerate(self.space.names)})

    def init(self, key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
             env_params: PyTree = None) -> PopulationState:
        """Fresh agents, hyperparameters drawn from the search space's prior."""
        base = (HParams() if hparams is None else hparams).as_arrays()
        key, k_prior, k_agents = jax.random.split(key, 3)
        u = sample_prior(k_prior, self.space, self.population)
        agents = jax.vmap(self.agent.init, in_axes=(0, None, 0, None))(
            jax.random.split(k_agents, self.population), meta_params,
            self.member_hparams(base, u), env_params)
        zeros = jnp.zeros((self.population,), jnp.float32)
        return PopulationState(agents, u, zeros, zeros, self.explorer.init(self.population),
                               key, jnp.zeros((), jnp.int32), base,
                               jnp.arange(self.population, dtype=jnp.int32))

    def update(self, state: PopulationState, meta_params: PyTree = None
               ) -> tuple[PopulationState, dict[str, jax.Array]]:
        """One update of every agent; at the end of an interval, exploit and explore."""
        agents = state.agents._replace(hparams=self.member_hparams(state.hparams, state.u))
        agents, metrics = jax.vmap(self.agent.update, in_axes=(0, None))(agents, meta_params)
        score = self.agent.score(metrics)
        finite = jnp.isfinite(score)
        sums = state.score_sum + jnp.where(finite, score, 0.0)
        counts = state.score_count + finite
        update = state.update + 1
        key, k_pbt = jax.random.split(state.key)
        interval_score = jnp.where(counts > 0, sums / jnp.maximum(counts, 1), jnp.nan)
        out = exploit_and_explore(k_pbt, interval_score, state.u, agents, self.explorer,
                                  state.explorer, self.quantile, update // self.interval - 1)
        ready = update % self.interval == 0

        def pick(new: Any, old: Any) -> Any:
            return jax.tree.map(lambda n, o: jnp.where(ready, n, o), new, old)

        zeros = jnp.zeros_like(sums)
        new = PopulationState(pick(out.states, agents), pick(out.u, state.u),
                              pick(zeros, sums), pick(zeros, counts),
                              pick(out.explorer, state.explorer), key, update, state.hparams,
                              pick(out.source, state.source))
        report = {"episode_return": jnp.nanmean(score), "best_return": jnp.nanmax(score),
                  "copies": jnp.where(ready, copied(out.source).sum(), 0)}
        return new, report

    def step(self, state: PopulationState, meta_params: PyTree = None, num_updates: int = 1
             ) -> tuple[PopulationState, dict[str, jax.Array]]:
        """`num_updates` (static) updates; metrics stacked, `(num_updates,)` each."""
        return jax.lax.scan(lambda s, _: self.update(s, meta_params), state, None,
                            length=num_updates)

    def score(self, metrics: dict[str, jax.Array]) -> jax.Array:
        """The population's mean return per update."""
        return metrics["episode_return"]

    def meta_objective(self, state: PopulationState) -> jax.Array:
        """The agents' validation objectives, averaged (`PPO.meta_objective`)."""
        return jax.vmap(self.agent.meta_objective)(state.agents).mean()

    def train(self, key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
              env_params: PyTree = None) -> tuple[PopulationState, dict[str, jax.Array]]:
        """A whole run: `init` then every update."""
        state = self.init(key, meta_params, hparams, env_params)
        return self.step(state, meta_params, self.config.num_updates)
