"""The only package that talks to Docker (docker-py)."""
