"""OPEN's dormancy input (Sokar et al. 2023's score) on PPO's actor-critic."""

import jax
import jax.numpy as jnp
import numpy as np

from metarl.ppo.dormancy import dormancy, neuron_scores


def test_a_dead_neuron_scores_zero_and_a_layer_averages_one():
    layers = [{"w": jnp.array([[1.0, -1.0, 2.0]]), "b": jnp.array([0.0, -10.0, 0.0])},
              {"w": jnp.ones((3, 1)), "b": jnp.zeros(1)}]
    x = jnp.linspace(0.1, 1.0, 8)[:, None]  # positive inputs: neuron 1 never fires under relu
    (scores,) = neuron_scores(layers, x, "relu")
    assert scores[1] == 0 and np.isclose(scores.mean(), 1.0)
    assert np.isclose(scores[2] / scores[0], 2.0)  # twice the activation, twice the score


def test_every_parameter_gets_its_neurons_score_and_outputs_get_zero():
    from metarl.envs import make
    from metarl.ppo.networks import make_actor_critic

    env = make("gymnax/CartPole-v1")
    net = make_actor_critic(env.observation_space(env.default_params),
                            env.action_space(env.default_params), (8, 4), "tanh")
    params = net.init(jax.random.PRNGKey(0))
    d = dormancy(params, jax.random.normal(jax.random.PRNGKey(1), (16, 4)), "tanh")
    assert jax.tree.structure(d) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(d), jax.tree.leaves(params), strict=True):
        assert a.shape == b.shape
    hidden = d["actor"][0]
    np.testing.assert_array_equal(hidden["w"][0], hidden["b"])  # a column: its neuron's score
    assert not np.asarray(d["actor"][-1]["w"]).any()  # the output layer feeds no neuron


def test_ppo_passes_dormancy_to_an_optimizer_that_reads_it():
    import optax

    from metarl.envs import make
    from metarl.ppo import PPO, PPOConfig

    def moves_by_dormancy(hparams, meta):
        def update(grads, state, params=None, dormancy=None, **extra):
            return jax.tree.map(lambda d: -0.001 * d, dormancy), state
        return optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)

    moves_by_dormancy.reads_dormancy = True
    config = PPOConfig(total_timesteps=64, num_envs=2, num_steps=32, update_epochs=1,
                       num_minibatches=1, hidden_sizes=(8,))
    ppo = PPO(config, make("gymnax/CartPole-v1"), optimizer=moves_by_dormancy)
    state = ppo.init(jax.random.PRNGKey(0))
    after, _ = jax.jit(ppo.update)(state)
    moved = jax.tree.map(lambda a, b: np.abs(np.asarray(a - b)).max(), after.params,
                         state.params)
    assert moved["actor"][0]["w"] > 0 and moved["critic"][0]["b"] > 0  # hidden neurons
    assert moved["actor"][-1]["w"] == 0 and moved["critic"][-1]["b"] == 0  # outputs
