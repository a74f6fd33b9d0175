"""README.md, docs/*.md and data/README.md stay true to the repository.

Every relative link (and image) resolves to a file inside the repository, every `#anchor` names a heading of
its target page (GitHub's heading ids), every `make <target>` the docs name in code is a Makefile target, and
every `python -m <module> [<subcommand>]` and `python <script>.py` they name answers `--help` with exit code 0.
The `--help` checks run in one Python process (each module or script through `runpy`), so TensorFlow is imported
once, not once per command. The checker is tested on a small broken repository too, so a checker that finds
nothing fails.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
HELP_TIMEOUT_S = 540
"""All the `--help` runs together, TensorFlow and TFX imports included, on a busy 2-core machine."""

_MARKDOWN = MarkdownIt("commonmark").enable("table")
_MAKE = re.compile(r"(?<![\w/.$-])make((?: +[a-z][a-z0-9-]*(?![\w=-]))+)")
_PYTHON_M = re.compile(r"python3? -m ([A-Za-z_][\w.]*)((?: [a-z][a-z_]*(?![\w./=-]))?)")
_PYTHON_SCRIPT = re.compile(r"python3? ((?:[\w-]+/)*[\w-]+\.py)\b")
_MAKEFILE_RULE = re.compile(r"^([A-Za-z0-9][\w.-]*(?: +[A-Za-z0-9][\w.-]*)*) *:(?!=)", re.MULTILINE)


def doc_pages(root: Path = ROOT) -> list[Path]:
    """README.md, every docs/*.md and data/README.md (when present) of `root`: the pages this test keeps honest."""
    extra = [p for p in (root / "data" / "README.md",) if p.exists()]
    return [root / "README.md", *sorted((root / "docs").glob("*.md")), *extra]


@dataclass
class Page:
    """What one Markdown page links to, the anchors it defines, and the text of its code (spans and blocks)."""

    links: list[str]
    anchors: set[str]
    code: list[str]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped (letters, digits, `_`, `-` and spaces
    kept), spaces turned into hyphens. Source: GitHub's github-slugger, which github.com uses for headings."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def parse_page(path: Path) -> Page:
    """Links, heading anchors (repeats get `-1`, `-2`, ... as on GitHub) and code of the Markdown file `path`."""
    tokens = _MARKDOWN.parse(path.read_text(encoding="utf-8"))
    links: list[str] = []
    anchors: set[str] = set()
    code: list[str] = []
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type in ("fence", "code_block"):
            code.append(token.content)
        if token.type == "heading_open":
            children = tokens[i + 1].children or []
            text = "".join(c.content for c in children if c.type in ("text", "code_inline"))
            base = github_anchor(text)
            anchors.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
        for child in token.children or []:
            if child.type == "link_open":
                links.append(str(child.attrGet("href")))
            elif child.type == "image":
                links.append(str(child.attrGet("src")))
            elif child.type == "code_inline":
                code.append(child.content)
    return Page(links, anchors, code)


def broken_links(pages: list[Path], root: Path = ROOT) -> list[str]:
    """One line per relative link of `pages` that does not resolve: a missing file, a file outside `root`,
    or an `#anchor` that is no heading of the Markdown page it points at. Web links are not fetched."""
    parsed: dict[Path, Page] = {}

    def page(path: Path) -> Page:
        if path not in parsed:
            parsed[path] = parse_page(path)
        return parsed[path]

    problems = []
    for source in pages:
        for link in page(source).links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue
            target = (source.parent / unquote(parts.path)).resolve() if parts.path else source.resolve()
            where = f"{source.relative_to(root)}: {link}"
            if not target.is_relative_to(root.resolve()):
                problems.append(f"{where}: points outside the repository")
            elif not target.exists():
                problems.append(f"{where}: no such file")
            elif parts.fragment and target.suffix == ".md" and unquote(parts.fragment) not in page(target).anchors:
                problems.append(f"{where}: no heading with this anchor in {target.relative_to(root.resolve())}")
    return problems


def makefile_targets(makefile: Path) -> set[str]:
    """The explicit rule targets of `makefile` (variables and `$(VAR)` targets are not targets one types)."""
    return {name for rule in _MAKEFILE_RULE.findall(makefile.read_text()) for name in rule.split()}


def named_make_targets(pages: list[Path]) -> dict[str, str]:
    """Each `make <target>` named in the code of `pages` (`make setup test` names two), with a page naming it."""
    named: dict[str, str] = {}
    for path in pages:
        for code in parse_page(path).code:
            for match in _MAKE.finditer(code):
                for target in match.group(1).split():
                    named.setdefault(target, path.name)
    return named


def named_entry_points(pages: list[Path]) -> dict[str, str]:
    """Each `python -m <module>` named in the code of `pages`, with its subcommand when one follows
    (`python -m insights score`), and each `python <script>.py` (`local_pipeline.py`), as the command line to
    run `--help` on, with a page naming it."""
    named: dict[str, str] = {}
    for path in pages:
        for code in parse_page(path).code:
            for match in _PYTHON_M.finditer(code):
                named.setdefault(f"{match.group(1)}{match.group(2)}", path.name)
            for match in _PYTHON_SCRIPT.finditer(code):
                named.setdefault(match.group(1), path.name)
    return named


_HELP_RUNNER = r"""
import contextlib, io, json, runpy, sys
out_path, commands = sys.argv[1], json.loads(sys.argv[2])
results = {}
for command in commands:
    argv = command.split()
    sys.argv = [argv[0], *argv[1:], "--help"]
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            if argv[0].endswith(".py"):
                runpy.run_path(argv[0], run_name="__main__")
            else:
                runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:
        code = f"{type(e).__name__}: {e}"
    results[command] = {"exit_code": code, "usage": "usage:" in stdout.getvalue().lower()}
with open(out_path, "w") as f:
    json.dump(results, f)
"""


def help_results(commands: list[str], tmp_path: Path) -> dict[str, dict[str, object]]:
    """Runs `python -m <command> --help` (`python <command> --help` for a `.py` script) for every command in ONE
    child process (cwd: the repository root) and
    returns per command its `exit_code` (int, or the exception that escaped) and whether it printed `usage:`."""
    out = tmp_path / "help.json"
    # Set, not inherited by chance: local_pipeline.py re-executes itself (replacing this runner) without it.
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run([sys.executable, "-c", _HELP_RUNNER, str(out), json.dumps(commands)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=HELP_TIMEOUT_S)
    assert out.exists(), f"the --help runner died (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_every_relative_link_and_anchor_resolves() -> None:
    problems = broken_links(doc_pages())
    assert problems == [], "broken links in the docs:\n" + "\n".join(problems)


def test_every_named_make_target_exists() -> None:
    named = named_make_targets(doc_pages())
    targets = makefile_targets(ROOT / "Makefile")
    assert {"run", "test"} <= named.keys()  # the README's two commands are found at all
    missing = {t: page for t, page in named.items() if t not in targets}
    assert missing == {}, f"make targets the docs name but the Makefile lacks (target: page): {missing}"


BOGUS_MODULE = "tests_docs_no_such_module"
BOGUS_SCRIPT = "tests/no_such_script.py"


@pytest.fixture(scope="module")
def entry_points_help(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, dict[str, object]]]:
    """The docs' `python -m` and `python <script>.py` commands and their `--help` results; BOGUS_MODULE and
    BOGUS_SCRIPT ride along in the same process as the checker's own negative cases."""
    named = named_entry_points(doc_pages())
    return named, help_results([*named, BOGUS_MODULE, BOGUS_SCRIPT], tmp_path_factory.mktemp("help"))


@pytest.mark.e2e
def test_every_named_entry_point_answers_help(
        entry_points_help: tuple[dict[str, str], dict[str, dict[str, object]]]) -> None:
    named, results = entry_points_help
    assert {"serving", "insights score", "monitoring.drift", "local_pipeline.py"} <= named.keys()
    failing = {f"{cmd} ({page})": results[cmd] for cmd, page in named.items()
               if results[cmd] != {"exit_code": 0, "usage": True}}
    assert failing == {}, f"`python -m ... --help` that did not print usage and exit 0: {failing}"


@pytest.mark.e2e
def test_help_check_fails_for_a_missing_module_or_script(
        entry_points_help: tuple[dict[str, str], dict[str, dict[str, object]]]) -> None:
    _, results = entry_points_help
    for bogus in (BOGUS_MODULE, BOGUS_SCRIPT):
        assert results[bogus]["exit_code"] != 0
        assert results[bogus]["usage"] is False


def test_checker_reports_broken_links_anchors_and_targets(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "Makefile").write_text("VAR := 1\n.PHONY: good\ngood: other\n\t@true\nother:\n\t@true\n")
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Two words: `code` here\n\n## Two words: `code` here\n")
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "[ok](docs/page.md#two-words-code-here) [repeat](docs/page.md#two-words-code-here-1) [self](#top)\n"
        "[gone](docs/missing.md) [bad anchor](docs/page.md#no-such-heading) [bad self](#nowhere)\n"
        "[outside](../elsewhere.md) [web](https://example.com/x.md) ![img](docs/missing.png)\n\n"
        "`[not a link](docs/missing.md)` `make good other` `make VAR=1` `make nosuch` `make good ARGS=x`\n\n"
        "```bash\nmake alsomissing   # comment\n.venv/bin/python -m pkg.mod sub --flag\npython -m other DIR\n"
        "python tools/run.py --x\n```\n")
    pages = doc_pages(tmp_path)
    assert sorted(broken_links(pages, tmp_path)) == sorted([
        "README.md: docs/missing.md: no such file",
        "README.md: docs/page.md#no-such-heading: no heading with this anchor in docs/page.md",
        "README.md: #nowhere: no heading with this anchor in README.md",
        "README.md: ../elsewhere.md: points outside the repository",
        "README.md: docs/missing.png: no such file",
    ])
    targets = makefile_targets(tmp_path / "Makefile")
    assert targets == {"good", "other"}
    named = named_make_targets(pages)
    assert set(named) == {"good", "other", "nosuch", "alsomissing"}
    assert {t for t in named if t not in targets} == {"nosuch", "alsomissing"}
    assert set(named_entry_points(pages)) == {"pkg.mod sub", "other", "tools/run.py"}
