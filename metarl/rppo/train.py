"""Recurrent PPO (a GRU policy) in pieces, with `metarl.ppo.PPO`'s protocol: `init`,
`update` (one rollout carrying the GRU state, then SGD epochs over whole sequences), `step`,
`score`, `meta_objective`, `reset_envs` and `train`.

The structure follows PureJaxRL's recurrent PPO (Lu et al. 2022): the GRU state at the start
of each rollout is stored, and every minibatch re-runs the network over its envs' whole
sequences from there, so gradients flow back through time to the start of the rollout
(truncated backpropagation through time). Where the GRU state restarts is decided in one
place, `RecurrentPPO.hidden_resets`, which RL² replaces (Duan et al. 2016, "RL²: Fast
Reinforcement Learning via Slow Reinforcement Learning": the state must survive episode ends
within a trial, which is how the agent learns from earlier episodes of the same task).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.envs.env import Env
from metarl.envs.normalize import RunningStats, update_stats
from metarl.ppo.advantages import episode_stats, gae
from metarl.ppo.config import HParams
from metarl.ppo.loss import LOSS_METRICS
from metarl.ppo.objectives import Objective, ppo_clip
from metarl.ppo.optimizer import OptimizerArg, optimizer_factory
from metarl.ppo.rollout import observe
from metarl.ppo.train import fresh_state, restart_envs, where_rows
from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.loss import make_loss
from metarl.rppo.minibatches import Sequences, env_permutations, sequence_minibatches
from metarl.rppo.networks import RecurrentActorCritic, make_recurrent_actor_critic
from metarl.rppo.rollout import RecurrentTransition, RolloutCarry, UpdateBits, make_rollout
from metarl.rppo.sgd import make_epochs

PyTree = Any

METRIC_NAMES = ("episode_return", "episodes", *LOSS_METRICS)


class RecurrentTrainState(NamedTuple):
    """`metarl.ppo.TrainState` plus the policy's memory."""

    params: PyTree
    opt_state: PyTree
    env_state: PyTree
    obs: jax.Array
    obs_stats: RunningStats
    episode_return: jax.Array  # running return of each env's current episode
    last_return: jax.Array  # return of each env's last finished episode
    key: jax.Array
    update: jax.Array
    hparams: HParams  # traced: may change between updates
    env_params: PyTree  # shared, per env (leading num_envs axis), or None (the defaults)
    # `(num_envs, hidden_size)`: the GRU state the next step starts from, restarts (zeros)
    # already applied
    hidden: jax.Array
    done: jax.Array  # `(num_envs,)` bool: each env's last step ended its episode


class _Collected(NamedTuple):
    carry: RolloutCarry
    traj: RecurrentTransition
    value: jax.Array  # (T, B)
    reward: jax.Array  # (T, B), bootstrapped at truncations
    done: jax.Array  # (T, B) float
    last_value: jax.Array  # (B,)
    hidden: jax.Array  # (B, hidden_size): the carried state for the next rollout


class Batch(NamedTuple):
    """One rollout's data for learning and for scoring what was played (`collect`)."""

    traj: RecurrentTransition  # (T, B) leaves
    value: jax.Array  # (T, B)
    reward: jax.Array  # (T, B), bootstrapped at truncations
    done: jax.Array  # (T, B) float
    adv: jax.Array  # (T, B) GAE advantages
    episodes: Any  # `metarl.ppo.advantages.episode_stats` of the rollout
    perm_bits: jax.Array  # the minibatch shuffles' random bits
    start_hidden: jax.Array  # (B, hidden_size) the GRU state the rollout started from
    start_return: jax.Array  # (B,) each env's running episode return at the start


class RecurrentPPO:
    """PPO (Schulman et al. 2017) with a GRU actor-critic (Cho et al. 2014) on a batch of
    `config.num_envs` envs, as an inner loop with `metarl.ppo.PPO`'s protocol and arguments.

    `reset_hidden_on_done=False` keeps the GRU state across episode ends (RL², Duan et al.
    2016); for anything finer (reset only between trials), override `hidden_resets`."""

    def __init__(self, config: RecurrentPPOConfig, env: Env, env_params: PyTree = None,
                 objective: Objective = ppo_clip, optimizer: OptimizerArg = None,
                 per_env_params: bool = False, reset_hidden_on_done: bool = True):
        self.config, self.env, self.objective = config, env, objective
        self.per_env_params = per_env_params
        self.reset_hidden_on_done = reset_hidden_on_done
        self.default_env_params = env.default_params if env_params is None else env_params
        obs_space = env.observation_space(self.default_env_params)
        self.net: RecurrentActorCritic = make_recurrent_actor_critic(
            obs_space, env.action_space(self.default_env_params), config.hidden_size,
            config.embed_sizes, config.head_sizes, config.activation)
        self.obs_shape = obs_space.shape
        self.optimizer = optimizer_factory(config, optimizer)  # type: ignore[arg-type]
        # as in PPO: the default optimizer runs on all weights as one flat vector
        self.flat = optimizer is None
        self.bits = UpdateBits(config, self.net)
        # looked up at every trace, so that a subclass or an instance attribute replacing
        # `hidden_resets` takes effect
        self.rollout = make_rollout(config, env, self.net,
                                    lambda done, env_state: self.hidden_resets(done, env_state),
                                    per_env_params)
        self.epochs = make_epochs(make_loss(config, self.net, objective), self.flat)

    # -- the hook RL² replaces --------------------------------------------------------------
    def hidden_resets(self, done: jax.Array, env_state: PyTree) -> jax.Array:
        """Where the GRU state restarts from zeros before the next step: `(num_envs,)` bool,
        given each env's `done` flag of the step just taken and the env states after it
        (already the next episode's where `done`). The default is `done` (a new episode
        knows nothing of the last one) or, with `reset_hidden_on_done=False`, never (RL²
        (Duan et al. 2016) keeps the state through a trial's episodes; a subclass that resets
        between trials reads its trial counter from `env_state` here). Every restart of the
        state, in acting, training and `meta_objective`, comes from this one method."""
        del env_state
        return done if self.reset_hidden_on_done else jnp.zeros_like(done)

    # -- the pieces -------------------------------------------------------------------------
    def init(self, key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
             env_params: PyTree = None) -> RecurrentTrainState:
        """Fresh weights, optimizer state, envs and (zero) GRU states; nothing trained yet."""
        n_envs = self.config.num_envs
        return RecurrentTrainState(*fresh_state(self, key, meta_params, hparams, env_params),
                                   self.net.initial_hidden(n_envs), jnp.zeros((n_envs,), bool))

    def update(self, state: RecurrentTrainState, meta_params: PyTree = None
               ) -> tuple[RecurrentTrainState, dict[str, jax.Array]]:
        """One update: a rollout of `num_steps` carrying the GRU state, GAE, then
        `update_epochs` epochs over minibatches of whole env sequences, each re-run from the
        state stored at the start of the rollout (`collect`, then `learn`)."""
        state, batch = self.collect(state)
        return self.learn(state, batch, meta_params)

    def collect(self, state: RecurrentTrainState) -> tuple[RecurrentTrainState, Batch]:
        """A rollout with the current policy and its advantages, nothing learned: the state
        moves on (envs, GRU states, episode returns, key), the weights do not. A curriculum
        scores levels from the batch, and may play levels without learning from them
        (robust PLR, Jiang et al. 2021)."""
        key, k_update = jax.random.split(state.key)
        step_keys, noise_bits, perm_bits = self.bits.draw(k_update)
        hp = state.hparams
        # acting is data collection: meta-gradients flow through the SGD steps, never through
        # sampled actions or env dynamics (Xu et al. 2018)
        c = self._collect(jax.lax.stop_gradient(state.params), state, step_keys, noise_bits)
        adv = gae(c.value, c.reward, c.done, c.last_value, hp.gamma, hp.gae_lambda)
        episodes = episode_stats(c.traj.reward, c.done, state.episode_return,
                                 state.last_return)
        batch = Batch(c.traj, c.value, c.reward, c.done, adv, episodes, perm_bits,
                      state.hidden, state.episode_return)
        state = state._replace(env_state=c.carry.env_state, obs=c.carry.obs,
                               episode_return=episodes.running, last_return=episodes.last,
                               key=key, hidden=c.hidden, done=c.done[-1] > 0)
        return state, batch

    def learn(self, state: RecurrentTrainState, batch: Batch, meta_params: PyTree = None
              ) -> tuple[RecurrentTrainState, dict[str, jax.Array]]:
        """`update_epochs` epochs of SGD on a collected batch; the update counter advances."""
        config, hp = self.config, state.hparams
        tx = self.optimizer(hp, meta_params)
        traj = batch.traj
        data = Sequences(traj.obs, traj.reset, traj.action, traj.log_prob, batch.value,
                         batch.adv, batch.adv + batch.value)
        perms = env_permutations(batch.perm_bits, config.update_epochs, config.num_envs)
        minibatches, hiddens = sequence_minibatches(data, batch.start_hidden, perms,
                                                    config.num_minibatches)
        progress = state.update / config.num_updates
        stats = state.obs_stats
        params, opt_state, aux = self.epochs(state.params, state.opt_state, tx, minibatches,
                                             hiddens, stats, progress, hp, meta_params)
        if config.normalize_obs:
            stats = update_stats(stats, traj.obs)
        metrics = dict(zip(METRIC_NAMES, (batch.episodes.mean_return, batch.episodes.finished,
                                          *aux.mean(0)), strict=True))
        return state._replace(params=params, opt_state=opt_state, obs_stats=stats,
                              update=state.update + 1), metrics

    def evaluate(self, state: RecurrentTrainState, num_rollouts: int
                 ) -> tuple[RecurrentTrainState, dict[str, jax.Array]]:
        """`num_rollouts` (static) rollouts with the current policy and no learning: per
        rollout, the mean return of the episodes that ended in it, how many ended, each env's
        last finished episode's return (`(num_rollouts, num_envs)`: every episode when a
        rollout holds exactly one per env) and every step's reward (`(num_rollouts,
        num_steps, num_envs)`, for regret curves). An RL² agent is evaluated this way on
        freshly drawn tasks."""

        def rollout(state: RecurrentTrainState, _: None) -> tuple[RecurrentTrainState, tuple]:
            key, k_rollout = jax.random.split(state.key)
            step_keys, noise_bits, _ = self.bits.draw(k_rollout)
            c = self._collect(state.params, state, step_keys, noise_bits)
            episodes = episode_stats(c.traj.reward, c.done, state.episode_return,
                                     state.last_return)
            state = state._replace(env_state=c.carry.env_state, obs=c.carry.obs,
                                   episode_return=episodes.running, last_return=episodes.last,
                                   key=key, hidden=c.hidden, done=c.done[-1] > 0)
            return state, (episodes.mean_return, episodes.finished, episodes.last,
                           c.traj.reward)

        state, (returns, finished, last, reward) = jax.lax.scan(rollout, state, None,
                                                                length=num_rollouts)
        return state, {"episode_return": returns, "episodes": finished, "last_return": last,
                       "step_reward": reward}

    def step(self, state: RecurrentTrainState, meta_params: PyTree = None, num_updates: int = 1
             ) -> tuple[RecurrentTrainState, dict[str, jax.Array]]:
        """`num_updates` (static) updates; metrics stacked, `(num_updates,)` each."""
        return jax.lax.scan(lambda s, _: self.update(s, meta_params), state, None,
                            length=num_updates)

    def meta_objective(self, state: RecurrentTrainState) -> jax.Array:
        """As `metarl.ppo.PPO.meta_objective` (Xu et al. 2018): the policy-gradient surrogate
        `mean(log pi(a_t | h_t) * A_t)` of a fresh rollout with the current policy, started
        from the carried GRU state; only `state.params` is differentiated (through the GRU
        re-run over the rollout, truncated at its start). The state is not advanced."""
        hp = jax.lax.stop_gradient(state.hparams)
        step_keys, noise_bits, _ = self.bits.draw(jax.random.fold_in(state.key, 1))
        c = self._collect(jax.lax.stop_gradient(state.params), state, step_keys, noise_bits)
        adv = gae(c.value, c.reward, c.done, c.last_value, hp.gamma, hp.gae_lambda)
        adv = jax.lax.stop_gradient((adv - adv.mean()) / (adv.std() + 1e-8))
        _, dist, _ = self.net.unroll(state.params, jax.lax.stop_gradient(state.hidden),
                                     observe(self.config, state.obs_stats, c.traj.obs),
                                     c.traj.reset)
        return jnp.mean(self.net.log_prob(dist, c.traj.action) * adv)

    def score(self, metrics: dict[str, jax.Array]) -> jax.Array:
        """The per-update score a search ranks by: the mean return of finished episodes."""
        return metrics["episode_return"]

    def reset_envs(self, state: RecurrentTrainState, key: jax.Array, env_params: PyTree,
                   which: jax.Array) -> RecurrentTrainState:
        """The envs where `which` (`(num_envs,)` bool) is true restart on their row of
        `env_params` (per-env params) with a zero GRU state: a curriculum moving env `i` to a
        new level, or RL² starting a new trial on a new task. The others carry on."""
        state = restart_envs(self, state, key, env_params, which)
        return state._replace(hidden=where_rows(which, jnp.zeros_like(state.hidden),
                                                state.hidden),
                              done=state.done | which)

    def train(self, key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
              env_params: PyTree = None) -> tuple[RecurrentTrainState, dict[str, jax.Array]]:
        """A whole run: `init` then `config.num_updates` updates."""
        state = self.init(key, meta_params, hparams, env_params)
        return self.step(state, meta_params, self.config.num_updates)

    # -- helpers ----------------------------------------------------------------------------
    def _env_params(self, state: RecurrentTrainState) -> PyTree:
        # None: the env's defaults, compiled in as constants
        return self.default_env_params if state.env_params is None else state.env_params

    def _collect(self, params: PyTree, state: RecurrentTrainState, step_keys: jax.Array,
                 noise_bits: jax.Array) -> _Collected:
        """A rollout from the state's envs and GRU states, with the values GAE needs. The
        values come from the rollout itself (the recurrent critic needs the GRU state, which
        only the rollout has), so they are data: not differentiated, unlike PPO's."""
        config, hp = self.config, state.hparams
        n_envs = config.num_envs
        start = RolloutCarry(state.obs, state.env_state, state.hidden,
                             jnp.zeros((n_envs,), bool))  # restarts already applied
        carry, traj = self.rollout(params, state.obs_stats, start, step_keys, noise_bits,
                                   self._env_params(state))
        hidden = jnp.where(carry.reset[:, None], 0.0, carry.hidden)
        no_reset = jnp.zeros((n_envs,), bool)
        _, _, last_value = self.net.apply(params, hidden,
                                          observe(config, state.obs_stats, carry.obs), no_reset)
        reward = traj.reward
        if config.bootstrap_truncated:
            # the truncated episode's own memory continues into its true last observation
            _, _, final_value = self.net.apply(
                params, traj.hidden, observe(config, state.obs_stats, traj.final_obs),
                jnp.zeros(traj.reset.shape, bool))
            reward = reward + hp.gamma * final_value * traj.truncated.astype(jnp.float32)
        done = (traj.terminated | traj.truncated).astype(jnp.float32)
        return _Collected(carry, traj, traj.value, reward, done, last_value, hidden)


def make_recurrent_train(config: RecurrentPPOConfig, env: Env, env_params: PyTree = None,
                         objective: Objective = ppo_clip, optimizer: OptimizerArg = None,
                         per_env_params: bool = False, reset_hidden_on_done: bool = True
                         ) -> Callable[..., tuple[RecurrentTrainState, dict]]:
    """`train(key, meta_params=None, hparams=None, env_params=None)`: a whole recurrent PPO
    run (see `RecurrentPPO`)."""
    return RecurrentPPO(config, env, env_params, objective, optimizer, per_env_params,
                        reset_hidden_on_done).train
