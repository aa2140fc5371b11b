"""Orchestration (Heat API v1): HOT templates, a durable stack engine and resource plugins."""
