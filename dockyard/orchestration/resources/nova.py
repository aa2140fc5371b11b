"""OS::Nova::Server, OS::Nova::KeyPair and OS::Nova::ServerGroup through compute's Python
interface (dockyard.compute.servers / keypairs / groups), in the stack creator's name."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from dockyard.api.errors import ApiError
from dockyard.orchestration.errors import ResourceFailure, TemplateError
from dockyard.orchestration.resources.base import Prop, ServiceResource


class _Nova(ServiceResource):
    pass


_NETWORK = {
    "uuid": Prop("string", "ID of network to create a port on (deprecated: use network)."),
    "network": Prop("string", "Name or ID of network to create a port on.",
                    constraints=[{"custom_constraint": "neutron.network"}]),
    "allocate_network": Prop("string", "The special string values of network, auto: means "
                             "either a network that is already available to the project "
                             "will be used, or if one does not exist, will be automatically "
                             "created for the project; none: means no networking will be "
                             "allocated for the created server.",
                             constraints=[{"allowed_values": ["none", "auto"]}]),
    "fixed_ip": Prop("string", "Fixed IP address to specify for the port created on the "
                     "requested network.", constraints=[{"custom_constraint": "ip_addr"}]),
    "port": Prop("string", "ID of an existing port to associate with this server."),
    "tag": Prop("string", "Port tag (accepted and ignored: device tags need a config drive)."),
}  # fmt: skip


def _metadata(value: Any) -> dict[str, str]:
    """Nova metadata values are strings: others are sent as JSON, as Heat does."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (value or {}).items()}


# what changes in place; any other changed property replaces the server
_IN_PLACE = {"name", "metadata", "tags", "flavor_update_policy", "image_update_policy",
             "user_data_update_policy"}  # fmt: skip


class Server(_Nova):
    type_name = "OS::Nova::Server"
    description = "A compute server: a container on a dockyard compute host."
    properties_schema = {
        "name": Prop("string", "Server name.", update_allowed=True),
        "image": Prop("string", "The ID or name of the image to boot with.", required=True,
                      update_allowed=True, constraints=[{"custom_constraint": "glance.image"}]),
        "flavor": Prop("string", "The ID or name of the flavor to boot onto.", required=True,
                       update_allowed=True, constraints=[{"custom_constraint": "nova.flavor"}]),
        "flavor_update_policy": Prop("string", "Policy on how to apply a flavor update; either "
                                     "by requesting a server resize or by replacing the "
                                     "entire server.",
                                     default="RESIZE", update_allowed=True,
                                     constraints=[{"allowed_values": ["RESIZE", "REPLACE"]}]),
        "image_update_policy": Prop("string", "Policy on how to apply an image-id update; "
                                    "either by requesting a server rebuild or by replacing "
                                    "the entire server.",
                                    default="REBUILD", update_allowed=True,
                                    constraints=[{"allowed_values": [
                                        "REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL"]}]),
        "key_name": Prop("string", "Name of keypair to inject into the server.",
                         constraints=[{"custom_constraint": "nova.keypair"}]),
        "availability_zone": Prop("string", "Name of the availability zone for server "
                                  "placement."),
        "security_groups": Prop("list", "List of security group names or IDs.", default=[]),
        "networks": Prop("list", "An ordered list of nics to be added to this server.",
                         update_allowed=True, schema=Prop("map", "A network.", schema=_NETWORK)),
        "scheduler_hints": Prop("map", "Arbitrary key-value pairs specified by the client to "
                                "help boot a server (dockyard reads group)."),
        "metadata": Prop("map", "Arbitrary key/value metadata to store for this server.",
                         update_allowed=True),
        "user_data_format": Prop("string", "How the user_data should be formatted for the "
                                 "server (dockyard passes it as given).",
                                 default="HEAT_CFNTOOLS",
                                 constraints=[{"allowed_values": [
                                     "HEAT_CFNTOOLS", "RAW", "SOFTWARE_CONFIG"]}]),
        "software_config_transport": Prop("string", "How the server should receive the "
                                          "metadata required for software configuration.",
                                          default="POLL_SERVER_CFN",
                                          constraints=[{"allowed_values": [
                                              "POLL_SERVER_CFN", "POLL_SERVER_HEAT",
                                              "POLL_TEMP_URL", "ZAQAR_MESSAGE"]}]),
        "user_data": Prop("string", "User data script to be executed by cloud-init.",
                          default="", update_allowed=True),
        "user_data_update_policy": Prop("string", "Policy on how to apply a user_data update; "
                                        "either by ignoring it or by replacing the entire "
                                        "server.", default="REPLACE", update_allowed=True,
                                        constraints=[{"allowed_values": ["REPLACE", "IGNORE"]}]),
        "config_drive": Prop("boolean", "If True, enable config drive on the server (the "
                             "metadata files are always in the container)."),
        "diskConfig": Prop("string", "Control how the disk is partitioned when the server is "
                           "created.", constraints=[{"allowed_values": ["AUTO", "MANUAL"]}]),
        "tags": Prop("list", "Server tags.", update_allowed=True),
    }  # fmt: skip
    attributes_schema = {
        "name": {"description": "Name of the server.", "type": "string"},
        "addresses": {"description": "A dict of all network addresses with corresponding "
                      "port_id and subnets.", "type": "map"},
        "networks": {"description": "A dict of assigned network addresses of the form: "
                     '{"public": [ip1, ip2...], "private": [ip3, ip4], '
                     '"public_uuid": [ip1, ip2...], "private_uuid": [ip3, ip4]}.',
                     "type": "map"},
        "first_address": {"description": "Convenience attribute to fetch the first assigned "
                          "network address, or an empty string if nothing has been assigned "
                          "at this time.", "type": "string"},
        "instance_name": {"description": "AWS compatible instance name.", "type": "string"},
        "accessIPv4": {"description": "The manually assigned alternative public IPv4 address "
                       "of the server.", "type": "string"},
        "accessIPv6": {"description": "The manually assigned alternative public IPv6 address "
                       "of the server.", "type": "string"},
        "console_urls": {"description": "URLs of server's consoles (none: containers have "
                         "no graphical console).", "type": "map"},
        "tags": {"description": "Tags from the server.", "type": "list"},
    }  # fmt: skip
    supports_check = True
    poll_interval = 0.3

    def validate(self) -> None:
        where = f"resources.{self.name}.properties"
        for i, net in enumerate(self.properties.get("networks") or []):
            chosen = [k for k in ("network", "uuid", "port", "allocate_network") if net.get(k)]
            if len(chosen) != 1:
                raise TemplateError(
                    f"Property error: {where}.networks[{i}]: give exactly one of network, "
                    "port or allocate_network"
                )
            if net.get("allocate_network") and len(self.properties["networks"]) > 1:
                raise TemplateError(
                    f"Property error: {where}.networks[{i}]: allocate_network cannot be "
                    "combined with other networks"
                )
        services = self.ctx.services
        if services is None or self.physical_id:
            return
        # flavor and image are checked before anything is made (key pairs and networks are
        # often other resources of the stack, unknown until they exist: create reports those)
        check = services.constraint_checker(self.ctx)
        for prop, constraint in (("flavor", "nova.flavor"), ("image", "glance.image")):
            value = self.properties.get(prop)
            problem = check(constraint, value) if isinstance(value, str) else None
            if problem:
                raise TemplateError(f"Property error: {where}.{prop}: {problem}")

    # ---- helpers --------------------------------------------------------------------

    def _server_id(self) -> str | None:
        return self.physical_id or self.data.get("server_id")

    def _nova_networks(self, session, rctx) -> Any:
        from dockyard.network.common import find_network

        nets = self.properties.get("networks")
        if not nets:
            return "auto"
        if nets[0].get("allocate_network"):
            return nets[0]["allocate_network"]
        out = []
        for net in nets:
            if net.get("port"):
                out.append({"port": net["port"]})
                continue
            found = self._call(find_network, session, rctx, net.get("network") or net["uuid"])
            entry = {"uuid": found.id}
            if net.get("fixed_ip"):
                entry["fixed_ip"] = net["fixed_ip"]
            out.append(entry)
        return out

    def _spec(self, session, rctx, server_id: str):
        from dockyard.compute.servers import ServerSpec
        from dockyard.image.images import find_visible

        p = self.properties
        image = self._call(find_visible, session, rctx, p["image"])
        hints = p.get("scheduler_hints") or {}
        user_data = p.get("user_data") or ""
        return ServerSpec(
            name=p.get("name") or f"{self.ctx.stack_name}-{self.name}",
            flavor_ref=p["flavor"],
            image_ref=image.id,
            networks=self._nova_networks(session, rctx),
            key_name=p.get("key_name") or None,
            security_groups=[str(g) for g in p.get("security_groups") or []] or None,
            metadata=_metadata(p.get("metadata")),
            user_data=base64.b64encode(user_data.encode()).decode() if user_data else None,
            group_id=str(hints["group"]) if hints.get("group") else None,
            availability_zone=p.get("availability_zone") or None,
            tags=[str(t) for t in p.get("tags") or []],
            server_id=server_id,
        )

    def _load(self, session):
        """The server, if it is live and the stack's project may see it (an external_id of
        another project's server is as absent as a deleted one)."""
        from dockyard.compute import servers

        sid = self._server_id()
        if not sid:
            return None
        try:
            return servers.get(session, self._rctx(), sid)
        except ApiError:
            return None

    # ---- the steps ------------------------------------------------------------------

    def create(self) -> str:
        from dockyard.compute import servers

        server_id = self.data.get("server_id")
        if server_id is None:
            server_id = self.data["server_id"] = str(uuid.uuid4())
            self.persist()  # a retried create finds this server instead of making another
        with self._session() as s:
            from dockyard.compute.models import Server as Row

            existing = s.get(Row, server_id)
            if existing is not None:
                if existing.deleted:
                    raise ResourceFailure(f"Server {server_id} was deleted while being created")
                return server_id
            rctx = self._rctx()
            spec = self._spec(s, rctx, server_id)
            self._call(servers.create, s, self.ctx.settings, rctx, spec)
        servers.kick(self.ctx.services.runtime)
        return server_id

    def check_create(self) -> bool:
        from dockyard.compute import states

        with self._session() as s:
            server = self._load(s)
            if server is None:
                raise ResourceFailure(f"Server {self._server_id()} was deleted while building")
            if server.vm_state == states.ERROR:
                fault = (server.fault or {}).get("message") or "unknown error"
                raise ResourceFailure(
                    f'Went to status ERROR due to "Message: {fault}, Code: '
                    f'{(server.fault or {}).get("code", 500)}"',
                    "ResourceInError",
                )
            return server.vm_state == states.ACTIVE and not server.task_state

    def delete(self) -> None:
        from dockyard.compute import servers

        if self._server_id() is None:
            return
        with self._session() as s:
            server = self._load(s)
            if server is None:
                return
            self._call(servers.start_delete, s, self._rctx(), server.id)
        servers.kick(self.ctx.services.runtime)

    def check_delete(self) -> bool:
        from dockyard.compute import states

        with self._session() as s:
            server = self._load(s)
            if server is None:
                return True
            if server.vm_state == states.ERROR and server.task_state != "deleting":
                fault = (server.fault or {}).get("message") or "unknown error"
                raise ResourceFailure(f"Server {server.id} failed to delete: {fault}")
            return False

    def needs_replace(self, new_properties: dict, changed: set[str]) -> bool:
        rest = changed - _IN_PLACE
        if new_properties.get("flavor_update_policy", "RESIZE") == "RESIZE":
            rest.discard("flavor")
        if str(new_properties.get("image_update_policy", "REBUILD")).startswith("REBUILD"):
            rest.discard("image")
        if new_properties.get("user_data_update_policy") == "IGNORE":
            rest.discard("user_data")
        return bool(rest)

    def update(self, new_properties: dict, changed: set[str]) -> None:
        """name, metadata and tags at once; a new flavor by a live resize (confirmed when
        done), a new image by a rebuild (same server, same addresses), one after the other.
        Each step compares the server with the target, so a re-run update (after a crash)
        picks up where the server is."""
        from dockyard.compute import flavors, quotas, servers
        from dockyard.db.base import utcnow
        from dockyard.image.images import find_visible

        rctx = self._rctx()
        with self._session() as s:
            server = self._call(servers.get, s, rctx, self.physical_id)
            if "name" in changed:
                server.name = new_properties.get("name") or f"{self.ctx.stack_name}-{self.name}"
            if "metadata" in changed:
                limits = quotas.limits_for(s, self.ctx.settings, server.project_id)
                server.meta = self._call(
                    servers.checked_metadata,
                    _metadata(new_properties.get("metadata")),
                    limits.get("metadata_items", -1),
                )
            if "tags" in changed:
                server.tags = [str(t) for t in new_properties.get("tags") or []]
            server.updated_at = utcnow()
            want: dict[str, str] = {}
            if "flavor" in changed:
                want["flavor"] = self._call(flavors.for_boot, s, rctx, new_properties["flavor"]).id
            if "image" in changed:
                want["image"] = self._call(find_visible, s, rctx, new_properties["image"]).id
        self.properties = new_properties
        self.data["want"] = want
        self.persist()
        self._advance()

    def check_update(self) -> bool:
        return self._advance()

    def _advance(self) -> bool:
        """One step towards the wanted flavor and image; True when the server is there."""
        from dockyard.compute import servers, states

        want = self.data.get("want") or {}
        rctx = self._rctx()
        settings = self.ctx.settings
        with self._session() as s:
            server = self._load(s)
            if server is None:
                raise ResourceFailure(f"Server {self.physical_id} is gone")
            if server.task_state:
                return False
            if server.vm_state == states.ERROR:
                fault = (server.fault or {}).get("message") or "unknown error"
                raise ResourceFailure(f"Updating server {server.id} failed: {fault}",
                                      "ResourceInError")  # fmt: skip
            if server.vm_state == states.RESIZED:
                self._call(servers.confirm_resize, s, rctx, server.id)
                return False
            if want.get("flavor") and server.flavor_id != want["flavor"]:
                self._call(servers.start_resize, s, settings, rctx, server.id, want["flavor"])
            elif want.get("image") and server.image_id != want["image"]:
                self._call(servers.start_rebuild, s, settings, rctx, server.id, want["image"])
            else:
                return True
        servers.kick(self.ctx.services.runtime)
        return False

    def _action(self, action: str, target: str) -> None:
        """Ask for suspend/resume unless the server is there already or on its way."""
        from dockyard.compute import servers

        with self._session() as s:
            server = self._load(s)
            if server is None:
                raise ResourceFailure(f"Server {self.physical_id} is gone")
            if server.vm_state == target or server.task_state:
                return
            self._call(servers.enqueue_action, s, self._rctx(), server.id, action,
                       {"action": action})  # fmt: skip
        servers.kick(self.ctx.services.runtime)

    def _settled(self, want: str) -> bool:
        with self._session() as s:
            server = self._load(s)
            if server is None:
                raise ResourceFailure(f"Server {self.physical_id} is gone")
            if server.task_state:
                return False
            if server.vm_state != want:
                raise ResourceFailure(
                    f"Server {server.id} is {server.vm_state}, not {want}", "ResourceInError"
                )
            return True

    def suspend(self) -> None:
        self._action("suspend", "suspended")

    def check_suspend(self) -> bool:
        return self._settled("suspended")

    def resume(self) -> None:
        self._action("resume", "active")

    def check_resume(self) -> bool:
        return self._settled("active")

    def check(self) -> None:
        super().check()
        with self._session() as s:
            server = self._load(s)
            if server is None or server.vm_state != "active":
                state = server.vm_state if server else "deleted"
                raise ResourceFailure(f"Server {self.physical_id} is {state}, not ACTIVE")

    # ---- attributes -----------------------------------------------------------------

    def attribute(self, name: str) -> Any:
        from dockyard.network.ports import ports_for_device

        with self._session() as s:
            server = self._load(s)
            if server is None:
                return None
            if name == "name":
                return server.name
            if name == "instance_name":
                return f"instance-{server.number:08x}"
            if name == "accessIPv4":
                return server.access_ipv4 or ""
            if name == "accessIPv6":
                return server.access_ipv6 or ""
            if name == "tags":
                return list(server.tags or [])
            if name == "console_urls":
                return {}
            if name == "show":
                return self._show(server)
            bindings = ports_for_device(s, server.id)
        if name == "first_address":
            return next((b.ip_address for b in bindings if ":" not in b.ip_address), "")
        if name == "addresses":
            out: dict[str, list[dict]] = {}
            for b in bindings:
                entry = {
                    "addr": b.ip_address,
                    "version": 6 if ":" in b.ip_address else 4,
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": b.mac_address,
                    "port": b.port_id,
                    "network": b.network_id,
                }
                out.setdefault(b.network_name, []).append(entry)
                if b.network_id != b.network_name:
                    out.setdefault(b.network_id, []).append(entry)
            return out
        if name == "networks":
            nets: dict[str, list[str]] = {}
            for b in bindings:
                nets.setdefault(b.network_name, []).append(b.ip_address)
                nets.setdefault(b.network_id, []).append(b.ip_address)
            return nets
        return None

    def _show(self, server) -> dict:
        from dockyard.compute import views
        from dockyard.compute.api import PREFIX
        from dockyard.compute.microversion import MAX

        links = views.Links(self.ctx.settings.base_url + PREFIX)
        return views.server_detail(server, MAX, self._rctx(), links)


class KeyPair(_Nova):
    type_name = "OS::Nova::KeyPair"
    description = "A compute key pair, made or imported for the stack creator."
    properties_schema = {
        "name": Prop("string", "The name of the key pair.", required=True,
                     constraints=[{"length": {"min": 1, "max": 255}}]),
        "save_private_key": Prop("boolean", "True if the system should remember a generated "
                                 "private key; False otherwise.", default=False),
        "public_key": Prop("string", "The optional public key. This allows users to supply "
                           "the public key from a pre-existing key pair. If not supplied, a "
                           "new key pair will be generated."),
        "type": Prop("string", "Keypair type.", default="ssh",
                     constraints=[{"allowed_values": ["ssh", "x509"]}]),
    }  # fmt: skip
    attributes_schema = {
        "public_key": {"description": "The public key.", "type": "string"},
        "private_key": {"description": "The private key if it has been saved.",
                        "type": "string"},
    }  # fmt: skip

    def create(self) -> str:
        from sqlalchemy import select

        from dockyard.compute import keypairs
        from dockyard.compute.models import KeyPair as Row

        p = self.properties
        key_type = p.get("type") or "ssh"
        if "public_key" not in self.data:
            private = None
            public_key = p.get("public_key")
            if not public_key:
                private, public_key = keypairs.generate(key_type)
            self.data["public_key"] = public_key
            if private and p.get("save_private_key"):
                self.data["private_key"] = private
            self.persist()  # a retried create recognises its key pair by this public key
        rctx = self._rctx()
        resumed = self.resuming and self.data.get("creating")
        if not self.data.get("creating"):
            self.data["creating"] = True
            self.persist()
        try:
            with self._session() as s:
                found = s.scalar(
                    select(Row).where(Row.user_id == rctx.user_id, Row.name == p["name"])
                )
                if resumed and found is not None and found.public_key == self.data["public_key"]:
                    self.data["made"] = True  # ours: this create was cut short after its commit
                    return p["name"]
                keypairs.create(s, self.ctx.settings, rctx, rctx.user_id, p["name"],
                                self.data["public_key"], key_type)  # fmt: skip
        except ApiError as exc:
            self.data.pop("creating", None)  # not ours: delete must leave it alone
            self.persist()
            raise ResourceFailure(exc.message, exc.kind) from exc
        self.data["made"] = True
        return p["name"]

    def replace_delete_first(self) -> bool:
        return True  # the name is the key pair's identity: two cannot coexist

    def delete(self) -> None:
        from sqlalchemy import select

        from dockyard.compute import keypairs
        from dockyard.compute.models import KeyPair as Row

        if not (self.data.get("made") or self.data.get("creating")):
            return
        name = self.physical_id or self.properties.get("name")
        rctx = self._rctx()
        with self._session() as s:
            found = s.scalar(select(Row).where(Row.user_id == rctx.user_id, Row.name == name))
            # only the key pair this resource made (a create cut short leaves no physical id)
            if found is None or found.public_key != self.data.get("public_key"):
                return
            try:
                keypairs.delete(s, rctx.user_id, name)
            except ApiError as exc:
                if exc.status != 404:
                    raise ResourceFailure(exc.message, exc.kind) from exc

    def attribute(self, name: str) -> Any:
        if name == "public_key":
            return self.data.get("public_key")
        if name == "private_key":
            return self.data.get("private_key", "")
        if name == "show":
            return {"name": self.physical_id, "public_key": self.data.get("public_key")}
        return None


class ServerGroup(_Nova):
    type_name = "OS::Nova::ServerGroup"
    description = "A server group: (anti-)affinity of servers across compute hosts."
    properties_schema = {
        "name": Prop("string", "Server Group name."),
        "policies": Prop("list", "A list of string policies to apply. Defaults to "
                         "anti-affinity.", default=["anti-affinity"],
                         constraints=[{"length": {"min": 1, "max": 1}}],
                         schema=Prop("string", "A policy.", constraints=[{"allowed_values": [
                             "anti-affinity", "affinity", "soft-anti-affinity",
                             "soft-affinity"]}])),
        "rules": Prop("map", "A dict of rules to apply (max_server_per_host).",
                      schema={"max_server_per_host": Prop("integer", "Most servers of the "
                                                           "group on one host.")}),
    }  # fmt: skip
    attributes_schema = {}

    def create(self) -> str:
        from dockyard.compute import groups

        gid = self.data.get("group_id")
        if gid is None:
            gid = self.data["group_id"] = str(uuid.uuid4())
            self.persist()
        p = self.properties
        rules = {k: v for k, v in (p.get("rules") or {}).items() if v is not None}
        rctx = self._rctx()
        with self._session() as s:
            if s.get(groups.ServerGroup, gid) is not None:
                return gid
            group = self._call(
                groups.create,
                s,
                self.ctx.settings,
                rctx,
                p.get("name") or f"{self.ctx.stack_name}-{self.name}",
                p["policies"][0],
                rules,
                group_id=gid,
            )
            return group.id

    def delete(self) -> None:
        from dockyard.compute import groups

        gid = self.physical_id or self.data.get("group_id")
        if not gid:
            return
        with self._session() as s:
            try:
                groups.delete(s, self._rctx(), gid)
            except ApiError as exc:
                if exc.status != 404:
                    raise ResourceFailure(exc.message, exc.kind) from exc

    def attribute(self, name: str) -> Any:
        if name != "show" or not self.physical_id:
            return None
        from dockyard.compute import groups

        with self._session() as s:
            try:
                g = groups.get(s, self._rctx(), self.physical_id)
            except ApiError:
                return None
            return {
                "id": g.id,
                "name": g.name,
                "policies": [g.policy],
                "rules": dict(g.rules or {}),
                "members": groups.members(s, g.id),
            }
