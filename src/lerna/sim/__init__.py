"""Simulation and evaluation: data sets, the fleet simulator, evaluation harness."""
