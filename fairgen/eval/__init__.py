"""Evaluation: fairness metrics, the downstream classifiers, features, quality, frontier."""
