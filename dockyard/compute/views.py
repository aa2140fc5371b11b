"""Response bodies, shaped for the negotiated microversion (Nova's API reference)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from dockyard.api.context import RequestContext
from dockyard.compute import states
from dockyard.compute.microversion import Version
from dockyard.compute.models import Flavor, KeyPair, Server, ServerGroup

PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")


def iso(dt: datetime | None) -> str | None:
    # isoformat is much cheaper than strftime, which matters for 1000-server listings
    return None if dt is None else dt.isoformat(timespec="seconds")[:19] + "Z"


def iso_micro(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="microseconds")[:26]


class Links:
    """self and bookmark links; `base` is the public URL of /compute/v2.1."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.bookmark_base = self.base.rsplit("/v2.1", 1)[0]

    def __call__(self, collection: str, ident: str) -> list[dict]:
        return [
            {"rel": "self", "href": f"{self.base}/{collection}/{ident}"},
            {"rel": "bookmark", "href": f"{self.bookmark_base}/{collection}/{ident}"},
        ]

    def bookmark(self, collection: str, ident: str) -> list[dict]:
        return [{"rel": "bookmark", "href": f"{self.bookmark_base}/{collection}/{ident}"}]


# ---- flavors ------------------------------------------------------------------------------


def flavor_summary(f: Flavor, mv: Version, links: Links) -> dict:
    body = {"id": f.id, "name": f.name, "links": links("flavors", f.id)}
    if mv >= (2, 55):
        body["description"] = f.description
    return body


def flavor_detail(f: Flavor, mv: Version, links: Links, extra_specs_ok: bool = True) -> dict:
    body = {
        "id": f.id,
        "name": f.name,
        "ram": f.ram,
        "disk": f.disk,
        "vcpus": f.vcpus,
        "links": links("flavors", f.id),
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
        "OS-FLV-DISABLED:disabled": f.disabled,
        "os-flavor-access:is_public": f.is_public,
        "swap": f.swap if (f.swap or mv >= (2, 75)) else "",
        "rxtx_factor": f.rxtx_factor,
    }
    if mv >= (2, 55):
        body["description"] = f.description
    if mv >= (2, 61) and extra_specs_ok:
        body["extra_specs"] = dict(f.extra_specs or {})
    return body


# ---- servers ------------------------------------------------------------------------------


def host_id(project_id: str, host: str | None) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def instance_name(s: Server) -> str:
    return f"instance-{s.number:08x}"


def server_summary(s: Server, links: Links) -> dict:
    return {"id": s.id, "name": s.name, "links": links("servers", s.id)}


def _flavor_in_server(s: Server, mv: Version, links: Links) -> dict:
    snap = s.flavor or {}
    if mv >= (2, 47):
        return {
            "vcpus": snap.get("vcpus", 0),
            "ram": snap.get("ram", 0),
            "disk": snap.get("disk", 0),
            "ephemeral": snap.get("ephemeral", 0),
            "swap": snap.get("swap", 0),
            "original_name": snap.get("name", ""),
            "extra_specs": dict(snap.get("extra_specs") or {}),
        }
    return {"id": s.flavor_id, "links": links.bookmark("flavors", s.flavor_id)}


def addresses(s: Server) -> dict:
    """network name -> [{addr, version, OS-EXT-IPS:type, OS-EXT-IPS-MAC:mac_addr}]"""
    out: dict[str, list[dict]] = {}
    for net, entries in (s.addresses or {}).items():
        out[net] = [
            {
                "version": e.get("version", 4),
                "addr": e["addr"],
                "OS-EXT-IPS:type": e.get("type", "fixed"),
                "OS-EXT-IPS-MAC:mac_addr": e.get("mac", ""),
            }
            for e in entries
            if e.get("addr")
        ]
    return out


# what a server body reads from the row (listings select only these columns)
DETAIL_COLUMNS = (
    "id",
    "name",
    "vm_state",
    "task_state",
    "power_state",
    "project_id",
    "user_id",
    "meta",
    "host",
    "image_id",
    "flavor_id",
    "flavor",
    "created_at",
    "updated_at",
    "addresses",
    "access_ipv4",
    "access_ipv6",
    "availability_zone",
    "key_name",
    "launched_at",
    "terminated_at",
    "security_groups",
    "number",
    "reservation_id",
    "launch_index",
    "user_data",
    "hostname",
    "locked",
    "locked_reason",
    "description",
    "tags",
    "fault",
)


class ServerView:
    """Server bodies for one request: what depends only on the microversion and the caller
    is decided once, so a listing of 1000 servers does the per-row work only."""

    def __init__(self, mv: Version, ctx: RequestContext, links: Links):
        self.mv = mv
        self.admin = admin = ctx.is_admin
        self.links = links
        self.server_base = f"{links.base}/servers/"
        self.server_bookmark = f"{links.bookmark_base}/servers/"
        self.image_bookmark = f"{links.bookmark_base}/images/"
        self.new_flavor = mv >= (2, 47)
        self.admin_2_3 = mv >= (2, 3) and admin
        self.show_hostname = self.admin_2_3 or mv >= (2, 90)
        self._host_ids: dict[tuple[str, str | None], str] = {}

    def host_id(self, project_id: str, host: str | None) -> str:
        key = (project_id, host)
        found = self._host_ids.get(key)
        if found is None:
            found = self._host_ids[key] = host_id(project_id, host)
        return found

    def detail(
        self, s: Server, *, host_up: bool = True, show_groups: list[str] | None = None
    ) -> dict:
        mv, admin, sid = self.mv, self.admin, s.id
        status = states.status(s.vm_state, s.task_state)
        if self.new_flavor:
            flavor = _flavor_in_server(s, mv, self.links)
        else:
            flavor = {
                "id": s.flavor_id,
                "links": self.links.bookmark("flavors", s.flavor_id),
            }
        body: dict = {
            "id": sid,
            "name": s.name,
            "status": status,
            "tenant_id": s.project_id,
            "user_id": s.user_id,
            "metadata": dict(s.meta or {}),
            "hostId": self.host_id(s.project_id, s.host),
            "image": (
                {
                    "id": s.image_id,
                    "links": [{"rel": "bookmark", "href": self.image_bookmark + s.image_id}],
                }
                if s.image_id
                else ""
            ),
            "flavor": flavor,
            "created": iso(s.created_at),
            "updated": iso(s.updated_at),
            "addresses": addresses(s),
            "accessIPv4": s.access_ipv4 or "",
            "accessIPv6": s.access_ipv6 or "",
            "links": [
                {"rel": "self", "href": self.server_base + sid},
                {"rel": "bookmark", "href": self.server_bookmark + sid},
            ],
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": s.availability_zone or "nova",
            "config_drive": "",
            "key_name": s.key_name,
            "OS-SRV-USG:launched_at": iso_micro(s.launched_at),
            "OS-SRV-USG:terminated_at": iso_micro(s.terminated_at),
            "OS-EXT-STS:task_state": s.task_state,
            "OS-EXT-STS:vm_state": s.vm_state,
            "OS-EXT-STS:power_state": s.power_state,
            "os-extended-volumes:volumes_attached": [],
        }
        if status in PROGRESS_STATUSES:
            body["progress"] = 100 if status == "ACTIVE" else 0
        if s.security_groups:
            body["security_groups"] = [{"name": n} for n in s.security_groups]
        if admin:
            body["OS-EXT-SRV-ATTR:host"] = s.host
            body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = s.host
            body["OS-EXT-SRV-ATTR:instance_name"] = instance_name(s)
        if self.admin_2_3:
            body["OS-EXT-SRV-ATTR:reservation_id"] = s.reservation_id
            body["OS-EXT-SRV-ATTR:launch_index"] = s.launch_index
            body["OS-EXT-SRV-ATTR:kernel_id"] = ""
            body["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
            body["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
            body["OS-EXT-SRV-ATTR:user_data"] = s.user_data
        if self.show_hostname:
            body["OS-EXT-SRV-ATTR:hostname"] = s.hostname
        if mv >= (2, 9):
            body["locked"] = bool(s.locked)
        if mv >= (2, 16) and admin:
            body["host_status"] = ("UP" if host_up else "DOWN") if s.host else ""
        if mv >= (2, 19):
            body["description"] = s.description
        if mv >= (2, 26):
            body["tags"] = list(s.tags or [])
        if mv >= (2, 63):
            body["trusted_image_certificates"] = None
        if mv >= (2, 71) and show_groups is not None:
            body["server_groups"] = show_groups
        if mv >= (2, 73):
            body["locked_reason"] = s.locked_reason
        if mv >= (2, 96):
            body["pinned_availability_zone"] = None
        if s.fault and status in ("ERROR", "DELETED"):
            fault = {
                "code": s.fault.get("code", 500),
                "message": s.fault.get("message", ""),
                "created": s.fault.get("created", iso(s.updated_at)),
            }
            if admin and s.fault.get("details"):
                fault["details"] = s.fault["details"]
            body["fault"] = fault
        return body


def server_detail(
    s: Server,
    mv: Version,
    ctx: RequestContext,
    links: Links,
    *,
    host_up: bool = True,
    show_groups: list[str] | None = None,
) -> dict:
    return ServerView(mv, ctx, links).detail(s, host_up=host_up, show_groups=show_groups)


# ---- key pairs ----------------------------------------------------------------------------


def keypair_body(k: KeyPair, mv: Version, *, full: bool = False) -> dict:
    body = {"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint}
    if mv >= (2, 2):
        body["type"] = k.type
    if full:
        body.update(
            user_id=k.user_id,
            created_at=iso_micro(k.created_at),
            deleted=False,
            deleted_at=None,
            id=k.id,
            updated_at=None,
        )
    return body


# ---- server groups ------------------------------------------------------------------------


def server_group_body(g: ServerGroup, members: list[str], mv: Version) -> dict:
    body: dict = {"id": g.id, "name": g.name, "members": members}
    if mv >= (2, 64):
        body["policy"] = g.policy
        body["rules"] = dict(g.rules or {})
    else:
        body["policies"] = [g.policy]
        body["metadata"] = {}
    if mv >= (2, 13):
        body["project_id"] = g.project_id
        body["user_id"] = g.user_id
    return body
