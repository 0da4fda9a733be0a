"""Reliability tests: the catalogue of bad inputs (docs/BAD_INPUTS.md) and failing disks."""
