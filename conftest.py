"""Root conftest: loaded for every pytest run in this repository (``pytest book/`` too),
so the notebooks always get the same environment as the unit tests."""

from tests.conftest import configure_environment

configure_environment()
