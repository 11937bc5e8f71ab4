"""IQM and the bootstrap CIs that evaluation reports."""

import numpy as np
import pytest

from metarl.programs.stats import bootstrap_ci, iqm, ratio_ci


def test_iqm_ignores_the_outer_quartiles():
    assert iqm(np.array([-100.0, 1.0, 2.0, 100.0])) == 1.5


def test_bootstrap_ci_brackets_the_iqm():
    scores = np.random.default_rng(0).normal(0.8, 0.1, (40, 2))
    lo, hi = bootstrap_ci(scores)
    assert lo < iqm(scores) < hi and hi - lo < 0.1


def test_paired_ratio_ci_sees_a_consistent_gain_that_unpaired_cis_miss():
    rng = np.random.default_rng(1)
    base = rng.normal(0.8, 0.15, (20, 2))  # large run-to-run spread, shared by both rules
    better = base * 1.05 + rng.normal(0.0, 0.005, base.shape)
    ratio, lo, hi = ratio_ci(better, base)
    assert 1.03 < lo < ratio < hi < 1.07
    # each rule's own CI is wider than the gain
    lo_b, hi_b = bootstrap_ci(base)
    assert hi_b - lo_b > iqm(better) - iqm(base)
    assert ratio_ci(base, base) == (1.0, 1.0, 1.0)


def test_ratio_ci_refuses_unpaired_scores_and_a_non_positive_baseline():
    with pytest.raises(ValueError, match="equal shapes"):
        ratio_ci(np.ones((4, 2)), np.ones((5, 2)))
    assert all(np.isnan(ratio_ci(np.ones((4, 2)), -np.ones((4, 2)))))


def test_one_run_per_task_has_no_confidence_interval():
    one = np.array([[0.7, 0.9]])
    assert all(np.isnan(bootstrap_ci(one)))
    ratio, lo, hi = ratio_ci(one, one * 0.5)
    assert ratio == 2.0 and np.isnan(lo) and np.isnan(hi)
