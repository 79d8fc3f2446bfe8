"""Packages of the distribution (the metadata is in pyproject.toml).

Besides `backend`, the wheel ships the repository's top-level `alembic/`
folder (env.py, the shared migration helpers and versions/) as the package
`dossier_migrations`, so that an installed `dossier migrate` finds the
scripts through that package (`backend/kit/migrations.py`). The folder keeps
its name and has no `__init__.py`: in a checkout a package named `alembic`
would shadow the Alembic library.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        # Namespace packages too: a domain folder without `__init__.py` ships.
        *find_namespace_packages(include=["backend", "backend.*"], exclude=["*.__pycache__"]),
        "dossier_migrations",
        "dossier_migrations.versions",
    ],
    package_dir={"dossier_migrations": "alembic"},
)
