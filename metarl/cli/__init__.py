"""The `metarl` command line."""

from __future__ import annotations

import logging

import click

from metarl import __version__
from metarl.cli.errors import FriendlyGroup
from metarl.cli.info import envs, tasks, ui
from metarl.cli.rules import evaluate, export
from metarl.cli.runs import runs
from metarl.cli.search import search


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="metarl")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def main(verbose: bool) -> None:
    """metarl: discover parts of RL algorithms with meta-learning and AutoRL.

    \b
    Examples:
      metarl search run search/quickstart.toml
      metarl search run search/quickstart.toml --set outer.generations=20
      metarl runs list
      metarl ui
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    enable_compilation_cache()


def enable_compilation_cache() -> None:
    """Reuse compiled searches across launches (a resumed search skips most compiling);
    JAX_COMPILATION_CACHE_DIR chooses the folder, an empty value turns it off."""
    import os
    import sys

    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR",
                            os.path.join(os.path.expanduser("~"), ".cache", "metarl", "jax"))
    if not folder:
        return
    settings = {"jax_compilation_cache_dir": folder,
                "jax_persistent_cache_min_compile_time_secs": 1.0}
    if "jax" not in sys.modules:  # jax reads these when it is imported: listings stay fast
        for name, value in settings.items():
            os.environ.setdefault(name.upper(), str(value))
        return
    import jax

    for name, value in settings.items():
        jax.config.update(name, value)


for group in (search, runs, envs, tasks):
    main.add_command(group)
main.add_command(ui)
main.add_command(evaluate)
main.add_command(export)
