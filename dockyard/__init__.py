"""dockyard: an OpenStack-compatible control plane for Docker containers."""

__version__ = "0.1.0"
