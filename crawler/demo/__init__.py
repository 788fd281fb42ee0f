"""Bundled demo institutions and the local HTTP server that serves them (see ``server``)."""
