"""Bundled models: the default model of `make demo`, also used by the test bank."""
