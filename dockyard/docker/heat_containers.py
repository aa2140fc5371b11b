"""Containers and volumes of Heat's DockerInc::Docker::Container, on the modern Engine API.

Everything goes into `POST /containers/create` (Engine API >= 1.24 has no HostConfig on
start). Containers are found again by their labels, so a create retried after a crash
adopts the container it made instead of making a second one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

log = logging.getLogger("dockyard.docker.heat")

INCARNATION_LABEL = "dockyard.incarnation"
STACK_LABEL = "dockyard.stack_id"


class DockerFailure(Exception):
    """Docker refused or failed; the message is Docker's own explanation."""


class NetworkMissing(DockerFailure):
    """The container's network is not on the engine (removed behind dockyard's back)."""


def _explain(exc: Exception) -> str:
    if isinstance(exc, APIError):
        return str(exc.explanation or exc)
    return str(exc)


class _Clients:
    """One low-level client per engine URL, shared by the engine's threads (each client
    negotiates the API version once, at creation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_url: dict[str, docker.APIClient] = {}

    def get(self, url: str, timeout: int, tls: dict | None = None) -> docker.APIClient:
        with self._lock:
            client = self._by_url.get(url)
            if client is None:
                tls_config = False
                if tls:  # a compute host's files {"ca", "cert", "key"}
                    from docker.tls import TLSConfig

                    cert = (tls["cert"], tls["key"]) if tls.get("cert") and tls.get("key") else None
                    tls_config = TLSConfig(
                        client_cert=cert, ca_cert=tls.get("ca"), verify=bool(tls.get("ca"))
                    )
                client = docker.APIClient(
                    base_url=url, timeout=timeout, version="auto", max_pool_size=64, tls=tls_config
                )
                self._by_url[url] = client
            return client

    def drop(self, url: str) -> None:
        with self._lock:
            client = self._by_url.pop(url, None)
        if client is not None:
            client.close()


_CLIENTS = _Clients()


class _Verified:
    """When each (engine, Docker network) was last seen as it should be: containers of one
    stack share a network, so it is inspected once per NETWORK_RECHECK seconds, not once per
    container (an inspect lists every container on the network)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: dict[tuple[str, str], float] = {}

    def fresh(self, url: str, name: str) -> bool:
        with self._lock:
            at = self._at.get((url, name))
        return at is not None and time.monotonic() - at < NETWORK_RECHECK

    def mark(self, url: str, name: str) -> None:
        with self._lock:
            self._at[(url, name)] = time.monotonic()

    def forget(self, url: str, name: str) -> None:
        with self._lock:
            self._at.pop((url, name), None)


NETWORK_RECHECK = 30.0
_NETWORKS = _Verified()


def connect(url: str, timeout: int = 60, tls: dict | None = None) -> docker.APIClient:
    try:
        return _CLIENTS.get(url, timeout, tls)
    except DockerException as exc:
        _CLIENTS.drop(url)
        raise DockerFailure(f"cannot reach the Docker engine at {url}: {exc}") from exc


def answering(url: str, tls: dict | None = None) -> docker.APIClient:
    """connect(), then a ping: DockerFailure when the engine does not answer (yet)."""
    client = connect(url, tls=tls)
    try:
        client.ping()  # the shared client stays: its pool reconnects once the engine answers
    except (DockerException, requests.RequestException) as exc:
        raise DockerFailure(f"cannot reach the Docker engine at {url}: {exc}") from exc
    return client


def api_version(client: docker.APIClient) -> str:
    return str(client.version().get("ApiVersion", "0"))


def find(client: docker.APIClient, labels: dict[str, str]) -> str | None:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    found = client.containers(all=True, filters=filters)
    return found[0]["Id"] if found else None


def ensure_image(client: docker.APIClient, ref: str) -> None:
    """Use the image if the engine has it, else pull it; DockerFailure with Docker's reason."""
    try:
        client.inspect_image(ref)
        return
    except ImageNotFound:
        pass
    except APIError as exc:
        raise DockerFailure(_explain(exc)) from exc
    repo, tag = ref, "latest"
    last = ref.rsplit("/", 1)[-1]
    if ":" in last and "@" not in last:
        repo, tag = ref.rsplit(":", 1)
    try:
        client.pull(repo, tag=tag)
    except (APIError, DockerException) as exc:
        raise DockerFailure(
            f"image {ref} is not on the Docker host and pulling it failed: {_explain(exc)}"
        ) from exc


def ensure_volume(client: docker.APIClient, name: str, labels: dict[str, str]) -> None:
    try:
        client.inspect_volume(name)
    except NotFound:
        client.create_volume(name=name, labels=labels)


def deliver_image(url: str, image: Any, tls: dict | None = None) -> str:
    """Put an image of the image service on the engine at url (image's delivery interface:
    streamed `docker load`, once per engine); returns the local reference to run."""
    from dockyard.docker.images import DeliveryError, ensure_image

    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = _CLIENTS.get(url, 600, tls)
    try:
        return ensure_image(client, image)
    except (DeliveryError, APIError, DockerException) as exc:
        raise DockerFailure(f"image {image.id} could not be delivered: {_explain(exc)}") from exc


def attach_to_port(
    url: str, body: dict, binding: Any, aliases: list[str], tls: dict | None = None
) -> None:
    """Put the container of `body` on the port's Docker network at exactly its IP and MAC
    (networking's interface), making the network on that engine first if needed."""
    from dockyard.docker import networks as dn

    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = _CLIENTS.get(url, 60, tls)  # the high-level view of the shared low-level client
    try:
        if getattr(binding, "network_spec", None) is not None and not _NETWORKS.fresh(
            url, binding.docker_network
        ):
            dn.ensure_network(client, binding)
            _NETWORKS.mark(url, binding.docker_network)
        kw = dn.endpoint_config(binding, aliases)
    except (APIError, DockerException, dn.NetworkConflict) as exc:
        raise DockerFailure(f"network {binding.docker_network}: {_explain(exc)}") from exc
    endpoints = {k: dict(v) for k, v in kw["networking_config"].items()}
    links = body["HostConfig"].pop("Links", None)
    if links:  # on a user-defined network, links are per endpoint (name resolution aliases)
        endpoints[kw["network"]]["Links"] = links
    body["HostConfig"]["NetworkMode"] = kw["network"]
    body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    body["MacAddress"] = kw["mac_address"]


def recheck_network(url: str, binding: Any, tls: dict | None = None) -> None:
    """Make the port's Docker network again if it went missing (after NetworkMissing)."""
    from dockyard.docker import networks as dn

    _NETWORKS.forget(url, binding.docker_network)
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = _CLIENTS.get(url, 60, tls)
    try:
        dn.ensure_network(client, binding)
    except (APIError, DockerException, dn.NetworkConflict) as exc:
        raise DockerFailure(f"network {binding.docker_network}: {_explain(exc)}") from exc
    _NETWORKS.mark(url, binding.docker_network)


def create(client: docker.APIClient, body: dict, name: str | None) -> str:
    """POST /containers/create with the given Engine API body; returns the container id."""
    try:
        result = client.create_container_from_config(body, name=name or None)
    except ImageNotFound as exc:
        raise DockerFailure(_explain(exc)) from exc
    except NotFound as exc:
        if "network" in _explain(exc).lower():
            raise NetworkMissing(_explain(exc)) from exc
        raise DockerFailure(_explain(exc)) from exc
    except (APIError, DockerException) as exc:
        raise DockerFailure(_explain(exc)) from exc
    return result["Id"]


def start(client: docker.APIClient, cid: str) -> None:
    try:
        client.start(cid)
    except APIError as exc:
        if exc.status_code == 404 and "network" in _explain(exc).lower():
            raise NetworkMissing(_explain(exc)) from exc  # Docker resolves networks at start
        raise DockerFailure(_explain(exc)) from exc


def inspect(client: docker.APIClient, cid: str) -> dict | None:
    try:
        return client.inspect_container(cid)
    except NotFound:
        return None


LOG_LINES = 10000  # the logs attributes read at most this many last lines


def logs(client: docker.APIClient, cid: str) -> str:
    try:
        raw = client.logs(cid, stdout=True, stderr=True, timestamps=False, tail=LOG_LINES)
    except NotFound:
        return ""
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def stop(client: docker.APIClient, cid: str, timeout: int = 10) -> None:
    try:
        client.stop(cid, timeout=timeout)
    except NotFound:
        pass
    except APIError as exc:
        raise DockerFailure(_explain(exc)) from exc


def remove(client: docker.APIClient, cid: str) -> None:
    """Kill (a stopped container is fine) and remove; gone already is fine."""
    try:
        client.kill(cid)
    except NotFound:
        return
    except APIError as exc:
        if exc.status_code != 409:  # 409: not running
            raise DockerFailure(_explain(exc)) from exc
    try:
        client.remove_container(cid, force=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409 or "in progress" not in _explain(exc):
            raise DockerFailure(_explain(exc)) from exc


def remove_volumes(client: docker.APIClient, labels: dict[str, str]) -> list[str]:
    """Remove the volumes carrying these labels that no container uses; returns their names."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    gone = []
    for v in (client.volumes(filters=filters) or {}).get("Volumes") or []:
        try:
            client.remove_volume(v["Name"])
            gone.append(v["Name"])
        except NotFound:
            pass
        except APIError as exc:
            log.info("volume %s kept: %s", v["Name"], _explain(exc))
    return gone


def container_body(
    props: dict[str, Any],
    labels: dict[str, str],
    binds: list[str],
    volumes: dict[str, dict],
) -> dict:
    """The Engine API create body for the plugin's properties (contracts/heat.md §1.5)."""
    host: dict[str, Any] = {}
    body: dict[str, Any] = {
        "Image": props["image"],
        "Labels": labels,
        "Hostname": props.get("hostname") or "",
        "User": props.get("user") or "",
        "OpenStdin": bool(props.get("open_stdin")),
        "StdinOnce": bool(props.get("stdin_once")),
        "AttachStdin": False,
        "Tty": bool(props.get("tty")),
        "Env": list(props.get("env") or []),
        "HostConfig": host,
    }
    if props.get("cmd"):
        body["Cmd"] = list(props["cmd"])
    if volumes:
        body["Volumes"] = volumes
    exposed = {}
    for spec in props.get("port_specs") or []:
        exposed[port_key(spec)] = {}
    if exposed:
        body["ExposedPorts"] = exposed
    if binds:
        host["Binds"] = binds
    bindings = {}
    for key, value in (props.get("port_bindings") or {}).items():
        bindings[port_key(key)] = _host_ports(value)
        body.setdefault("ExposedPorts", {})[port_key(key)] = {}
    if bindings:
        host["PortBindings"] = bindings
    links = props.get("links") or {}
    if links:
        host["Links"] = sorted(f"{n}:{a}" if a else str(n) for n, a in links.items())
    if props.get("memory"):
        host["Memory"] = int(props["memory"])
    if props.get("dns"):
        host["Dns"] = list(props["dns"])
    if props.get("cpu_shares"):
        host["CpuShares"] = int(props["cpu_shares"])
    if props.get("cpu_set"):
        host["CpusetCpus"] = str(props["cpu_set"])
    if props.get("privileged"):
        host["Privileged"] = True
    if props.get("read_only"):
        host["ReadonlyRootfs"] = True
    vf = props.get("volumes_from")
    if isinstance(vf, str):
        vf = [x for x in vf.split(",") if x]
    if vf:
        host["VolumesFrom"] = list(vf)
    rp = props.get("restart_policy") or {}
    if rp:
        host["RestartPolicy"] = {
            "Name": rp.get("Name") or "no",
            "MaximumRetryCount": int(rp.get("MaximumRetryCount") or 0),
        }
    if props.get("cap_add"):
        host["CapAdd"] = list(props["cap_add"])
    if props.get("cap_drop"):
        host["CapDrop"] = list(props["cap_drop"])
    if props.get("devices") and not props.get("privileged"):
        host["Devices"] = [
            {
                "PathOnHost": d["path_on_host"],
                "PathInContainer": d.get("path_in_container") or d["path_on_host"],
                "CgroupPermissions": d.get("permissions") or "rwm",
            }
            for d in props["devices"]
        ]
    return body


def port_key(spec: Any) -> str:
    text = str(spec)
    return text if "/" in text else f"{text}/tcp"


def _host_ports(value: Any) -> list[dict]:
    if value is None:
        return [{"HostIp": "", "HostPort": ""}]
    if isinstance(value, list):
        return [b for v in value for b in _host_ports(v)]
    if isinstance(value, dict):
        return [
            {"HostIp": str(value.get("HostIp", "")), "HostPort": str(value.get("HostPort", ""))}
        ]
    return [{"HostIp": "", "HostPort": str(value)}]
