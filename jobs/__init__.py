"""Thin entrypoints: each job module has ``main(argv=None) -> int``."""
