"""Implementations shared by all models of one vendor; model plugins build on these."""
