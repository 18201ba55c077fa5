"""The Dagster code location of OpenMRR (see definitions.py)."""
