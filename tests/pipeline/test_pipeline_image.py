"""pipeline/Dockerfile (the image Kubeflow/Vertex steps and Beam workers run) holds what the pipeline imports.

No Docker engine here: these checks read the Dockerfile and its .dockerignore.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from pipeline import config as cfg
from pipeline.kubeflow_v2 import IN_IMAGE_SCHEMA

ROOT = cfg.PROJECT_ROOT
DOCKERFILE = ROOT / "pipeline" / "Dockerfile"
FIRST_PARTY = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith(keyword + " ")]


def copied_paths() -> list[str]:
    """COPY sources, relative to the build context (the repository root)."""
    sources = []
    for line in instructions("COPY"):
        sources += line.split()[:-1]
    return sources


def first_party_imports(path: Path) -> set[Path]:
    """Project files `path` imports (any depth in the file: function-level imports count)."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] not in FIRST_PARTY:
                continue
            module = ROOT.joinpath(*name.split("."))
            for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                if candidate.is_file():
                    found.add(candidate)
    return found


def import_closure(starts: list[Path]) -> set[Path]:
    seen: set[Path] = set()
    todo = list(starts)
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += first_party_imports(path)
            package_init = path.parent / "__init__.py"
            if package_init.is_file() and package_init.parent != ROOT:
                todo.append(package_init)
    return seen


def covered(relative: str, sources: list[str]) -> bool:
    return any(relative == s or (s.endswith("/") and relative.startswith(s)) for s in sources)


def test_image_copies_every_project_file_the_pipeline_imports() -> None:
    starts = sorted((ROOT / "pipeline").glob("*.py")) + sorted((ROOT / "modules").glob("*.py"))
    needed = {str(p.relative_to(ROOT)) for p in import_closure(starts)}
    assert "common/facts.py" in needed  # the closure does reach outside pipeline/ and modules/
    assert "serving/main.py" in needed  # ServingCheck runs the model server in the image
    sources = copied_paths()
    assert sorted(n for n in needed if not covered(n, sources)) == []


def test_build_context_lets_every_copied_path_through() -> None:
    ignore = (ROOT / "pipeline" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    patterns = [line for line in ignore if line and not line.startswith(("#", "!"))]
    assert patterns[0] == "*"  # everything else (.venv, pipeline outputs, data) stays out of the build
    for source in copied_paths():
        assert source in allowed, f"{source} is copied but .dockerignore keeps it out of the build context"
        assert (ROOT / source).exists()


def test_image_layout_matches_what_the_kubeflow_spec_names() -> None:
    assert instructions("WORKDIR") == [str(cfg.IMAGE_PROJECT_DIR)]
    assert f"PYTHONPATH={cfg.IMAGE_PROJECT_DIR}" in instructions("ENV")
    schema = Path(IN_IMAGE_SCHEMA).relative_to(cfg.IMAGE_PROJECT_DIR)
    assert covered(str(schema), copied_paths()) and (ROOT / schema).is_file()
    assert any("TF_USE_LEGACY_KERAS=1" in line for line in instructions("ENV"))


def test_base_image_has_the_pinned_python_and_beam() -> None:
    (base,) = instructions("FROM")
    match = re.fullmatch(r"apache/beam_python(\d+\.\d+)_sdk:(\S+)", base)
    assert match, base
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert match.group(2) == pins["apache-beam"]
    assert match.group(1) == "3.10"  # requirements.txt is resolved on CPython 3.10 (TFX 1.16 needs < 3.11)
    assert "pip install -r requirements.txt" in " ".join(instructions("RUN"))


def test_image_ships_the_templates_the_report_renders() -> None:
    from pipeline import report

    templates = [p for p in report.TEMPLATE_DIR.rglob("*") if p.is_file()]
    assert (report.TEMPLATE_DIR / report.PAGE_TEMPLATE) in templates
    assert all((report.TEMPLATE_DIR / report.SECTION_TEMPLATES.format(a)).is_file() for a in report.SECTIONS)
    sources = copied_paths()
    assert [str(p.relative_to(ROOT)) for p in templates if not covered(str(p.relative_to(ROOT)), sources)] == []
