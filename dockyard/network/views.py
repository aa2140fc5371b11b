"""JSON shapes of the networking API (the real Neutron fields, see contracts/clients.md §6)
and the generic list filters (`?field=value`, repeated keys meaning OR, `fields=`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dockyard.network.models import Network, Port, SecurityGroup, SecurityGroupRule, Subnet
from dockyard.network.secgroups import default_group_id


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _standard(obj) -> dict:
    return {
        "tenant_id": obj.project_id,
        "project_id": obj.project_id,
        "description": obj.description,
        "tags": [],
        "created_at": ts(obj.created_at),
        "updated_at": ts(obj.updated_at),
        "revision_number": obj.revision_number,
    }


def network_view(net: Network, subnet_ids: list[str]) -> dict:
    return {
        "id": net.id,
        "name": net.name,
        **_standard(net),
        "admin_state_up": net.admin_state_up,
        "status": "ACTIVE" if net.admin_state_up else "DOWN",
        "subnets": list(subnet_ids),
        "shared": net.shared,
        "router:external": net.external,
        "mtu": net.mtu,
        "availability_zones": ["nova"],
        "availability_zone_hints": [],
        "port_security_enabled": net.port_security_enabled,
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "is_default": False,
        "provider:network_type": "local",
        "provider:physical_network": None,
        "provider:segmentation_id": None,
        "l2_adjacency": True,
        "qos_policy_id": None,
        "dns_domain": "",
    }


def subnet_view(s: Subnet) -> dict:
    return {
        "id": s.id,
        "name": s.name,
        "network_id": s.network_id,
        **_standard(s),
        "ip_version": s.ip_version,
        "cidr": s.cidr,
        "gateway_ip": s.gateway_ip,
        "allocation_pools": list(s.allocation_pools or []),
        "enable_dhcp": s.enable_dhcp,
        "dns_nameservers": list(s.dns_nameservers or []),
        "host_routes": list(s.host_routes or []),
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "subnetpool_id": None,
        "service_types": [],
        "segment_id": None,
        "dns_publish_fixed_ip": None,
    }


def port_view(p: Port, fixed_ips: list[dict], groups: list[str]) -> dict:
    return {
        "id": p.id,
        "name": p.name,
        "network_id": p.network_id,
        **_standard(p),
        "mac_address": p.mac_address,
        "admin_state_up": p.admin_state_up,
        "status": "ACTIVE" if p.device_id and p.admin_state_up else "DOWN",
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "fixed_ips": fixed_ips,
        "security_groups": list(groups),
        "port_security_enabled": p.port_security_enabled,
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "binding:host_id": "",
        "binding:vif_type": "unbound" if not p.device_id else "other",
        "binding:vnic_type": "normal",
        "binding:profile": {},
        "binding:vif_details": {},
        "dns_name": "",
        "dns_assignment": [],
        "qos_policy_id": None,
        "qos_network_policy_id": None,
        "propagate_uplink_status": False,
    }


def rule_view(r: SecurityGroupRule) -> dict:
    return {
        "id": r.id,
        "security_group_id": r.security_group_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": None,
        "normalized_cidr": r.remote_ip_prefix,
        "description": r.description,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "tags": [],
        "created_at": ts(r.created_at),
        "updated_at": ts(r.updated_at),
        "revision_number": r.revision_number,
        "belongs_to_default_sg": r.security_group_id == default_group_id(r.project_id),
    }


def group_view(g: SecurityGroup, rules: Iterable[SecurityGroupRule]) -> dict:
    return {
        "id": g.id,
        "name": g.name,
        **_standard(g),
        "stateful": g.stateful,
        "shared": False,
        "security_group_rules": [rule_view(r) for r in rules],
    }


# ---- list filters -------------------------------------------------------------------------

PAGING = {"limit", "marker", "sort_key", "sort_dir", "page_reverse", "fields", "all_tenants"}


def _norm(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _matches(item: dict, key: str, wanted: list[str]) -> bool:
    if key == "fixed_ips":
        for want in wanted:
            k, _, v = want.partition("=")
            if any(str(ip.get(k)) == v for ip in item.get("fixed_ips", [])):
                return True
        return False
    if key not in item:
        return True  # unknown filters are ignored, like Neutron's non-strict mode
    value = item[key]
    wanted_norm = {w.lower() if w.lower() in ("true", "false") else w for w in wanted}
    if isinstance(value, list):
        return any(_norm(v) in wanted_norm for v in value)
    return _norm(value) in wanted_norm


def apply_filters(items: list[dict], params: list[tuple[str, str]]) -> list[dict]:
    filters: dict[str, list[str]] = {}
    for k, v in params:
        if k not in PAGING:
            filters.setdefault(k, []).append(v)
    out = [i for i in items if all(_matches(i, k, v) for k, v in filters.items())]
    limit = next((v for k, v in params if k == "limit"), None)
    marker = next((v for k, v in params if k == "marker"), None)
    if marker:
        ids = [i.get("id") for i in out]
        if marker in ids:
            out = out[ids.index(marker) + 1 :]
    if limit and limit.isdigit() and int(limit) > 0:
        out = out[: int(limit)]
    fields = [v for k, v in params if k == "fields"]
    if fields:
        wanted = {f for item in fields for f in item.split(",") if f}
        out = [{k: v for k, v in i.items() if k in wanted} for i in out]
    return out
