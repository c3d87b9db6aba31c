"""Scores and figures: encoding metrics and noise ceilings, the ridge baseline, ERPs, MNE topographies."""
