"""Shared core: wire schemas, model math, feature encoding, privacy math. Imports nothing else of ours."""
