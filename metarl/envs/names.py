"""The names of the environments metarl registers, known without importing gymnax or brax
(so `metarl envs list` and spec validation answer at once); tests/test_envs.py checks them
against the libraries' own lists."""

# metarl's own envs, registered as `metarl/<name>`: the RL² task distributions
# (docs/meta-rl-tasks.md) and the maze of PLR/ACCEL curricula (docs/mazes.md). Each maps to
# (module under metarl.envs, class name).
METARL_ENVS = {
    "BernoulliBandit": ("bandit", "BernoulliBandit"),
    "TabularMDP": ("tabular_mdp", "TabularMDP"),
    "GoalGrid": ("goal_grid", "GoalGrid"),
    "BraxGoalVelocity": ("brax_goal", "BraxGoalVelocity"),
    "BraxGoalDirection": ("brax_goal", "BraxGoalDirection"),
    "Maze": ("maze", "Maze"),
}

# gymnax ids we expose. MNISTBandit needs a data download at construction time, which a
# sandboxed or offline machine cannot do, so it is left out.
GYMNAX_IDS = (
    "CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar",
    "Seaquest-MinAtar",
    "BernoulliBandit-misc", "GaussianBandit-misc", "SimpleBandit-bsuite",
    "Catch-bsuite", "DeepSea-bsuite", "MemoryChain-bsuite", "UmbrellaChain-bsuite",
    "DiscountingChain-bsuite", "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc",
    "Reacher-misc", "Swimmer-misc", "Pong-misc",
)

BRAX_NAMES = (
    "ant", "fast", "halfcheetah", "hopper", "humanoid", "humanoidstandup",
    "inverted_double_pendulum", "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d",
)
