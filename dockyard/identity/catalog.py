"""The service catalog, built from the services this process serves and its public URL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

INTERFACES = ("public", "internal", "admin")
_NS = uuid.UUID("5b1d2f0e-8a51-4c4e-9d6e-d0c4ca7d0a11")


@dataclass(frozen=True)
class ServiceEntry:
    type: str
    name: str
    path: str  # may contain {project_id}
    description: str = ""

    @property
    def id(self) -> str:
        return uuid.uuid5(_NS, f"service:{self.type}").hex


def endpoint_id(service: ServiceEntry, interface: str) -> str:
    return uuid.uuid5(_NS, f"endpoint:{service.type}:{interface}").hex


def endpoint_url(base_url: str, service: ServiceEntry, project_id: str | None) -> str | None:
    if "{project_id}" in service.path:
        if not project_id:
            return None
        return base_url + service.path.replace("{project_id}", project_id)
    return base_url + service.path


def build_catalog(
    base_url: str, region: str, services: list[ServiceEntry], project_id: str | None
) -> list[dict]:
    catalog = []
    for svc in services:
        url = endpoint_url(base_url, svc, project_id)
        if url is None:
            continue
        catalog.append(
            {
                "id": svc.id,
                "type": svc.type,
                "name": svc.name,
                "endpoints": [
                    {
                        "id": endpoint_id(svc, iface),
                        "interface": iface,
                        "region": region,
                        "region_id": region,
                        "url": url,
                    }
                    for iface in INTERFACES
                ],
            }
        )
    return catalog


def service_body(svc: ServiceEntry) -> dict:
    return {
        "id": svc.id,
        "type": svc.type,
        "name": svc.name,
        "description": svc.description,
        "enabled": True,
        "links": {},
    }


def endpoint_bodies(base_url: str, region: str, svc: ServiceEntry) -> list[dict]:
    url = base_url + svc.path.replace("{project_id}", "$(project_id)s")
    return [
        {
            "id": endpoint_id(svc, iface),
            "interface": iface,
            "region": region,
            "region_id": region,
            "service_id": svc.id,
            "url": url,
            "enabled": True,
            "links": {},
        }
        for iface in INTERFACES
    ]
