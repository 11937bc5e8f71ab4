"""Search programs: the search kinds (one module each, registered plug-ins), task evaluation
and fitness, meta-tests, and the runner that drives an outer loop over a kind."""

from metarl.programs.kind import NotSupported, SearchKind, build_kind, kind_names, register_kind

__all__ = ["NotSupported", "SearchKind", "build_kind", "kind_names", "register_kind"]
