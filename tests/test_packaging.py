"""The wheel ships the migrations: installed (not editable) into a fresh
virtual environment outside the repository, `dossier migrate` builds the
schema and `dossier serve` answers.

To stay fast, the venv is made without pip and without downloading anything:
the wheel is built from a copy of the sources and installed with this
interpreter's pip (`--python`, `--no-deps`), and the venv sees this
environment's third-party packages through a `.pth` line (a plain path: the
editable Dossier install of this environment, a `.pth` hook, is not loaded).
So the only `backend` and migrations it can import are the wheel's. `.ci/run`
also installs the wheel with its dependencies resolved by pip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db_models import Base
from backend.kit.db import async_url
from tests.support.server import ROOT, clean_env, serving

SOURCES = ("pyproject.toml", "setup.py", "README.md", "backend", "alembic")


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv outside the tree with the project's wheel installed; its bin/."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        work / "dist",
        source,
        cwd=work,
    )
    [wheel] = (work / "dist").glob("dossier-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    # Every module and data file of the tree ships (domain folders without
    # `__init__.py` included), and the migrations with their helpers and template.
    shipped = {
        f"dossier_migrations/{path.relative_to(ROOT / 'alembic')}"
        for path in (ROOT / "alembic").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    } | {
        str(path.relative_to(ROOT))
        for path in (ROOT / "backend").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert shipped <= names, sorted(shipped - names)

    venv = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        wheel,
        cwd=work,
    )
    purelib = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work
    )
    (Path(purelib.strip()) / "zz_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return venv / "bin"


def _outside_env(**settings: str) -> dict[str, str]:
    env = clean_env(**settings)
    env.pop("PYTHONPATH", None)  # the worktree's `backend` must not be importable
    return env


def test_the_installed_package_is_the_wheel(installed: Path) -> None:
    where = _run(
        installed / "python",
        "-c",
        "import backend, dossier_migrations, backend.kit.migrations as m;"
        "print(backend.__file__); print(m.script_directory())",
        cwd=installed,
        env=_outside_env(),
    ).split()
    venv = installed.parent.resolve()
    assert all(Path(path).resolve().is_relative_to(venv) for path in where), where
    assert Path(where[1]).name == "dossier_migrations"


async def test_installed_dossier_migrates_and_serves(
    installed: Path,
    create_database: Callable[[], Awaitable[str]],
    redis_url: str,
    tmp_path: Path,
) -> None:
    url = await create_database()
    env = _outside_env(DATABASE_URL=url, REDIS_URL=redis_url, DOSSIER_DATA_DIR=str(tmp_path))
    output = _run(installed / "dossier", "migrate", cwd=tmp_path, env=env)
    assert "Database migrated to head" in output

    head = ScriptDirectory(str(ROOT / "alembic")).get_current_head()
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            policies = await connection.scalar(
                text("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'")
            )
    finally:
        await engine.dispose()
    assert version == head
    assert policies == len(Base.metadata.tables)

    with serving(env, "--no-worker", command=[str(installed / "dossier")], cwd=tmp_path) as (
        base,
        _,
    ):
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 200
