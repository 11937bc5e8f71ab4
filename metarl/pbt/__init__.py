"""Population-based training (Jaderberg et al. 2017, "Population Based Training of Neural
Networks") inside `jit`: truncation selection (`exploit`), perturbation or resampling
(`explore`), the GP-bandit explore step of PB2 (`pb2`, Parker-Holder et al. 2020), the
population step shared by the `pbt` search kind and the `pbt` inner loop, lineage records and
the exported schedule module. See docs/pbt.md."""

from metarl.pbt.exploit import bottom_count, truncation_selection
from metarl.pbt.explore import Explorer, PerturbExplorer, make_explorer
from metarl.pbt.pb2 import PB2Explorer
from metarl.pbt.space import HyperSpace

__all__ = ["Explorer", "HyperSpace", "PB2Explorer", "PerturbExplorer", "bottom_count",
           "make_explorer", "truncation_selection"]
