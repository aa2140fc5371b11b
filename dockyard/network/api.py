"""Networking API v2.0 (Neutron subset), mounted under /networking; clients append /v2.0."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.api.bodies import member, parse
from dockyard.api.context import RequestContext, request_context
from dockyard.api.errors import (
    BadRequest,
    Conflict,
    NotFound,
    install_error_handlers,
    neutron_error,
)
from dockyard.api.policy import enforce
from dockyard.api.service import ServiceApp
from dockyard.identity.catalog import ServiceEntry
from dockyard.network import ipam
from dockyard.network import networks as nets
from dockyard.network import ports as portlib
from dockyard.network import quotas as quotalib
from dockyard.network import secgroups as sg
from dockyard.network.backend import DockerBackend, subnet_of
from dockyard.network.common import chain_prefix, instance_id, visible_network
from dockyard.network.firewall import FirewallSync, request_sync
from dockyard.network.models import (
    IPAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Quota,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from dockyard.network.views import (
    apply_filters,
    group_view,
    network_view,
    port_view,
    rule_view,
    subnet_view,
)
from dockyard.runtime import Runtime

Ctx = Annotated[RequestContext, Depends(request_context)]
JsonBody = Annotated[dict, Body()]

EXTENSIONS = [
    ("security-group", "security-group", "The security groups extension."),
    ("quotas", "Quota management support", "Expose functions for quotas management per tenant"),
    ("quota_details", "Quota details management support", "Expose quota usage details"),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates project_id is enabled."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions."),
    ("standard-attr-revisions", "Resource revision numbers", "Adds revision_number."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at."),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("external-net", "Neutron external network", "Adds external network attribute."),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("network_availability_zone", "Network Availability Zone", "AZ support for networks."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("stateful-security-group", "Stateful security group", "Stateful security groups."),
    ("filter-validation", "Filter parameters validation", "Provides validation on filters."),
]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


Name = Annotated[str, Field(max_length=255)]


class NetworkCreate(_Loose):
    name: Name = ""
    description: str = ""
    admin_state_up: bool = True
    shared: bool = False
    mtu: int | None = None
    port_security_enabled: bool = True
    project_id: str | None = None
    tenant_id: str | None = None
    router_external: bool = Field(False, alias="router:external")


class NetworkUpdate(_Loose):
    name: Name | None = None
    description: str | None = None
    admin_state_up: bool | None = None
    shared: bool | None = None
    mtu: int | None = None
    port_security_enabled: bool | None = None


class SubnetCreate(_Loose):
    network_id: str
    cidr: str | None = None
    ip_version: int = 4
    name: Name = ""
    description: str = ""
    gateway_ip: str | None = ""
    allocation_pools: list[dict] | None = None
    dns_nameservers: list[str] | None = None
    host_routes: list[dict] | None = None
    enable_dhcp: bool = True
    project_id: str | None = None
    tenant_id: str | None = None
    subnetpool_id: str | None = None


class SubnetUpdate(_Loose):
    name: Name | None = None
    description: str | None = None
    dns_nameservers: list[str] | None = None
    host_routes: list[dict] | None = None
    enable_dhcp: bool | None = None
    allocation_pools: list[dict] | None = None
    gateway_ip: str | None = None


class FixedIpBody(_Loose):
    subnet_id: str | None = None
    ip_address: str | None = None


class PortCreate(_Loose):
    network_id: str
    name: Name = ""
    description: str = ""
    admin_state_up: bool = True
    mac_address: str | None = None
    fixed_ips: list[FixedIpBody] | None = None
    device_id: str = ""
    device_owner: str = ""
    security_groups: list[str] | None = None
    port_security_enabled: bool | None = None
    project_id: str | None = None
    tenant_id: str | None = None


class PortUpdate(_Loose):
    name: Name | None = None
    description: str | None = None
    admin_state_up: bool | None = None
    device_id: str | None = None
    device_owner: str | None = None
    security_groups: list[str] | None = None
    port_security_enabled: bool | None = None
    fixed_ips: list[FixedIpBody] | None = None
    mac_address: str | None = None


class GroupCreate(_Loose):
    name: Name = ""
    description: str = ""
    stateful: bool = True
    project_id: str | None = None
    tenant_id: str | None = None


class GroupUpdate(_Loose):
    name: Name | None = None
    description: str | None = None
    stateful: bool | None = None


class RuleCreate(_Loose):
    security_group_id: str
    direction: str | None = None
    ethertype: str | None = "IPv4"
    protocol: str | int | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None
    description: str = ""
    project_id: str | None = None
    tenant_id: str | None = None


def _owner(ctx: RequestContext, req: Any) -> str:
    project = req.project_id or req.tenant_id or ctx.project_id
    if not project:
        raise BadRequest("A project-scoped token is needed to create networking resources.")
    return project


def _refuse_unsupported(body: dict) -> None:
    """Fields this subset cannot honour are refused rather than silently ignored."""
    if body.get("remote_address_group_id"):
        raise BadRequest("Address groups are not supported.", kind="InvalidInput")


class NetworkService:
    """Everything the handlers share: runtime, Docker backend, firewall loop."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.backend = DockerBackend(runtime)
        self._prefix: str | None = None
        self.firewall = FirewallSync(runtime, self.prefix)

    def prefix(self) -> str:
        if self._prefix is None:
            with self.runtime.db.session() as s:
                self._prefix = chain_prefix(instance_id(s))
        return self._prefix

    def changed(self) -> None:
        request_sync(self.runtime)


def build(runtime: Runtime) -> ServiceApp:
    service = NetworkService(runtime)
    settings = runtime.settings
    base = settings.base_url + "/networking"
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app, neutron_error)
    db = runtime.db

    def params(request: Request) -> list[tuple[str, str]]:
        return list(request.query_params.multi_items())

    def scope_all(ctx: RequestContext, request: Request) -> bool:
        """Admin asked for every project (all_tenants, or an explicit project filter)."""
        q = request.query_params
        return ctx.is_admin and (
            q.get("all_tenants", "").lower() in ("1", "true", "yes")
            or "project_id" in q
            or "tenant_id" in q
        )

    # ---- discovery -------------------------------------------------------------------

    def version_doc() -> dict:
        return {
            "id": "v2.0",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": base + "/v2.0/"}],
        }

    @app.get("/")
    def versions() -> dict:
        return {"versions": [version_doc()]}

    @app.get("/v2.0")
    @app.get("/v2.0/")
    def v2(ctx: Ctx) -> dict:
        resources = [
            ("network", "networks"),
            ("subnet", "subnets"),
            ("port", "ports"),
            ("security_group", "security-groups"),
            ("security_group_rule", "security-group-rules"),
            ("quota", "quotas"),
        ]
        return {
            "resources": [
                {
                    "name": n,
                    "collection": c,
                    "links": [{"rel": "self", "href": f"{base}/v2.0/{c}"}],
                }
                for n, c in resources
            ]
        }

    @app.get("/v2.0/extensions")
    def extensions(ctx: Ctx) -> dict:
        enforce(ctx, "network:list_extensions")
        return {"extensions": [_ext(a, n, d) for a, n, d in EXTENSIONS]}

    @app.get("/v2.0/extensions/{alias}")
    def extension(alias: str, ctx: Ctx) -> dict:
        enforce(ctx, "network:list_extensions")
        for a, n, d in EXTENSIONS:
            if a == alias:
                return {"extension": _ext(a, n, d)}
        raise NotFound(f"Extension with alias {alias} does not exist", kind="ExtensionNotFound")

    @app.get("/v2.0/availability_zones")
    def availability_zones(ctx: Ctx) -> dict:
        enforce(ctx, "network:list_extensions")
        zones = [
            {"name": "nova", "resource": "network", "state": "available"},
            {"name": "nova", "resource": "router", "state": "available"},
        ]
        return {"availability_zones": zones}

    # ---- networks --------------------------------------------------------------------

    def subnet_ids(s: Session, network_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in network_ids}
        if network_ids:
            rows = s.execute(
                select(Subnet.network_id, Subnet.id)
                .where(Subnet.network_id.in_(network_ids))
                .order_by(Subnet.created_at)
            )
            for nid, sid in rows:
                out[nid].append(sid)
        return out

    def net_out(s: Session, net: Network) -> dict:
        return network_view(net, subnet_ids(s, [net.id])[net.id])

    def net_target(ctx: RequestContext, net: Network) -> dict:
        return {"project_id": ctx.project_id if net.shared else net.project_id}

    @app.get("/v2.0/networks")
    def list_networks(request: Request, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_network")
        with db.session() as s:
            q = select(Network).order_by(Network.created_at, Network.id)
            if not ctx.is_admin:
                q = q.where((Network.project_id == ctx.project_id) | Network.shared.is_(True))
            rows = s.scalars(q).all()
            subs = subnet_ids(s, [n.id for n in rows])
            items = [network_view(n, subs[n.id]) for n in rows]
        return {"networks": apply_filters(items, params(request))}

    @app.post("/v2.0/networks", status_code=201)
    def create_network(body: JsonBody, ctx: Ctx) -> dict:
        req = parse(NetworkCreate, member(body, "network"), "network")
        project = _owner(ctx, req)
        enforce(ctx, "network:create_network", {"project_id": project})
        if req.shared:
            enforce(ctx, "network:create_network:shared", {"project_id": project})
        if req.router_external:
            enforce(ctx, "network:create_network:router:external", {"project_id": project})
        with db.session() as s:
            net = nets.new_network(
                s,
                settings,
                project_id=project,
                name=req.name,
                description=req.description,
                admin_state_up=req.admin_state_up,
                shared=req.shared,
                mtu=req.mtu,
                port_security_enabled=req.port_security_enabled,
                external=req.router_external,
            )
            return {"network": net_out(s, net)}

    @app.get("/v2.0/networks/{network_id}")
    def show_network(network_id: str, request: Request, ctx: Ctx) -> dict:
        with db.session() as s:
            net = visible_network(s, ctx, network_id)
            enforce(ctx, "network:get_network", net_target(ctx, net))
            return {"network": apply_filters([net_out(s, net)], _fields_only(request))[0]}

    @app.put("/v2.0/networks/{network_id}")
    def update_network(network_id: str, body: JsonBody, ctx: Ctx) -> dict:
        raw = member(body, "network")
        req = parse(NetworkUpdate, raw, "network")
        with db.session() as s:
            net = visible_network(s, ctx, network_id)
            enforce(ctx, "network:update_network", {"project_id": net.project_id})
            if req.shared is not None and req.shared != net.shared:
                enforce(ctx, "network:update_network:shared", {"project_id": net.project_id})
                net.shared = req.shared
            if req.mtu is not None and req.mtu != net.mtu:
                if subnet_of(s, net.id) is not None:
                    raise Conflict(
                        "The MTU of a network with a subnet cannot change: its Docker network "
                        "is already made. Delete the subnet first.",
                        kind="InvalidInput",
                    )
                if not 68 <= req.mtu <= 9000:
                    raise BadRequest(f"Invalid input for mtu: {req.mtu}.")
                net.mtu = req.mtu
            for field in ("name", "description", "admin_state_up", "port_security_enabled"):
                value = getattr(req, field)
                if value is not None:
                    setattr(net, field, value)
            net.revision_number += 1
            s.flush()
            return {"network": net_out(s, net)}

    @app.delete("/v2.0/networks/{network_id}", status_code=204)
    def delete_network(network_id: str, ctx: Ctx) -> Response:
        with db.session() as s:
            net = visible_network(s, ctx, network_id)
            enforce(ctx, "network:delete_network", {"project_id": net.project_id})
            nets.delete_network(s, service.backend, net)
        service.changed()
        return Response(status_code=204)

    # ---- subnets ---------------------------------------------------------------------

    @app.get("/v2.0/subnets")
    def list_subnets(request: Request, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_subnet")
        with db.session() as s:
            q = (
                select(Subnet)
                .join(Network, Network.id == Subnet.network_id)
                .order_by(Subnet.created_at, Subnet.id)
            )
            if not ctx.is_admin:
                q = q.where((Network.project_id == ctx.project_id) | Network.shared.is_(True))
            items = [subnet_view(x) for x in s.scalars(q)]
        return {"subnets": apply_filters(items, params(request))}

    def visible_subnet(s: Session, ctx: RequestContext, subnet_id: str) -> Subnet:
        subnet = s.get(Subnet, subnet_id)
        if subnet is not None:
            try:
                visible_network(s, ctx, subnet.network_id)
                return subnet
            except NotFound:
                pass
        raise NotFound(f"Subnet {subnet_id} could not be found.", kind="SubnetNotFound")

    @app.post("/v2.0/subnets", status_code=201)
    def create_subnet(body: JsonBody, ctx: Ctx) -> dict:
        req = parse(SubnetCreate, member(body, "subnet"), "subnet")
        if not req.cidr:
            raise BadRequest(
                "Bad subnets request: a cidr must be given (subnet pools are not supported).",
                kind="BadRequest",
            )
        with db.session() as s:
            net = visible_network(s, ctx, req.network_id)
            enforce(ctx, "network:create_subnet", {"project_id": net.project_id})
            project = req.project_id or req.tenant_id or net.project_id
            subnet = nets.create_subnet(
                s,
                service.backend,
                net,
                project,
                nets.SubnetRequest(
                    cidr=req.cidr,
                    name=req.name,
                    description=req.description,
                    gateway_ip=req.gateway_ip,
                    allocation_pools=req.allocation_pools,
                    dns_nameservers=req.dns_nameservers,
                    host_routes=req.host_routes,
                    enable_dhcp=req.enable_dhcp,
                    ip_version=req.ip_version,
                ),
            )
            return {"subnet": subnet_view(subnet)}

    @app.get("/v2.0/subnets/{subnet_id}")
    def show_subnet(subnet_id: str, request: Request, ctx: Ctx) -> dict:
        with db.session() as s:
            subnet = visible_subnet(s, ctx, subnet_id)
            net = s.get(Network, subnet.network_id)
            enforce(ctx, "network:get_subnet", net_target(ctx, net))
            return {"subnet": apply_filters([subnet_view(subnet)], _fields_only(request))[0]}

    @app.put("/v2.0/subnets/{subnet_id}")
    def update_subnet(subnet_id: str, body: JsonBody, ctx: Ctx) -> dict:
        raw = member(body, "subnet")
        req = parse(SubnetUpdate, raw, "subnet")
        with db.session() as s:
            subnet = visible_subnet(s, ctx, subnet_id)
            enforce(ctx, "network:update_subnet", {"project_id": subnet.project_id})
            if "gateway_ip" in raw and req.gateway_ip != subnet.gateway_ip:
                raise Conflict(
                    "The gateway of a subnet cannot change: the Docker bridge holds it.",
                    kind="InvalidInput",
                )
            if req.allocation_pools is not None:
                cidr = ipam.parse_cidr(subnet.cidr)
                gw = ipam.parse_ip(subnet.gateway_ip) if subnet.gateway_ip else None
                pools = ipam.parse_pools(cidr, req.allocation_pools, gw)
                subnet.allocation_pools = [p.as_dict() for p in pools]
            if req.dns_nameservers is not None:
                subnet.dns_nameservers = [str(x) for x in req.dns_nameservers]
            if req.host_routes is not None:
                subnet.host_routes = list(req.host_routes)
            for field in ("name", "description", "enable_dhcp"):
                value = getattr(req, field)
                if value is not None:
                    setattr(subnet, field, value)
            subnet.revision_number += 1
            s.flush()
            return {"subnet": subnet_view(subnet)}

    @app.delete("/v2.0/subnets/{subnet_id}", status_code=204)
    def delete_subnet(subnet_id: str, ctx: Ctx) -> Response:
        with db.session() as s:
            subnet = visible_subnet(s, ctx, subnet_id)
            enforce(ctx, "network:delete_subnet", {"project_id": subnet.project_id})
            nets.delete_subnet(s, service.backend, subnet)
        return Response(status_code=204)

    # ---- ports -----------------------------------------------------------------------

    def ports_out(s: Session, ports: list[Port]) -> list[dict]:
        ids = [p.id for p in ports]
        ips: dict[str, list[dict]] = {i: [] for i in ids}
        groups: dict[str, list[str]] = {i: [] for i in ids}
        if ids:
            for a in s.scalars(select(IPAllocation).where(IPAllocation.port_id.in_(ids))):
                ips[a.port_id].append({"subnet_id": a.subnet_id, "ip_address": a.ip_address})
            for pid, gid in s.execute(
                select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
                .where(PortSecurityGroup.port_id.in_(ids))
                .order_by(PortSecurityGroup.security_group_id)
            ):
                groups[pid].append(gid)
        return [port_view(p, ips[p.id], groups[p.id]) for p in ports]

    def visible_port(s: Session, ctx: RequestContext, port_id: str) -> Port:
        port = s.get(Port, port_id)
        if port is None or not (ctx.is_admin or port.project_id == ctx.project_id):
            raise NotFound(f"Port {port_id} could not be found.", kind="PortNotFound")
        return port

    @app.get("/v2.0/ports")
    def list_ports(request: Request, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_port")
        with db.session() as s:
            q = select(Port).order_by(Port.created_at, Port.id)
            if not ctx.is_admin:
                q = q.where(Port.project_id == ctx.project_id)
            items = ports_out(s, list(s.scalars(q)))
        return {"ports": apply_filters(items, params(request))}

    @app.post("/v2.0/ports", status_code=201)
    def create_port(body: JsonBody, ctx: Ctx) -> dict:
        req = parse(PortCreate, member(body, "port"), "port")
        project = _owner(ctx, req)
        enforce(ctx, "network:create_port", {"project_id": project})
        if req.mac_address:
            enforce(ctx, "network:create_port:mac_address", {"project_id": project})
        with db.session() as s:
            net = visible_network(s, ctx, req.network_id)
            fixed = (
                None
                if req.fixed_ips is None
                else [portlib.FixedIP(f.subnet_id, f.ip_address) for f in req.fixed_ips]
            )
            port = portlib.create_port(
                s,
                ctx,
                net,
                project_id=project,
                fixed_ips=fixed,
                mac_address=req.mac_address,
                security_groups=req.security_groups,
                port_security_enabled=req.port_security_enabled,
                name=req.name,
                description=req.description,
                device_id=req.device_id,
                device_owner=req.device_owner,
                admin_state_up=req.admin_state_up,
            )
            out = ports_out(s, [port])[0]
        service.changed()
        return {"port": out}

    @app.get("/v2.0/ports/{port_id}")
    def show_port(port_id: str, request: Request, ctx: Ctx) -> dict:
        with db.session() as s:
            port = visible_port(s, ctx, port_id)
            enforce(ctx, "network:get_port", {"project_id": port.project_id})
            return {"port": apply_filters(ports_out(s, [port]), _fields_only(request))[0]}

    @app.put("/v2.0/ports/{port_id}")
    def update_port(port_id: str, body: JsonBody, ctx: Ctx) -> dict:
        raw = member(body, "port")
        req = parse(PortUpdate, raw, "port")
        with db.session() as s:
            port = visible_port(s, ctx, port_id)
            enforce(ctx, "network:update_port", {"project_id": port.project_id})
            if req.mac_address is not None and req.mac_address.lower() != port.mac_address:
                raise Conflict("The MAC address of a port cannot change.", kind="PortBound")
            for field in ("name", "description", "admin_state_up", "device_id", "device_owner"):
                value = getattr(req, field)
                if value is not None:
                    setattr(port, field, value)
            if req.port_security_enabled is not None:
                port.port_security_enabled = req.port_security_enabled
            if req.security_groups is not None:
                ids = sg.resolve_groups(s, ctx, port.project_id, req.security_groups)
                portlib.set_groups(s, port, ids)
            elif req.port_security_enabled is False:
                portlib.set_groups(s, port, [])
            if port.port_security_enabled is False and portlib.port_groups(s, port.id):
                raise BadRequest(
                    "Port security must be enabled to have security groups on a port.",
                    kind="PortSecurityAndIPRequiredForSecurityGroups",
                )
            if req.fixed_ips is not None:
                portlib.change_fixed_ips(
                    s, port, [portlib.FixedIP(f.subnet_id, f.ip_address) for f in req.fixed_ips]
                )
            port.revision_number += 1
            s.flush()
            out = ports_out(s, [port])[0]
        service.changed()
        return {"port": out}

    @app.delete("/v2.0/ports/{port_id}", status_code=204)
    def delete_port(port_id: str, ctx: Ctx) -> Response:
        with db.session() as s:
            port = visible_port(s, ctx, port_id)
            enforce(ctx, "network:delete_port", {"project_id": port.project_id})
            if port.device_owner.startswith("compute:") and port.device_id:
                raise Conflict(
                    f"Port {port.id} is attached to server {port.device_id}: delete the server "
                    "or detach the interface first.",
                    kind="PortInUse",
                )
            s.delete(port)
        service.changed()
        return Response(status_code=204)

    # ---- security groups -------------------------------------------------------------

    def rules_of(s: Session, group_ids: list[str]) -> dict[str, list[SecurityGroupRule]]:
        out: dict[str, list[SecurityGroupRule]] = {g: [] for g in group_ids}
        if group_ids:
            for r in s.scalars(
                select(SecurityGroupRule)
                .where(SecurityGroupRule.security_group_id.in_(group_ids))
                .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)
            ):
                out[r.security_group_id].append(r)
        return out

    def group_out(s: Session, g: SecurityGroup) -> dict:
        return group_view(g, rules_of(s, [g.id])[g.id])

    @app.get("/v2.0/security-groups")
    def list_groups(request: Request, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_security_group")
        with db.session() as s:
            if ctx.project_id:
                sg.ensure_default_group(s, ctx.project_id)
            q = select(SecurityGroup).order_by(SecurityGroup.created_at, SecurityGroup.id)
            if not scope_all(ctx, request):
                q = q.where(SecurityGroup.project_id == ctx.project_id)
            groups = list(s.scalars(q))
            rules = rules_of(s, [g.id for g in groups])
            items = [group_view(g, rules[g.id]) for g in groups]
        return {"security_groups": apply_filters(items, params(request))}

    @app.post("/v2.0/security-groups", status_code=201)
    def create_group(body: JsonBody, ctx: Ctx) -> dict:
        req = parse(GroupCreate, member(body, "security_group"), "security_group")
        project = _owner(ctx, req)
        enforce(ctx, "network:create_security_group", {"project_id": project})
        if not req.stateful:
            raise BadRequest("Stateless security groups are not supported.", kind="InvalidInput")
        with db.session() as s:
            group = sg.create_group(s, project, req.name, req.description)
            return {"security_group": group_out(s, group)}

    @app.get("/v2.0/security-groups/{group_id}")
    def show_group(group_id: str, request: Request, ctx: Ctx) -> dict:
        with db.session() as s:
            if ctx.project_id:
                sg.ensure_default_group(s, ctx.project_id)
            group = sg.visible_group(s, ctx, group_id)
            enforce(ctx, "network:get_security_group", {"project_id": group.project_id})
            return {
                "security_group": apply_filters([group_out(s, group)], _fields_only(request))[0]
            }

    @app.put("/v2.0/security-groups/{group_id}")
    def update_group(group_id: str, body: JsonBody, ctx: Ctx) -> dict:
        req = parse(GroupUpdate, member(body, "security_group"), "security_group")
        with db.session() as s:
            group = sg.visible_group(s, ctx, group_id)
            enforce(ctx, "network:update_security_group", {"project_id": group.project_id})
            if req.name is not None and req.name != group.name:
                if sg.is_default(group):
                    raise Conflict(
                        "Updating default security group not allowed.",
                        kind="SecurityGroupCannotUpdateDefault",
                    )
                if req.name == sg.DEFAULT_NAME:
                    raise Conflict(
                        "Default security group already exists.",
                        kind="SecurityGroupDefaultAlreadyExists",
                    )
                group.name = req.name
            if req.description is not None:
                group.description = req.description
            if req.stateful is False:
                raise BadRequest("Stateless security groups are not supported.")
            group.revision_number += 1
            s.flush()
            return {"security_group": group_out(s, group)}

    @app.delete("/v2.0/security-groups/{group_id}", status_code=204)
    def delete_group(group_id: str, ctx: Ctx) -> Response:
        with db.session() as s:
            group = sg.visible_group(s, ctx, group_id)
            enforce(ctx, "network:delete_security_group", {"project_id": group.project_id})
            sg.delete_group(s, group)
        service.changed()
        return Response(status_code=204)

    # ---- security group rules --------------------------------------------------------

    @app.get("/v2.0/security-group-rules")
    def list_rules(request: Request, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_security_group_rule")
        with db.session() as s:
            if ctx.project_id:
                sg.ensure_default_group(s, ctx.project_id)
            q = select(SecurityGroupRule).order_by(
                SecurityGroupRule.created_at, SecurityGroupRule.id
            )
            if not scope_all(ctx, request):
                q = q.where(SecurityGroupRule.project_id == ctx.project_id)
            items = [rule_view(r) for r in s.scalars(q)]
        return {"security_group_rules": apply_filters(items, params(request))}

    @app.post("/v2.0/security-group-rules", status_code=201)
    def create_rule(body: JsonBody, ctx: Ctx) -> dict:
        raw = member(body, "security_group_rule")
        req = parse(RuleCreate, raw, "security_group_rule")
        _refuse_unsupported(raw)
        with db.session() as s:
            group = sg.visible_group(s, ctx, req.security_group_id)
            enforce(ctx, "network:create_security_group_rule", {"project_id": group.project_id})
            if req.remote_group_id:
                sg.visible_group(s, ctx, req.remote_group_id)
            spec = sg.normalize_rule(
                req.direction,
                req.ethertype,
                req.protocol,
                req.port_range_min,
                req.port_range_max,
                req.remote_ip_prefix,
                req.remote_group_id,
            )
            rule = sg.add_rule(s, group, spec, req.description)
            out = rule_view(rule)
        service.changed()
        return {"security_group_rule": out}

    def visible_rule(s: Session, ctx: RequestContext, rule_id: str) -> SecurityGroupRule:
        rule = s.get(SecurityGroupRule, rule_id)
        if rule is None or not (ctx.is_admin or rule.project_id == ctx.project_id):
            raise NotFound(
                f"Security group rule {rule_id} does not exist",
                kind="SecurityGroupRuleNotFound",
            )
        return rule

    @app.get("/v2.0/security-group-rules/{rule_id}")
    def show_rule(rule_id: str, request: Request, ctx: Ctx) -> dict:
        with db.session() as s:
            rule = visible_rule(s, ctx, rule_id)
            enforce(ctx, "network:get_security_group_rule", {"project_id": rule.project_id})
            return {
                "security_group_rule": apply_filters([rule_view(rule)], _fields_only(request))[0]
            }

    @app.delete("/v2.0/security-group-rules/{rule_id}", status_code=204)
    def delete_rule(rule_id: str, ctx: Ctx) -> Response:
        with db.session() as s:
            rule = visible_rule(s, ctx, rule_id)
            enforce(ctx, "network:delete_security_group_rule", {"project_id": rule.project_id})
            group = s.get(SecurityGroup, rule.security_group_id)
            if group is not None:
                group.revision_number += 1
            s.delete(rule)
        service.changed()
        return Response(status_code=204)

    # ---- quotas ----------------------------------------------------------------------

    def quota_target(project_id: str) -> dict:
        return {"project_id": project_id}

    @app.get("/v2.0/quotas")
    def list_quotas(ctx: Ctx) -> dict:
        enforce(ctx, "network:update_quota")

        with db.session() as s:
            projects = sorted(set(s.scalars(select(Quota.project_id))))
            return {
                "quotas": [
                    {**quotalib.limits(s, p), "project_id": p, "tenant_id": p} for p in projects
                ]
            }

    @app.get("/v2.0/quotas/{project_id}/default")
    def default_quota(project_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_quota", quota_target(project_id))
        return {"quota": dict(quotalib.DEFAULTS)}

    @app.get("/v2.0/quotas/{project_id}/details")
    def quota_details(project_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_quota", quota_target(project_id))
        with db.session() as s:
            limits = quotalib.limits(s, project_id)
            used = quotalib.used(s, project_id)
        return {
            "quota": {
                k: {"limit": v, "used": used.get(k, 0), "reserved": 0} for k, v in limits.items()
            }
        }

    @app.get("/v2.0/quotas/{project_id}")
    def show_quota(project_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "network:get_quota", quota_target(project_id))
        with db.session() as s:
            return {"quota": quotalib.limits(s, project_id)}

    @app.put("/v2.0/quotas/{project_id}")
    def update_quota(project_id: str, body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "network:update_quota", quota_target(project_id))
        values = member(body, "quota")
        with db.session() as s:
            quotalib.update(s, project_id, values)
            return {"quota": quotalib.limits(s, project_id)}

    @app.delete("/v2.0/quotas/{project_id}", status_code=204)
    def delete_quota(project_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "network:update_quota", quota_target(project_id))
        with db.session() as s:
            quotalib.reset(s, project_id)
        return Response(status_code=204)

    def is_public(method: str, path: str) -> bool:
        return method == "GET" and path in ("/", "")

    return ServiceApp(
        prefix="/networking",
        app=app,
        render_error=neutron_error,
        is_public=is_public,
        catalog=ServiceEntry("network", "neutron", "/networking", "Networking"),
        background=[service.backend.run, service.firewall.run],
    )


def _fields_only(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k == "fields"]


def _ext(alias: str, name: str, description: str) -> dict:
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": "2024-01-01T00:00:00-00:00",
        "links": [],
    }
