"""DockerInc::Docker::Container: the original plugin's properties and attributes on the
modern Engine API, with its bugs fixed and `docker_endpoint` restricted to what the caller
owns or an admin allowed."""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any

from dockyard.api.errors import ApiError, Forbidden
from dockyard.docker import heat_containers as dc
from dockyard.orchestration.errors import ResourceFailure, TemplateError
from dockyard.orchestration.resources.base import Prop, Resource

CAPABILITIES = [
    "SETPCAP", "SYS_MODULE", "SYS_RAWIO", "SYS_PACCT", "SYS_ADMIN", "SYS_NICE", "SYS_RESOURCE",
    "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "AUDIT_WRITE", "AUDIT_CONTROL", "MAC_OVERRIDE",
    "MAC_ADMIN", "NET_ADMIN", "SYSLOG", "CHOWN", "NET_RAW", "DAC_OVERRIDE", "FOWNER",
    "DAC_READ_SEARCH", "FSETID", "KILL", "SETGID", "SETUID", "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST", "IPC_LOCK", "IPC_OWNER", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_BOOT", "LEASE", "SETFCAP", "WAKE_ALARM", "BLOCK_SUSPEND", "ALL",
]  # fmt: skip
_DEV = [{"length": {"max": 255}}, {"allowed_pattern": r"^/dev/[/_\-a-zA-Z0-9]+$"}]
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
_IMAGE_ID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_NO_HOST = re.compile(r"^(tcp|http|https)://(:|/|$)")
_ENDPOINT = re.compile(r"^(tcp|http|https)://([^/:]+|\[[0-9a-fA-F:]+\]):(\d+)/?$")


def _p(kind: str, desc: str, **kw: Any) -> Prop:
    return Prop(kind, desc, **kw)


class DockerContainer(Resource):
    type_name = "DockerInc::Docker::Container"
    description = "A Docker container, on a dockyard compute host or on a Docker endpoint."
    support_status = {
        "status": "UNSUPPORTED",
        "message": "This resource is not supported, use at your own risk.",
        "version": None,
        "previous_status": None,
    }
    properties_schema = {
        "docker_endpoint": _p("string", "Docker daemon endpoint (by default the local docker "
                              "daemon will be used)."),
        "hostname": _p("string", "Hostname of the container.", default=""),
        "user": _p("string", "Username or UID.", default=""),
        "memory": _p("integer", "Memory limit (Bytes)."),
        "port_specs": _p("list", "TCP/UDP ports mapping."),
        "port_bindings": _p("map", "TCP/UDP ports bindings."),
        "links": _p("map", "Links to other containers."),
        "name": _p("string", "Name of the container."),
        "privileged": _p("boolean", "Enable extended privileges.", default=False),
        "tty": _p("boolean", "Allocate a pseudo-tty if true.", default=False),
        "open_stdin": _p("boolean", "Open stdin.", default=False),
        "stdin_once": _p("boolean", "If true, close stdin after the 1 attached client "
                         "disconnects.", default=False),
        "env": _p("list", "Set environment variables."),
        "cmd": _p("list", "Command to run after spawning the container.", default=[]),
        "dns": _p("list", "Set custom dns servers."),
        "image": _p("string", "Image name."),
        "volumes": _p("map", "Create a bind mount (host path) or a named volume of the "
                      "project (plain name).", default={}),
        "volumes_from": _p("list", "Mount all specified volumes.", default=""),
        "restart_policy": _p(
            "map",
            "Restart policies (only supported for API version >= 1.2.0).",
            default={},
            schema={
                "Name": _p("string", "The behavior to apply when the container exits.",
                           default="no",
                           constraints=[{"allowed_values": ["no", "on-failure", "always"]}]),
                "MaximumRetryCount": _p("integer", "A maximum restart count for the "
                                        "on-failure policy.", default=0),
            },
        ),
        "cap_add": _p("list", "Be used to add kernel capabilities (only supported for API "
                      "version >= 1.2.0).", default=[],
                      schema=_p("string", "The security features provided by Linux kernels.",
                                constraints=[{"allowed_values": CAPABILITIES}])),
        "cap_drop": _p("list", "Be used to drop kernel capabilities (only supported for API "
                       "version >= 1.2.0).", default=[],
                       schema=_p("string", "The security features provided by Linux kernels.",
                                 constraints=[{"allowed_values": CAPABILITIES}])),
        "read_only": _p("boolean", "If true, mount the container's root filesystem as read "
                        "only (only supported for API version >= 1.17).", default=False),
        "cpu_shares": _p("integer", "Relative weight which determines the allocation of the "
                         "CPU processing power(only supported for API version >= 1.8).",
                         default=0),
        "devices": _p(
            "list",
            "Device mappings (only supported for API version >= 1.14).",
            default=[],
            schema=_p(
                "map",
                "Device mapping.",
                schema={
                    "path_on_host": _p("string", "The device path on the host.", required=True,
                                       constraints=_DEV),
                    "path_in_container": _p("string", "The device path in the container.",
                                            constraints=_DEV),
                    "permissions": _p("string", "The permissions of the container to read/"
                                      "write/create the devices.", default="rwm",
                                      constraints=[{"allowed_values": [
                                          "r", "w", "m", "rw", "rm", "wm", "rwm"]}]),
                },
            ),
        ),
        "cpu_set": _p("string", "The CPUs in which to allow execution (only supported for API "
                      "version >= 1.12)."),
    }  # fmt: skip
    attributes_schema = {
        "info": {"description": "Container info."},
        "network_info": {"description": "Container network info."},
        "network_ip": {"description": "Container ip address."},
        "network_gateway": {"description": "Container ip gateway."},
        "network_tcp_ports": {"description": "Container TCP ports."},
        "network_udp_ports": {"description": "Container UDP ports."},
        "logs": {"description": "Container logs."},
        "logs_head": {"description": "Container first logs line."},
        "logs_tail": {"description": "Container last logs line."},
    }
    poll_interval = 0.25
    # seconds to wait for a compute host to fit (a freshly started cloud probes its engines)
    placement_wait = 30.0
    # seconds to wait for a docker_endpoint to answer (a Docker-host server of the same stack
    # is ACTIVE a moment before its dockerd listens)
    endpoint_wait = 120.0

    # ---- validation (API side, and again before any connection) ---------------------

    def validate(self) -> None:
        p = self.properties
        where = f"resources.{self.name}.properties"
        if not self.ctx.is_admin:
            if p.get("privileged"):
                raise Forbidden(f"{where}.privileged: a privileged container needs the admin role")
            if p.get("devices"):
                raise Forbidden(f"{where}.devices: device mappings need the admin role")
            if p.get("cap_add"):
                raise Forbidden(f"{where}.cap_add: extra capabilities need the admin role")
            for key in p.get("volumes") or {}:
                if str(key).startswith("/"):
                    raise Forbidden(
                        f"{where}.volumes: host path {key} needs the admin role; "
                        "use a volume name to get a volume of your project"
                    )
        name = p.get("name")
        if name and not self.ctx.is_admin and str(name).startswith("dockyard"):
            raise Forbidden(
                f"{where}.name: names starting with 'dockyard' are reserved for the cloud itself"
            )
        for cport, hport in (p.get("port_bindings") or {}).items():
            for h in hport if isinstance(hport, list) else [hport]:
                h = h.get("HostPort") if isinstance(h, dict) else h
                try:
                    low = h not in (None, "") and int(h) < 1024
                except (TypeError, ValueError):
                    raise TemplateError(
                        f"Property error: {where}.port_bindings.{cport}: bad host port {h!r}"
                    ) from None
                if low and not self.ctx.is_admin:
                    raise Forbidden(
                        f"{where}.port_bindings.{cport}: host port {h} (below 1024) needs "
                        "the admin role"
                    )
        for key, value in (p.get("volumes") or {}).items():
            key = str(key)
            if not key.startswith("/") and not _VOLUME_NAME.match(key):
                raise TemplateError(
                    f"Property error: {where}.volumes: {key!r} is neither a host path nor a "
                    "volume name (letters, digits, _ . -)"
                )
            _mount_target(value, f"{where}.volumes.{key}")
        if not self.ctx.is_admin and p.get("volumes_from"):
            vf = p["volumes_from"]
            if vf and vf != "":
                raise Forbidden(f"{where}.volumes_from: needs the admin role")
        endpoint = p.get("docker_endpoint")
        if endpoint:
            if not (self.unresolved and _NO_HOST.match(str(endpoint))):
                self.check_endpoint(endpoint)  # else built from an attribute: checked at create
        elif self.ctx.services is not None and not self.physical_id and self.resuming:
            # at the API (and on a resumed create); a first create finds out by allocating
            self.ctx.services.check_network(self.ctx)

    def check_endpoint(self, endpoint: str) -> None:
        """Refuse (400) any endpoint the caller does not own and no admin allowed."""
        where = f"resources.{self.name}.properties.docker_endpoint"
        norm = normalize_endpoint(endpoint)
        if norm is None:
            raise TemplateError(
                f"Property error: {where}: {endpoint!r} is not a Docker endpoint "
                "(expected tcp://<address>:<port>)"
            )
        allowed = {normalize_endpoint(e) for e in _split(self.ctx.settings.heat_allowed_endpoints)}
        if norm in allowed:
            return
        host = _ENDPOINT.match(norm).group(2).strip("[]") if _ENDPOINT.match(norm) else ""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and (
            ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast
        ):
            raise TemplateError(
                f"Property error: {where}: {endpoint} is a local address, not the Docker "
                "endpoint of a server of your project nor an endpoint allowed by the "
                "administrator"
            )
        owned = set()
        services = self.ctx.services
        if services is not None:
            owned = {normalize_endpoint(e) for e in services.owned_docker_endpoints(self.ctx)}
        if norm in owned:
            return
        raise TemplateError(
            f"Property error: {where}: {endpoint} is not the Docker endpoint of a server of "
            "your project nor an endpoint allowed by the administrator"
        )

    # ---- the steps ------------------------------------------------------------------

    def _url(self) -> str:
        endpoint = self.properties.get("docker_endpoint")
        if endpoint:
            self.check_endpoint(endpoint)  # again: it may only be known now
            norm = normalize_endpoint(endpoint) or endpoint
            return norm.replace("http://", "tcp://", 1) if norm.startswith("http://") else norm
        # the compute host the scheduler chose at create time (kept for every later call)
        return self.data.get("host_url") or self.ctx.settings.docker_url

    def _client(self):
        return dc.connect(self._url(), tls=self.data.get("host_tls") or None)

    def _client_waiting(self):
        """The client; for a docker_endpoint, retried while the engine does not answer yet."""
        deadline = time.monotonic() + self.endpoint_wait
        while True:
            try:
                if not self.properties.get("docker_endpoint"):
                    return self._client()
                return dc.answering(self._url(), self.data.get("host_tls") or None)
            except dc.DockerFailure:
                if not self.properties.get("docker_endpoint") or time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def _place(self) -> None:
        """Without docker_endpoint: a compute host chosen by compute's scheduler (filters:
        enabled and answering, RAM for `memory`; weighed by free RAM)."""
        if self.properties.get("docker_endpoint") or self.data.get("host_url"):
            return
        if self.ctx.services is None:
            return
        deadline = time.monotonic() + self.placement_wait
        while True:
            try:
                picked = self.ctx.services.pick_host(self.ctx, self.properties.get("memory"))
                break
            except Exception as exc:  # compute's NoValidHost: hosts may still be probed
                if type(exc).__name__ != "NoValidHost" or time.monotonic() > deadline:
                    raise ResourceFailure(str(exc), "ResourceInError") from exc
                time.sleep(1)
        if picked is not None:
            name, url, tls, choices = picked
            self.data.update(host=name, host_url=url, host_tls=tls)
            if choices > 1:
                self.persist()  # a retried create must look on the same host

    def _labels(self) -> dict[str, str]:
        labels = dict(_extra_labels(self.ctx.settings))
        labels.update(
            {
                "dockyard.project_id": self.ctx.project_id,
                "dockyard.stack_id": self.ctx.stack_id,
                "dockyard.resource": self.name,
                dc.INCARNATION_LABEL: self.incarnation,
            }
        )
        return labels

    def _volume_name(self, name: str) -> str:
        return f"dockyard-{self.ctx.project_id[:12]}-{name}"

    def create(self) -> str:
        self._place()
        try:
            client = self._client_waiting()
            found = (
                dc.find(client, {dc.INCARNATION_LABEL: self.incarnation}) if self.resuming else None
            )
            if found:
                info = dc.inspect(client, found) or {}
                if not (info.get("State") or {}).get("Running") and not self.data.get("started"):
                    dc.start(client, found)
                return found
            image = self.properties.get("image")
            if not image:
                raise ResourceFailure("Property image not assigned", "StackValidationFailed")
            if _IMAGE_ID.match(image) and self.ctx.services is not None:
                # an image of the image service: streamed to this Docker host, then run
                try:
                    boot = self.ctx.services.boot_image(self.ctx, image)
                except ApiError as exc:
                    raise ResourceFailure(exc.message, "ResourceInError") from exc
                image = dc.deliver_image(self._url(), boot, self.data.get("host_tls"))
                self.data["image_ref"] = image
            else:
                dc.ensure_image(client, image)
            binds: list[str] = []
            volumes: dict[str, dict] = {}
            vlabels = {
                **_extra_labels(self.ctx.settings),
                "dockyard.project_id": self.ctx.project_id,
                "dockyard.stack_id": self.ctx.stack_id,
                "dockyard.resource": self.name,
            }
            for key, value in (self.properties.get("volumes") or {}).items():
                target, mode = _mount_target(value, key)
                source = str(key)
                if not source.startswith("/"):
                    source = self._volume_name(source)
                    dc.ensure_volume(client, source, vlabels)
                binds.append(f"{source}:{target}:{mode}")
                volumes[target] = {}
            body = dc.container_body(
                {**self.properties, "image": image}, self._labels(), binds, volumes
            )
            if self._on_project_network():
                binding = self.ctx.services.port_for(self.ctx, self._device_id())
                self.data["port_id"] = binding.port_id
                self.data["network_id"] = binding.network_id
                aliases = [self.name] + (
                    [self.properties["name"]] if self.properties.get("name") else []
                )
                dc.attach_to_port(self._url(), body, binding, aliases, self.data.get("host_tls"))
            try:
                cid = dc.create(client, body, self.properties.get("name"))
            except dc.NetworkMissing:
                if not self.data.get("port_id"):
                    raise
                dc.recheck_network(self._url(), binding, self.data.get("host_tls"))
                cid = dc.create(client, body, self.properties.get("name"))
            try:
                dc.start(client, cid)
            except dc.NetworkMissing:
                if not self.data.get("port_id"):
                    raise
                dc.recheck_network(self._url(), binding, self.data.get("host_tls"))
                dc.start(client, cid)
            self.data["started"] = True
            return cid
        except dc.DockerFailure as exc:
            raise ResourceFailure(str(exc), "ResourceInError") from exc

    def check_create(self) -> bool:
        client = self._client()
        info = dc.inspect(client, self.physical_id)
        if info is None:
            raise ResourceFailure('Went to status DELETED due to "the container vanished"')
        state = info.get("State") or {}
        if state.get("Running"):
            return True
        if state.get("Status") == "exited":
            if state.get("ExitCode"):
                text = dc.logs(client, self.physical_id).strip() or state.get("Error") or ""
                raise ResourceFailure(
                    f'Went to status EXITED (code {state.get("ExitCode")}) due to "{text}"'
                )
            return True  # a container that did its job and exited 0 is complete
        return False

    def _host_gone(self) -> bool:
        """True when the container's docker_endpoint is no longer one the project may reach
        (its Docker-host server was deleted, or the admin withdrew it): the container went
        with that host, and dockyard must not connect there any more."""
        endpoint = self.properties.get("docker_endpoint")
        if not endpoint:
            return False
        try:
            self.check_endpoint(endpoint)
        except TemplateError:
            return True
        return False

    def delete(self) -> None:
        if self._host_gone():
            return
        try:
            client = self._client()
            if not self.physical_id and self.incarnation:
                # a create cut short (crash) may have made the container already
                self.physical_id = dc.find(client, {dc.INCARNATION_LABEL: self.incarnation})
            if not self.physical_id:
                return
            dc.remove(client, self.physical_id)
        except dc.DockerFailure as exc:
            raise ResourceFailure(str(exc)) from exc

    def check_delete(self) -> bool:
        if self._host_gone():
            return True
        if self.physical_id:
            client = self._client()
            if dc.inspect(client, self.physical_id) is not None:
                return False
            dc.remove_volumes(
                client,
                {"dockyard.stack_id": self.ctx.stack_id, "dockyard.resource": self.name},
            )
        if self._on_project_network() and self.incarnation:
            self.ctx.services.release_port(self._device_id())
        return True

    def _on_project_network(self) -> bool:
        """Without docker_endpoint the container lives on the project's network."""
        return not self.properties.get("docker_endpoint") and self.ctx.services is not None

    def _device_id(self) -> str:
        return f"heat-{self.incarnation}"

    def suspend(self) -> None:
        try:
            dc.stop(self._client(), self.physical_id)
        except dc.DockerFailure as exc:
            raise ResourceFailure(str(exc)) from exc

    def check_suspend(self) -> bool:
        info = dc.inspect(self._client(), self.physical_id) or {}
        return not (info.get("State") or {}).get("Running")

    def resume(self) -> None:
        try:
            dc.start(self._client(), self.physical_id)
        except dc.DockerFailure as exc:
            raise ResourceFailure(str(exc)) from exc

    def check_resume(self) -> bool:
        info = dc.inspect(self._client(), self.physical_id) or {}
        return bool((info.get("State") or {}).get("Running"))

    def check(self) -> None:
        raise NotImplementedError

    def replace_delete_first(self) -> bool:
        return bool(self.properties.get("name"))

    def needs_replace(self, new_properties: dict, changed: set[str]) -> bool:
        return bool(changed)

    # ---- attributes -----------------------------------------------------------------

    def reference(self) -> Any:
        return self.physical_id or self.name

    def attribute(self, name: str) -> Any:
        if not self.physical_id:
            return None
        client = self._client()
        if name.startswith("logs"):
            text = dc.logs(client, self.physical_id)
            if name == "logs":
                return text
            lines = text.split("\n")
            return lines[0] if name == "logs_head" else lines[-1]
        info = dc.inspect(client, self.physical_id)
        if info is None:
            return None
        if name == "info":
            return info
        net = dict(info.get("NetworkSettings") or {})
        first = next(iter((net.get("Networks") or {}).values()), {}) or {}
        ip = net.get("IPAddress") or first.get("IPAddress")
        gateway = net.get("Gateway") or first.get("Gateway")
        tcp = _ports(net, "tcp")
        udp = _ports(net, "udp")
        if name == "network_info":
            return {**net, "TcpPorts": tcp, "UdpPorts": udp}
        return {
            "network_ip": ip,
            "network_gateway": gateway,
            "network_tcp_ports": tcp,
            "network_udp_ports": udp,
        }.get(name)


def _ports(net: dict, proto: str) -> str:
    out = []
    for key, value in (net.get("Ports") or {}).items():
        if key.endswith("/" + proto) and value and value[0].get("HostPort"):
            out.append(value[0]["HostPort"])
    return ",".join(out)


def _mount_target(value: Any, where: str) -> tuple[str, str]:
    if isinstance(value, str) and value:
        return value, "rw"
    if isinstance(value, dict) and value.get("bind"):
        mode = value.get("mode") or ("ro" if value.get("ro") else "rw")
        return str(value["bind"]), str(mode)
    raise TemplateError(f"Property error: {where}: expected a container path")


def _split(text: str) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _extra_labels(settings: Any) -> dict[str, str]:
    out = {}
    for item in _split(getattr(settings, "container_labels", "")):
        k, _, v = item.partition("=")
        out[k.strip()] = v.strip()
    return out


def normalize_endpoint(endpoint: str) -> str | None:
    """`tcp://host:port` for a TCP endpoint, the URL itself for unix://, else None."""
    endpoint = str(endpoint).strip()
    if endpoint.startswith("unix://"):
        return endpoint
    m = _ENDPOINT.match(endpoint)
    if not m:
        return None
    return f"tcp://{m.group(2).lower()}:{int(m.group(3))}"
