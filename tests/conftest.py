"""Shared test helpers: where the real kmodel fixtures live, and a clean skip when they are absent."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "kmodel"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip("real kmodel fixtures not found at %s (they live beside the checkout, not in it)" % FIXTURES)
    return FIXTURES


def fixture_file(*parts) -> Path:
    """Path of one fixture file, skipping the test when it is absent."""
    p = FIXTURES.joinpath(*parts)
    if not p.is_file():
        pytest.skip("fixture %s not found (../shared/fixtures is beside the checkout, not in it)" % p)
    return p
