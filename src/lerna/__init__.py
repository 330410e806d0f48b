"""Lerna: privacy-preserving on-device personalization trained by federated learning."""

__version__ = "0.1.0"
