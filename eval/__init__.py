"""Localization evaluation: box conventions, threshold sweeps, metrics, statistics, reports, figures.

Usable alone (score maps in, numbers out): never imports ``wsol`` or ``cam``, and nothing here
imports torch.
"""
