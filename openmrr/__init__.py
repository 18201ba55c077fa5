"""OpenMRR: subscription analytics from billing exports."""

__version__ = "0.1.0"
