"""`make test` collects every test directory in one pytest run: two test modules of one name in
directories that are not packages collide ("import file mismatch") and the second never runs."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_outside_packages_share_a_name() -> None:
    names = Counter(
        path.name
        for path in TESTS.rglob("test_*.py")
        if not (path.parent / "__init__.py").is_file()
    )
    assert sorted(name for name, count in names.items() if count > 1) == []
