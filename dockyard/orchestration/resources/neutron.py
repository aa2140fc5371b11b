"""OS::Neutron::Net, Subnet and Port through networking's Python interface
(dockyard.network.networks / ports), in the stack creator's name."""

from __future__ import annotations

from typing import Any

from dockyard.api.errors import ApiError
from dockyard.orchestration.errors import ResourceFailure, TemplateError
from dockyard.orchestration.resources.base import Prop, ServiceResource


class _Neutron(ServiceResource):
    pass


class Net(_Neutron):
    type_name = "OS::Neutron::Net"
    description = "A resource for managing Neutron net."
    properties_schema = {
        "name": Prop("string", "A string specifying a symbolic name for the network.",
                     update_allowed=False),
        "admin_state_up": Prop("boolean", "A boolean value specifying the administrative "
                               "status of the network.", default=True),
        "shared": Prop("boolean", "Whether this network should be shared across all tenants.",
                       default=False),
        "port_security_enabled": Prop("boolean", "Flag to enable/disable port security on "
                                      "the network.", default=True),
        "value_specs": Prop("map", "Extra parameters to include in the request.", default={}),
    }  # fmt: skip
    attributes_schema = {
        "name": {"description": "The name of the network.", "type": "string"},
        "subnets": {"description": "Subnets of this network.", "type": "list"},
    }

    def validate(self) -> None:
        if self.properties.get("shared") and not self.ctx.is_admin:
            from dockyard.api.errors import Forbidden

            raise Forbidden(f"resources.{self.name}: a shared network needs the admin role")

    def create(self) -> str:
        from dockyard.network.networks import new_network

        with self._session() as s:
            net = self._call(
                new_network,
                s,
                self.ctx.settings,
                project_id=self.ctx.project_id,
                name=self.properties.get("name") or f"{self.ctx.stack_name}-{self.name}",
                admin_state_up=bool(self.properties.get("admin_state_up", True)),
                shared=bool(self.properties.get("shared")),
                port_security_enabled=bool(self.properties.get("port_security_enabled", True)),
            )
            self.data["name"] = net.name
            return net.id

    def delete(self) -> None:
        if not self.physical_id:
            return
        from dockyard.network.backend import DockerBackend
        from dockyard.network.common import visible_network
        from dockyard.network.networks import delete_network

        with self._session() as s:
            try:
                net = visible_network(s, self._rctx(), self.physical_id)
            except ApiError:
                return  # gone already
            self._call(delete_network, s, DockerBackend(self.ctx.services.runtime), net)

    def attribute(self, name: str) -> Any:
        if name == "name":
            return self.data.get("name")
        if name == "subnets":
            from dockyard.network.backend import subnet_of

            with self._session() as s:
                sub = subnet_of(s, self.physical_id)
                return [sub.id] if sub else []
        return None


class Subnet(_Neutron):
    type_name = "OS::Neutron::Subnet"
    description = "A resource for managing Neutron subnets."
    properties_schema = {
        "network": Prop("string", "The ID or name of the attached network.", required=True,
                        constraints=[{"custom_constraint": "neutron.network"}]),
        "cidr": Prop("string", "The CIDR.", required=True),
        "name": Prop("string", "The name of the subnet."),
        "ip_version": Prop("integer", "The IP version, which is 4 or 6.", default=4,
                           constraints=[{"allowed_values": [4]}]),
        "gateway_ip": Prop("string", "The gateway IP address."),
        "dns_nameservers": Prop("list", "A specified set of DNS name servers to be used.",
                                default=[]),
        "enable_dhcp": Prop("boolean", "Set to true if DHCP is enabled.", default=True),
        "allocation_pools": Prop("list", "The start and end addresses for the allocation "
                                 "pools."),
    }  # fmt: skip
    attributes_schema = {"cidr": {"description": "CIDR block notation for this subnet.",
                                  "type": "string"},
                         "gateway_ip": {"description": "IP of the subnet's gateway.",
                                        "type": "string"},
                         "network_id": {"description": "Parent network of the subnet.",
                                        "type": "string"}}  # fmt: skip

    def create(self) -> str:
        from dockyard.network.backend import DockerBackend
        from dockyard.network.common import visible_network
        from dockyard.network.networks import SubnetRequest, create_subnet

        p = self.properties
        with self._session() as s:
            net = self._call(visible_network, s, self._rctx(), p["network"])
            req = SubnetRequest(
                cidr=p["cidr"],
                name=p.get("name") or "",
                gateway_ip=p.get("gateway_ip") or "",
                allocation_pools=p.get("allocation_pools"),
                dns_nameservers=p.get("dns_nameservers") or None,
                enable_dhcp=bool(p.get("enable_dhcp", True)),
            )
            backend = DockerBackend(self.ctx.services.runtime)
            sub = self._call(create_subnet, s, backend, net, self.ctx.project_id, req)
            self.data.update(network_id=net.id, cidr=sub.cidr, gateway_ip=sub.gateway_ip)
            return sub.id

    def delete(self) -> None:
        if not self.physical_id:
            return
        from dockyard.network.backend import DockerBackend, subnet_of
        from dockyard.network.networks import delete_subnet

        with self._session() as s:
            sub = subnet_of(s, self.data.get("network_id", ""))
            if sub is None or sub.id != self.physical_id:
                return
            self._call(delete_subnet, s, DockerBackend(self.ctx.services.runtime), sub)

    def attribute(self, name: str) -> Any:
        return self.data.get(name)


class Port(_Neutron):
    type_name = "OS::Neutron::Port"
    description = "A resource for managing Neutron ports."
    properties_schema = {
        "network": Prop("string", "Network this port belongs to."),
        "network_id": Prop("string", "Network this port belongs to (deprecated name)."),
        "fixed_ips": Prop("list", "Desired IPs for this port.", default=[]),
        "security_groups": Prop("list", "Security group IDs or names to associate with this "
                                "port.", update_allowed=False),
        "name": Prop("string", "A symbolic name for this port."),
    }  # fmt: skip
    attributes_schema = {
        "fixed_ips": {"description": "Fixed IP addresses.", "type": "list"},
        "mac_address": {"description": "MAC address of the port.", "type": "string"},
        "network_id": {"description": "Unique identifier for the network owning the port.",
                       "type": "string"},
    }  # fmt: skip

    def _device(self) -> str:
        return f"heat-port-{self.incarnation}"

    def validate(self) -> None:
        if not (self.properties.get("network") or self.properties.get("network_id")):
            raise TemplateError(
                f"Property error: resources.{self.name}.properties: Property network not assigned"
            )

    def create(self) -> str:
        from dockyard.network.ports import allocate_port, ports_for_device

        p = self.properties
        fixed = None
        for item in p.get("fixed_ips") or []:
            if isinstance(item, dict) and item.get("ip_address"):
                fixed = item["ip_address"]
        with self._session() as s:
            found = ports_for_device(s, self._device())
            binding = found[0] if found else self._call(
                allocate_port, s, self._rctx(), device_id=self._device(),
                network_id=p.get("network") or p.get("network_id"), fixed_ip=fixed,
                security_groups=p.get("security_groups"),
            )  # fmt: skip
            self.data.update(
                ip=binding.ip_address, mac=binding.mac_address, network_id=binding.network_id
            )
            return binding.port_id

    def delete(self) -> None:
        from dockyard.network.ports import release_ports

        with self._session() as s:
            release_ports(s, self._device())

    def attribute(self, name: str) -> Any:
        if name == "fixed_ips":
            return [{"ip_address": self.data.get("ip")}] if self.data.get("ip") else []
        if name == "mac_address":
            return self.data.get("mac")
        if name == "network_id":
            return self.data.get("network_id")
        return None


_RULE = {
    "direction": Prop("string", "The direction in which the security group rule is applied.",
                      default="ingress",
                      constraints=[{"allowed_values": ["ingress", "egress"]}]),
    "ethertype": Prop("string", "Ethertype of the traffic.", default="IPv4",
                      constraints=[{"allowed_values": ["IPv4", "IPv6"]}]),
    "port_range_min": Prop("integer", "The minimum port number in the range.",
                           constraints=[{"range": {"min": 0, "max": 65535}}]),
    "port_range_max": Prop("integer", "The maximum port number in the range.",
                           constraints=[{"range": {"min": 0, "max": 65535}}]),
    "protocol": Prop("string", "The protocol that is matched by the security group rule."),
    "remote_mode": Prop("string", "Whether to specify a remote group or a remote IP prefix.",
                        default="remote_ip_prefix",
                        constraints=[{"allowed_values": ["remote_ip_prefix",
                                                         "remote_group_id"]}]),
    "remote_group_id": Prop("string", "The remote group ID to be associated with this rule."),
    "remote_ip_prefix": Prop("string", "The remote IP prefix (CIDR)."),
}  # fmt: skip


class SecurityGroup(_Neutron):
    type_name = "OS::Neutron::SecurityGroup"
    description = "A resource for managing Neutron security groups."
    properties_schema = {
        "name": Prop("string", "A string specifying a symbolic name for the security group."),
        "description": Prop("string", "Description of the security group.", default=""),
        "rules": Prop("list", "List of security group rules.", default=[],
                      schema=Prop("map", schema=_RULE)),
    }  # fmt: skip
    attributes_schema = {}

    def create(self) -> str:
        from dockyard.network.secgroups import add_rule, create_group, normalize_rule

        p = self.properties
        with self._session() as s:
            group = self._call(
                create_group,
                s,
                self.ctx.project_id,
                p.get("name") or f"{self.ctx.stack_name}-{self.name}",
                p.get("description") or "",
            )
            for rule in p.get("rules") or []:
                remote_group = rule.get("remote_group_id")
                if rule.get("remote_mode") == "remote_group_id" and not remote_group:
                    remote_group = group.id  # Heat: no id means this very group
                spec = self._call(
                    normalize_rule,
                    rule.get("direction") or "ingress",
                    rule.get("ethertype") or "IPv4",
                    rule.get("protocol"),
                    rule.get("port_range_min"),
                    rule.get("port_range_max"),
                    None if rule.get("remote_mode") == "remote_group_id"
                    else rule.get("remote_ip_prefix"),
                    remote_group if rule.get("remote_mode") == "remote_group_id" else None,
                )  # fmt: skip
                try:
                    add_rule(s, group, spec)
                except ApiError as exc:
                    if exc.kind != "SecurityGroupRuleExists":
                        raise ResourceFailure(exc.message, exc.kind) from exc
            return group.id

    def delete(self) -> None:
        if not self.physical_id:
            return
        from dockyard.network.secgroups import delete_group, visible_group

        with self._session() as s:
            try:
                group = visible_group(s, self._rctx(), self.physical_id)
            except ApiError:
                return
            self._call(delete_group, s, group)
