"""Stages a self-contained Docker build folder for Railway: `python -m deploy.context DIR`.

`railway up` uploads what `.gitignore` allows, and the pushed model (`serving_model/`) is a generated
output that git ignores, so deploying straight from the checkout would build an image without the
model. This copies exactly the Dockerfile's COPY sources (read from the Dockerfile itself, so the two
cannot drift), plus the Dockerfile, `railway.json` and `.dockerignore`, into DIR; then
`cd DIR && railway up`. Only complete numeric version folders are copied, never the Pusher's
in-progress `.incoming-*` ones.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from common import exit_codes
from common.facts import DEFAULT_SERVING_DIR, MODEL_NAME, PROJECT_ROOT

DEPLOY_FILES = ("Dockerfile", "railway.json", ".dockerignore")
MARKER = ".customer-model-deploy"
"""Left in a staged folder so a later run may replace it (and nothing else)."""


class DeployError(Exception):
    pass


def copy_sources(dockerfile: str) -> list[str]:
    """The build-context paths the Dockerfile's COPY instructions read (sources, not the target)."""
    sources: list[str] = []
    for match in re.finditer(r"^COPY\s+(.+)$", dockerfile, re.M):
        sources.extend(p for p in match.group(1).split()[:-1] if not p.startswith("--"))
    return sources


def _copy_model(src: Path, dest: Path) -> list[str]:
    versions = sorted((p for p in src.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        raise DeployError(f"no pushed model version in {src}; run `make pipeline` first")
    dest.mkdir(parents=True)
    for version in versions:
        shutil.copytree(version, dest / version.name)
    return [v.name for v in versions]


def stage(dest: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """Fills `dest` with the build context; returns the model versions it holds."""
    dest = dest.resolve()
    if dest == root or root in dest.parents:
        raise DeployError(f"{dest} is inside the checkout; stage outside it (its .gitignore would apply)")
    if dest.exists() and any(dest.iterdir()):
        if not (dest / MARKER).exists():
            raise DeployError(f"{dest} exists and was not staged by this command; choose an empty folder")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    versions: list[str] = []
    for name in copy_sources((root / "Dockerfile").read_text()):
        src = root / name
        if src == root / DEFAULT_SERVING_DIR.relative_to(PROJECT_ROOT) / MODEL_NAME:
            versions = _copy_model(src, dest / name)
        elif src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
        else:
            raise DeployError(f"the Dockerfile copies {name}, which does not exist")
    for name in DEPLOY_FILES:
        shutil.copy2(root / name, dest / name)
    (dest / MARKER).write_text("Staged by `python -m deploy.context`; safe to delete.\n")
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.context", description=__doc__.split("\n")[0])
    parser.add_argument("dest", type=Path, help="folder to stage (outside the checkout)")
    args = parser.parse_args(argv)
    try:
        versions = stage(args.dest)
    except (DeployError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_codes.USAGE
    print(f"Staged {args.dest} with {MODEL_NAME} version(s) {', '.join(versions)}.\n"
          f"Deploy: cd {args.dest} && railway up   (or: docker build -t {MODEL_NAME} {args.dest})")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
