"""The docs stay true to the code: the CLI reference is regenerated and compared, every spec
field has a row in the spec reference, and every relative link points at something real."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

# [text](target) and [text](target "title"); images too. Code spans and blocks are removed
# before matching, so examples inside them are not taken for links.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_generated_from_the_commands():
    expected = _gen_cli().render()
    actual = (DOCS / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is out of date: run python docs/gen_cli.py"


def test_cli_reference_lists_every_command():
    import click

    from metarl.cli import main

    text = (DOCS / "cli.md").read_text()

    def walk(cmd, path):
        assert f"## {path}\n" in text, f"docs/cli.md has no section for {path!r}"
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(main, "metarl")


def test_spec_reference_has_a_row_for_every_field():
    from metarl.programs.kind import kind_class, kind_names
    from metarl.programs.learned_optimizer import OptimizerChoice
    from metarl.spec.inner import INNER_SECTIONS
    from metarl.spec.schema import Outer, Range, SearchSpec, Task, TaskSuite, Tracking

    text = (DOCS / "spec-reference.md").read_text()
    kinds = [kind_class(k).Spec for k in kind_names()]  # each kind's own section
    sections = (*INNER_SECTIONS.values(), OptimizerChoice)
    missing = [f"{model.__name__}.{name}"
               for model in (SearchSpec, TaskSuite, Task, Range, Outer, Tracking, *sections,
                             *kinds)
               for name in model.model_fields
               if not re.search(rf"^\| `{re.escape(name)}` \|", text, re.M)]
    assert not missing, f"docs/spec-reference.md has no table row for {missing}"


def _links(page: Path) -> list[str]:
    text = CODE_SPAN.sub("", CODE_BLOCK.sub("", page.read_text()))
    return LINK.findall(text)


def _is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I))  # http:, https:, mailto:, ...


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = CODE_BLOCK.sub("", page.read_text())
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_pages_exist():
    assert (ROOT / "README.md").is_file()
    for name in ("index", "quickstart", "concepts", "spec-reference", "cli", "envs", "ppo"):
        assert (DOCS / f"{name}.md").is_file(), f"docs/{name}.md is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in _links(page):
        if _is_external(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_of_links_exist(page):
    broken = []
    for target in _links(page):
        if _is_external(target) or "#" not in target:
            continue
        path, anchor = target.split("#", 1)
        dest = page if not path else (page.parent / path)
        if dest.suffix != ".md" or not dest.is_file():
            continue  # a missing file is reported by the test above
        if anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing headings: {broken}"


def test_quickstart_spec_hash_in_the_docs_is_the_real_one():
    from metarl.spec import load_spec, spec_hash

    real = spec_hash(load_spec(ROOT / "search" / "quickstart.toml"))
    for page in (ROOT / "README.md", DOCS / "quickstart.md"):
        shown = set(re.findall(r"quickstart \(hparams, spec ([0-9a-f]{12})\)", page.read_text()))
        assert shown == {real}, f"{page.name} shows spec hash(es) {shown}, the spec's is {real}"


def test_ppo_config_defaults_in_the_docs_are_the_code_defaults():
    import dataclasses

    from metarl.ppo import PPOConfig

    text = (DOCS / "ppo.md").read_text()
    for f in dataclasses.fields(PPOConfig):
        row = re.search(rf"^\| `{f.name}` \| `([^`]*)` \|", text, re.M)
        assert row, f"docs/ppo.md has no row for PPOConfig.{f.name}"
        shown = row.group(1).replace("_", "").strip('"')
        assert shown == str(f.default), \
            f"docs/ppo.md: {f.name} default {row.group(1)}, code {f.default!r}"
