"""Curricula over levels: Prioritized Level Replay, robust PLR, ACCEL and domain
randomisation as an inner loop (docs/curricula.md)."""
