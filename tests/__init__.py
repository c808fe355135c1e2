"""The test suite: its folders mirror the package (tests/data/formats/ tests sbir_utils/data/formats/);
shared helpers are in tests/helpers.py (``from tests.helpers import make_tiny_dataset``)."""
