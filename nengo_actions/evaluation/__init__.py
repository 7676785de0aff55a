"""Evaluation: spiking runs, energy estimates, metric names, cross-validation and the run report."""
