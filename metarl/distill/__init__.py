"""Distil learned update rules into closed-form expressions."""

from metarl.distill.symbolic import CANDIDATE_TERMS, FitMetrics, SymbolicFit, fit_symbolic

__all__ = ["CANDIDATE_TERMS", "FitMetrics", "SymbolicFit", "fit_symbolic"]
