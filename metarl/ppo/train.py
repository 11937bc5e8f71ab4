"""PPO as one pure function: `make_train(config, env)(key, meta_params, hparams)`.

The structure follows PureJaxRL (Lu et al. 2022): the whole run is a `lax.scan` over updates,
each a scanned rollout, GAE and scanned minibatch epochs, so a run can be `jit`-ed and `vmap`-ed
over seeds, hyperparameters and meta-parameters. Differences that make it faster: all epochs'
minibatch permutations are drawn and gathered in one go and run as a single flat scan, per-step
random keys are split once per rollout, small env states travel through the rollout packed in
one or two arrays, and only per-update scalars leave the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from metarl.envs.env import Env, ResetAheadEnv, StepResult
from metarl.envs.normalize import RunningStats, init_stats, normalize, update_stats
from metarl.ppo.config import HParams, PPOConfig
from metarl.ppo.mulhi import register_portable_mulhi
from metarl.ppo.networks import ActorCritic, make_actor_critic
from metarl.ppo.objectives import Objective, ObjectiveInputs, ppo_clip
from metarl.ppo.packing import Packer, Unpacked

PyTree = Any
OptimizerArg = (optax.GradientTransformation
                | Callable[[HParams, PyTree], optax.GradientTransformation] | None)


class TrainState(NamedTuple):
    params: PyTree
    opt_state: PyTree
    env_state: PyTree
    obs: jax.Array
    obs_stats: RunningStats
    episode_return: jax.Array  # running return of each env's current episode
    last_return: jax.Array  # return of each env's last finished episode
    key: jax.Array
    update: jax.Array


class Transition(NamedTuple):
    """One rollout step of every env (stacked over steps by the scan)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    final_obs: jax.Array  # the true last observation of an episode that ended at this step
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array


METRIC_NAMES = ("episode_return", "episodes", "loss", "policy_objective", "value_loss",
                "entropy", "approx_kl", "clip_fraction")


def gae(value: jax.Array, reward: jax.Array, done: jax.Array, last_value: jax.Array,
        gamma: jax.Array, lam: jax.Array) -> jax.Array:
    """Generalised advantage estimates (Schulman et al. 2016) over a `(time, env)` batch.

    The backward recursion `A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}` composes
    affine maps, so it runs as a parallel prefix scan: about 2 log2(time) vectorised steps
    instead of `time` sequential loop iterations.
    """
    next_value = jnp.concatenate([value[1:], last_value[None]], 0)
    not_done = 1.0 - done.astype(jnp.float32)
    delta = reward + gamma * next_value * not_done - value
    decay = gamma * lam * not_done

    def compose(later: tuple, earlier: tuple) -> tuple:
        # x -> d + c * x applied after `later`'s map: (c_e c_l, d_e + c_e d_l)
        return earlier[0] * later[0], earlier[1] + earlier[0] * later[1]

    _, adv = jax.lax.associative_scan(compose, (decay, delta), reverse=True)
    return adv


def running_returns(reward: jax.Array, done: jax.Array, initial: jax.Array) -> jax.Array:
    """Return of each env's current episode after every step of a `(time, env)` rollout, the
    sum restarting after steps with `done`; `initial` is the return carried in from before.
    A forward prefix scan of affine maps, like `gae`."""
    keep = jnp.concatenate([jnp.ones_like(done[:1]), 1.0 - done[:-1]], 0)

    def compose(earlier: tuple, later: tuple) -> tuple:
        return earlier[0] * later[0], later[0] * earlier[1] + later[1]

    scale, total = jax.lax.associative_scan(compose, (keep, reward))
    return scale * initial + total


def default_optimizer(config: PPOConfig, hparams: HParams) -> optax.GradientTransformation:
    """Adam with PureJaxRL's linear learning-rate annealing to zero."""
    steps_per_update = config.update_epochs * config.num_minibatches

    def schedule(count: jax.Array) -> jax.Array:
        frac = 1.0 - (count // steps_per_update) / config.num_updates
        return hparams.lr * frac

    return optax.adam(schedule if config.anneal_lr else hparams.lr, eps=1e-5)


def make_train(config: PPOConfig, env: Env, env_params: PyTree = None,
               objective: Objective = ppo_clip,
               optimizer: OptimizerArg = None) -> Callable[..., tuple[TrainState, dict]]:
    """Build `train(key, meta_params=None, hparams=None, env_params=None)`.

    `objective(inputs, meta_params)` is the per-sample policy objective to maximise (PPO-clip
    by default). `optimizer` is an `optax.GradientTransformation`, or a function
    `(hparams, meta_params) -> GradientTransformation` for optimizers whose settings are traced
    (learned optimizers, searched learning rates); gradients are clipped to
    `hparams.max_grad_norm` before it either way. Default: Adam with LR annealing.

    `train` returns the final `TrainState` and a dict of per-update metric arrays
    (`METRIC_NAMES`, each of shape `(config.num_updates,)`).
    """
    default_env_params = env.default_params if env_params is None else env_params
    net = make_actor_critic(env.observation_space(default_env_params),
                            env.action_space(default_env_params), config.hidden_sizes,
                            config.activation)
    obs_shape = env.observation_space(default_env_params).shape

    def build_optimizer(hp: HParams, meta_params: PyTree) -> optax.GradientTransformation:
        if optimizer is None:
            inner = default_optimizer(config, hp)
        elif isinstance(optimizer, optax.GradientTransformation):
            inner = optimizer
        else:
            inner = optimizer(hp, meta_params)
        return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), inner)

    def train(key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
              env_params: PyTree = None) -> tuple[TrainState, dict]:
        hp = (HParams() if hparams is None else hparams).as_arrays()
        ep = default_env_params if env_params is None else env_params
        tx = build_optimizer(hp, meta_params)
        key, k_net, k_env = jax.random.split(key, 3)
        params = net.init(k_net)
        # the default optimizer is elementwise apart from the global norm, so it runs on all
        # weights as one flat vector: a handful of operations per SGD step instead of a
        # handful per weight array (13 of them); a user's optimizer sees the usual pytree
        opt_params = ravel_pytree(params)[0] if optimizer is None else params
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, config.num_envs), ep)
        zeros = jnp.zeros((config.num_envs,), jnp.float32)
        state = TrainState(params, tx.init(opt_params), env_state, obs, init_stats(obs_shape),
                           zeros, zeros, key, jnp.zeros((), jnp.int32))
        update = _make_update(config, env, net, objective, tx, hp, ep, meta_params, obs_shape,
                              flat_optimizer=optimizer is None)
        return jax.lax.scan(update, state, None, length=config.num_updates)

    return train


def _fast_impl() -> str:
    """The PRNG for the keys handed to `env.step` inside the rollout loop.

    jax lowers Threefry (the default PRNG) on the CPU as a rolled 5-iteration loop to save
    compile time, so every `split`/`uniform` an environment makes inside a scanned step runs a
    small while loop of ~16 operations per iteration: profiled, these random numbers cost more
    than the policy network and the environment dynamics together. Philox (jax >= 0.10) lowers
    to straight-line code that fuses into one kernel and, being counter-based, gives the same
    numbers batched or not. Its lowering is large (Philox4x32: ~1,300 operations per call
    site, +2.5 s of compilation for the two sites in a gymnax step), so it is used only where it
    pays, in its 2x32 form (half the size, compiles as fast as Threefry here): everything else
    draws from the caller's key in bulk, once per update. Philox2x32 keys are 32-bit, so among
    the ~10^6 step keys of a run a few dozen coincide (two steps drawing the same env
    randomness): statistically irrelevant for training.
    """
    try:
        jax.random.key(0, impl="philox2x32")
    except ValueError:  # older jax
        return "threefry2x32"
    register_portable_mulhi()  # Philox must also compile inside sharded searches
    return "philox2x32"


_STEP_KEY_IMPL = _fast_impl()


def shuffle_words(n: int, size: int) -> tuple[int, ...]:
    """Shape of the uint32 words `shuffles` needs for `n` permutations of `range(size)`."""
    index_bits = max(1, (size - 1).bit_length())
    if size & (size - 1) == 0:
        return (n, 3, 2)
    return (n, size) if index_bits <= 12 else (2,)


def shuffles(bits: jax.Array, n: int, size: int) -> jax.Array:
    """`n` independent random permutations of `range(size)`, shape `(n, size)`, from uint32
    words of shape `shuffle_words(n, size)`.

    A sort-based shuffle costs ~0.5 ms per update on the CPU (XLA's sort calls a comparator per
    comparison), a tenth of a whole PPO update here. For power-of-two sizes (the usual batch
    shapes) the permutation is instead a keyed bijection of the indices: three rounds of
    (odd multiply + add) mod size and an xor-shift, each invertible. It is not uniform over all
    size! permutations, but the statistics minibatching relies on are: every index is used
    exactly once per epoch, and the chance that two indices share a minibatch is the uniform
    one whatever their distance in time or env (checked empirically). Other sizes get a sort
    of one packed int32 per index (random high bits, index low bits: ~3x cheaper than sorting
    keys and values), and large ones `jax.random.permutation`.
    """
    index_bits = max(1, (size - 1).bit_length())
    if size & (size - 1) == 0:
        mask = jnp.uint32(size - 1)
        x = jnp.broadcast_to(jnp.arange(size, dtype=jnp.uint32), (n, size))
        for r in range(3):
            x = (x * (bits[:, r, 0:1] | 1) + bits[:, r, 1:2]) & mask
            x = x ^ (x >> ((index_bits + 1) // 2))
        return x.astype(jnp.int32)
    if index_bits > 12:
        key = jax.random.wrap_key_data(bits, impl="threefry2x32")
        return jax.vmap(lambda k: jax.random.permutation(k, size))(jax.random.split(key, n))
    high = (bits >> (index_bits + 1)).astype(jnp.int32)
    packed = (high << index_bits) | jnp.arange(size, dtype=jnp.int32)
    return jax.lax.sort(packed, dimension=1) & ((1 << index_bits) - 1)


def _make_update(config: PPOConfig, env: Env, net: ActorCritic, objective: Objective,
                 tx: optax.GradientTransformation, hp: HParams, env_params: PyTree,
                 meta_params: PyTree, obs_shape: tuple[int, ...],
                 flat_optimizer: bool) -> Callable:
    n_envs, n_steps, n_mb = config.num_envs, config.num_steps, config.num_minibatches
    reset_ahead = isinstance(env, ResetAheadEnv)
    if reset_ahead:
        step_env = jax.vmap(env.step_with_reset, in_axes=(0, 0, 0, None, 0))
        reset_envs = jax.vmap(jax.vmap(env.reset, in_axes=(0, None)), in_axes=(0, None))
    else:
        vmapped_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

        def step_env(keys: jax.Array, state: PyTree, action: jax.Array, params: PyTree,
                     reset: None) -> StepResult:
            return vmapped_step(keys, state, action, params)
    obs_size, act_width = net.obs_size, (1 if net.discrete else net.action_dim)
    cols = _Columns(obs_size, act_width)

    def prep(stats: RunningStats, obs: jax.Array) -> jax.Array:
        return normalize(stats, obs) if config.normalize_obs else obs

    def flat_obs(obs: jax.Array) -> jax.Array:
        return obs.reshape(obs.shape[: obs.ndim - net.obs_ndim] + (obs_size,)).astype(
            jnp.float32)

    def unflat(obs: jax.Array) -> jax.Array:
        return obs.reshape(obs.shape[:-1] + obs_shape)

    # every random number of an update comes from one bulk draw of uint32 words: the env keys
    # of all steps (and their resets' keys), the action noise of all steps and the shuffles
    key_size = jax.random.key_data(jax.random.key(0, impl=_STEP_KEY_IMPL)).shape[-1]
    key_words = (n_steps, n_envs, (1 + reset_ahead) * key_size)
    noise_words = (n_steps, n_envs, net.noise_words)
    perm_words = shuffle_words(config.update_epochs, config.batch_size)
    sizes = [math.prod(w) for w in (key_words, noise_words, perm_words)]

    def rollout(params: PyTree, stats: RunningStats, carry: tuple, key_bits: jax.Array,
                noise_bits: jax.Array) -> tuple[tuple, Transition]:
        keys = jax.random.wrap_key_data(key_bits[..., :key_size], impl=_STEP_KEY_IMPL)
        # for gymnax's small states, the carry (obs, env state), the resets and the
        # transitions travel packed (see `Packer`): a few arrays per step instead of one per
        # pytree leaf
        packing = Packer if reset_ahead else Unpacked
        packer = packing(carry, batch_ndim=1)
        # the state every env would restart from at every step, drawn in one batched call
        resets = (packer.pack(reset_envs(jax.random.wrap_key_data(
            key_bits[..., key_size:], impl=_STEP_KEY_IMPL), env_params))
            if reset_ahead else None)
        xs = (keys, net.noise_from_bits(noise_bits), resets)
        out_packer = []  # the transition's layout, known once the step is traced

        def step(packed: tuple, x: tuple) -> tuple[tuple, tuple]:
            obs, env_state = packer.unpack(packed)
            step_keys, noise, reset = x
            # only what acting needs happens per step: the actor's forward pass (whose
            # log-probability is a few operations on logits at hand) and the env. Values and
            # episode returns are computed afterwards for the whole rollout at once (same
            # weights, so the same numbers): one batched operation instead of `num_steps`.
            dist = net.policy(params, prep(stats, obs))
            action = net.sample_with_noise(dist, noise)
            res = step_env(step_keys, env_state, net.env_action(action), env_params,
                           None if reset is None else packer.unpack(reset))
            tr = Transition(obs, action, net.log_prob(dist, action), res.final_obs, res.reward,
                            res.terminated, res.truncated)
            if not out_packer:
                out_packer.append(packing(tr, batch_ndim=1))
            return packer.pack((res.obs, res.state)), out_packer[0].pack(tr)

        packed, traj = jax.lax.scan(step, packer.pack(carry), xs, unroll=config.rollout_unroll)
        return packer.unpack(packed), out_packer[0].unpack(traj)

    def loss_fn(params: PyTree, mb: jax.Array, stats: RunningStats,
                progress: jax.Array) -> tuple[jax.Array, jax.Array]:
        obs, action = unflat(mb[:, cols.obs]), cols.action(mb, net.discrete)
        old_log_prob, old_value = mb[:, cols.log_prob], mb[:, cols.value]
        adv, target = mb[:, cols.advantage], mb[:, cols.target]  # adv: normalised already
        dist, value = net.apply(params, prep(stats, obs))
        log_ratio = net.log_prob(dist, action) - old_log_prob
        ratio = jnp.exp(log_ratio)
        v_clipped = old_value + jnp.clip(value - old_value, -hp.clip_eps, hp.clip_eps)
        value_loss = 0.5 * jnp.maximum((value - target) ** 2, (v_clipped - target) ** 2).mean()
        entropy = net.entropy(dist)
        inputs = ObjectiveInputs(ratio, log_ratio, adv, jax.lax.stop_gradient(value - target),
                                 entropy, progress, hp.clip_eps)
        policy_objective = objective(inputs, meta_params).mean()
        loss = -policy_objective + hp.vf_coef * value_loss - hp.ent_coef * entropy.mean()
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = (jnp.abs(ratio - 1.0) > hp.clip_eps).mean()
        return loss, jnp.stack([loss, policy_objective, value_loss, entropy.mean(), approx_kl,
                                clip_fraction])

    grad_fn = jax.grad(loss_fn, has_aux=True)

    def flat_loss_fn(flat: jax.Array, unravel: Callable, mb: jax.Array, stats: RunningStats,
                     progress: jax.Array) -> tuple[jax.Array, jax.Array]:
        return loss_fn(unravel(flat), mb, stats, progress)

    flat_grad_fn = jax.grad(flat_loss_fn, has_aux=True)

    def update(state: TrainState, _: None) -> tuple[TrainState, dict]:
        key, k_update = jax.random.split(state.key)
        words = jax.random.bits(k_update, (sum(sizes),), jnp.uint32)
        key_bits, noise_bits, perm_bits = (
            w.reshape(shape) for w, shape in zip(
                jnp.split(words, np.cumsum(sizes)[:-1]), (key_words, noise_words, perm_words),
                strict=True))
        stats = state.obs_stats
        (obs, env_state), traj = rollout(state.params, stats, (state.obs, state.env_state),
                                         key_bits, noise_bits)
        reward = traj.reward
        truncated = traj.truncated.astype(jnp.float32)
        done = (traj.terminated | traj.truncated).astype(jnp.float32)

        # the values of the rollout, and the bootstrap values of the last observation and
        # (for time-limit truncations) of the true final observations of truncated episodes,
        # in one batched forward pass
        rows = [traj.obs.reshape((-1,) + obs_shape), obs]
        if config.bootstrap_truncated:
            rows.append(traj.final_obs.reshape((-1,) + obs_shape))
        values = net.value(state.params, prep(stats, jnp.concatenate(rows, 0)))
        value = values[: config.batch_size].reshape(n_steps, n_envs)
        last_value = values[config.batch_size: config.batch_size + n_envs]
        if config.bootstrap_truncated:
            final_value = values[config.batch_size + n_envs:].reshape(n_steps, n_envs)
            reward = reward + hp.gamma * final_value * truncated
        adv = gae(value, reward, done, last_value, hp.gamma, hp.gae_lambda)

        # episode returns: a running sum of rewards that restarts after each episode end
        ep_ret = running_returns(traj.reward, done, state.episode_return)
        finished = ep_ret * done
        n_done = jnp.sum(done).astype(jnp.int32)
        last_t = jnp.max(jnp.where(done > 0, jnp.arange(n_steps)[:, None], -1), 0)
        last_ret = jnp.where(last_t >= 0, finished[jnp.maximum(last_t, 0), jnp.arange(n_envs)],
                             state.last_return)
        episode_return = jnp.where(n_done > 0, jnp.sum(finished) / jnp.maximum(n_done, 1),
                                   last_ret.mean())
        ep_ret = ep_ret[-1] * (1.0 - done[-1])  # carried into the next rollout

        # training rows: obs | action | log-prob, value, advantage, target; all epochs'
        # shuffles gathered at once, one array, scanned as (epochs * minibatches) steps
        batch = jnp.concatenate([
            flat_obs(traj.obs), traj.action.reshape(n_steps, n_envs, act_width).astype(
                jnp.float32),
            jnp.stack([traj.log_prob, value, adv, adv + value], -1)], -1)
        batch = batch.reshape(config.batch_size, -1)
        perms = shuffles(perm_bits, config.update_epochs, config.batch_size)
        minibatches = batch[perms.reshape(-1)].reshape(
            config.update_epochs * n_mb, config.minibatch_size, -1)
        # advantages normalised per minibatch (PPO's usual), for all minibatches at once
        # rather than inside each SGD step: they do not depend on the weights
        mb_adv = minibatches[..., cols.advantage]
        mb_adv = (mb_adv - mb_adv.mean(1, keepdims=True)) / (
            mb_adv.std(1, keepdims=True) + 1e-8)
        minibatches = minibatches.at[..., cols.advantage].set(mb_adv)
        progress = state.update / config.num_updates

        if flat_optimizer:
            flat_params, unravel = ravel_pytree(state.params)

            def sgd_step(carry: tuple, mb: jax.Array) -> tuple[tuple, jax.Array]:
                flat, opt_state = carry
                grads, aux = flat_grad_fn(flat, unravel, mb, stats, progress)
                updates, opt_state = tx.update(grads, opt_state, flat)
                return (flat + updates, opt_state), aux

            (flat_params, opt_state), aux = jax.lax.scan(
                sgd_step, (flat_params, state.opt_state), minibatches,
                unroll=config.minibatch_unroll)
            params = unravel(flat_params)
        else:
            def sgd_step(carry: tuple, mb: jax.Array) -> tuple[tuple, jax.Array]:
                params, opt_state = carry
                grads, aux = grad_fn(params, mb, stats, progress)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), aux

            (params, opt_state), aux = jax.lax.scan(
                sgd_step, (state.params, state.opt_state), minibatches,
                unroll=config.minibatch_unroll)
        if config.normalize_obs:
            stats = update_stats(stats, traj.obs)
        metrics = dict(zip(METRIC_NAMES, (episode_return, n_done, *aux.mean(0)), strict=True))
        new_state = TrainState(params, opt_state, env_state, obs, stats, ep_ret, last_ret, key,
                               state.update + 1)
        return new_state, metrics

    return update


class _Columns:
    """Column layout of the packed training rows: obs | action | log-prob, value, advantage,
    target (one array, so that one gather shuffles every field)."""

    def __init__(self, obs_size: int, act_width: int):
        self.obs = slice(0, obs_size)
        self._action = slice(obs_size, obs_size + act_width)
        c = obs_size + act_width
        self.log_prob, self.value, self.advantage, self.target = c, c + 1, c + 2, c + 3

    def action(self, rows: jax.Array, discrete: bool) -> jax.Array:
        a = rows[..., self._action]
        return a[..., 0].astype(jnp.int32) if discrete else a
