import os

# Tests run on the CPU with one device; tests/test_sharding.py starts its own process with
# several host devices (multi-device programs on 2 loaded cores are slow to compile).
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
