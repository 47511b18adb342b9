"""hvtest: the test runner for guests (docs/hvtest.md)."""
