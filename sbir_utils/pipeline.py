"""``sbir reproduce``: the whole study, headless. Prepares the data, executes ``notebooks/NN_*.ipynb`` in
order with papermill (kernel named explicitly), exports each to ``reports/NN_name.html`` (code hidden) and
writes ``reports/index.html`` with the run's metadata.

Everything is built in a staging folder and moved into place only when every notebook succeeded, so a
failing notebook leaves the previous reports untouched; the error names the notebook and the cell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import paths
from .config import PROFILES, load_profile
from .fileio import atomic_write_text
from .reports import export_notebook_html, make_readable, stderr_to_stdout_file, write_index_html

VERSIONED_PACKAGES = ("torch", "torchvision", "timm", "numpy", "pandas", "scikit-learn", "papermill", "nbconvert")


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it, the cell and the error."""


def notebooks() -> list[Path]:
    return sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def runs_finished_since(t: float) -> int:
    """How many training runs under ``paths.runs_dir()`` finished (wrote their ``summary.json``) since ``t``
    (a ``time.time()``): 0 for a reproduce that reused every run, so its wall time is not the study's cost."""
    root = paths.runs_dir()
    return sum(1 for f in root.rglob("summary.json") if f.stat().st_mtime >= t) if root.is_dir() else 0


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.PROJECT_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.PROJECT_ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment_metadata() -> dict[str, Any]:
    versions = {}
    for pkg in VERSIONED_PACKAGES:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "packages": versions}


def prepare_data(profile: str, dataset: str) -> None:
    """Generate (or check) the embedded data set and its scene indexes; real data needs no preparation."""
    if dataset == "embedded":
        from .data import sources

        sources.prepare_embedded(profile)


def _execute(nb: Path, out: Path, parameters: dict[str, Any], kernel: str) -> None:
    import papermill as pm

    try:
        # the notebooks' stderr (per-epoch training lines) is echoed live, so a long notebook shows progress
        pm.execute_notebook(str(nb), str(out), parameters=parameters, kernel_name=kernel,
                            cwd=str(paths.NOTEBOOKS_DIR), progress_bar=False, log_output=False,
                            stderr_file=sys.stderr)
    except pm.PapermillExecutionError as exc:
        raise NotebookFailed(
            f"{nb.name}: cell {exc.cell_index} (execution count {exc.exec_count}) raised "
            f"{exc.ename}: {exc.evalue}\n  executed copy with the traceback: {out}"
        ) from None


def run_study(profile: str = "cpu", dataset: str = "embedded", data_root: str | None = None,
              reports_dir: str | Path | None = None, kernel: str = "sbir",
              only: list[str] | None = None) -> dict[str, Any]:
    """Run notebooks 01-06 for ``profile`` and write the report site into ``reports_dir``."""
    cfg = load_profile(profile)
    if dataset != "embedded" and not data_root:
        raise ValueError(f"dataset {dataset!r} needs DATA_ROOT (a folder with index_train/val/test.csv); "
                         "build one with 'sbir index FORMAT RAW_ROOT --out DIR'")
    final = Path(reports_dir).resolve() if reports_dir else paths.reports_dir()
    staging = final / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "executed").mkdir(parents=True)
    started = time.time()
    os.environ["SBIR_REPORTS_DIR"] = str(staging)  # the notebook kernels inherit it
    prepare_data(cfg.name, dataset)
    parameters = {"profile": cfg.name, "dataset": dataset, "data_root": data_root}
    records: list[dict[str, Any]] = []
    for nb in notebooks():
        if only and not any(nb.name.startswith(o) for o in only):
            continue
        t0 = time.time()
        executed = staging / "executed" / nb.name
        print(f"[reproduce] {nb.name} ...", flush=True)
        try:
            _execute(nb, executed, parameters, kernel)
        except NotebookFailed:
            failed = final / "failed-run"
            shutil.rmtree(failed, ignore_errors=True)
            staging.rename(failed)
            raise
        html_name = f"{nb.stem}.html"
        stderr_to_stdout_file(executed)  # training logs on stderr would show as pink error boxes
        export_notebook_html(executed, staging / html_name)
        seconds = time.time() - t0
        print(f"[reproduce] {nb.name} done in {seconds:.1f} s", flush=True)
        records.append({"stem": nb.stem, "html": html_name, "seconds": seconds, "status": "ok"})
    metadata = {
        "profile": cfg.name, "dataset": dataset, "data_root": data_root, "git_commit": git_commit(),
        "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - started, 1),
        "notebook_seconds": {r["stem"]: round(r["seconds"], 1) for r in records},
        "runs_trained": runs_finished_since(started),
        **environment_metadata(),
    }
    cfg.save(staging)
    atomic_write_text(staging / "run_metadata.json", json.dumps(metadata, indent=2) + "\n")
    write_index_html(staging, records, metadata)
    make_readable(staging)  # 0644, not the 0600 of the atomic writes' temporary files
    _publish(staging, final)
    return metadata


def _publish(staging: Path, final: Path) -> None:
    """Move every staged file into ``final``, replacing older copies, then drop the staging folder."""
    for item in sorted(staging.iterdir()):
        target = final / item.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        item.rename(target)
    staging.rmdir()
    shutil.rmtree(final / "failed-run", ignore_errors=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help=f"one of {PROFILES} or a YAML path (default cpu)")
    parser.add_argument("--dataset", default="embedded", help="'embedded' (generated) or a name for DATA_ROOT")
    parser.add_argument("--data_root", default=None, help="index folder of a real dataset (see 'sbir index')")
    parser.add_argument("--reports_dir", default=None, help="where to write the reports (default reports/)")
    parser.add_argument("--kernel", default="sbir", help="Jupyter kernel name (make venv registers 'sbir')")
    parser.add_argument("--only", nargs="*", default=None, help="run only notebooks whose names start so, e.g. 01")


def run(args: argparse.Namespace) -> int:
    try:
        meta = run_study(args.profile, args.dataset, args.data_root, args.reports_dir, args.kernel, args.only)
    except (NotebookFailed, ValueError, FileNotFoundError) as exc:
        print(f"sbir reproduce: {exc}", file=sys.stderr)
        return 1
    print(f"[reproduce] reports written in {meta['wall_seconds']:.0f} s")
    return 0
