"""Security groups enforced with iptables on the Docker host.

Three parts, Kubernetes-controller style (desired vs observed, never "remember what we did"):

* `desired_ruleset(prefix, ports, rules)`: a pure function from the ports (address, bridge,
  groups) and the groups' rules to the chains dockyard wants. Unit-tested without iptables.
* `IptablesApplier`: makes the kernel match a ruleset with one `iptables-restore --noflush`
  of dockyard's own chains (atomic), deletes chains it no longer wants, and hooks its entry
  chain from DOCKER-USER. `in_force(ruleset)` checks the kernel still holds it (the entry chain
  carries a comment with the ruleset's hash), so a flushed table or a dockerd restart is seen.
* `FirewallSync`: a background loop (registered by the network service through
  ServiceApp.background) that reads the desired state from the database every
  `POLL_SECONDS` and applies it when it differs from the kernel. Compute does not need to call
  anything: ports made or released through dockyard.network.ports are picked up by the loop.
  `request_sync(runtime)` only makes it look at once (used by the API after rule changes).

Layout of the chains (P = "DY" + 6 hex of the deployment's instance id):
  DOCKER-USER -> P-FWD
  P-FWD:  conntrack ESTABLISHED,RELATED -> RETURN
          -i <bridge> -> P-E<net>   egress dispatch:  -s <port ip> -g P-O<port> ..., DROP
          -o <bridge> -> P-N<net>   ingress dispatch: -d <port ip> -g P-I<port> ..., DROP
  P-I<port> / P-O<port>: one RETURN per matching rule of the port's groups, then DROP.
  P-S<group> / P-D<group>: membership of a remote group (sets a mark bit the port chain tests).
RETURN hands the packet back to Docker's own chains (which accept it); DROP ends it; an
address on a dockyard bridge that is no port's passes nothing. Traffic from the Docker host to
a container goes through OUTPUT, not FORWARD, so it is never filtered.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.docker.networks import bridge_name
from dockyard.network.models import (
    IPAllocation,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroupRule,
    Subnet,
)

log = logging.getLogger("dockyard.network.firewall")

POLL_SECONDS = 0.5
VERIFY_SECONDS = 2.0
GARBAGE_SECONDS = 60.0
HOOK_CHAIN = "DOCKER-USER"
ANY = "0.0.0.0/0"
# the packet-mark bit dockyard uses (only inside its own chains) to test group membership
MARK_BIT = 0x10000000


@dataclass(frozen=True)
class PortState:
    port_id: str
    ip: str
    bridge: str
    groups: tuple[str, ...]
    port_security: bool = True
    admin_up: bool = True  # a port that is administratively down passes nothing


@dataclass(frozen=True)
class RuleState:
    group_id: str
    direction: str  # ingress | egress
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclass(frozen=True)
class Ruleset:
    prefix: str
    chains: dict[str, list[str]] = field(default_factory=dict, hash=False)

    @property
    def entry(self) -> str:
        return f"{self.prefix}-FWD"

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.chains):
            h.update(name.encode() + b"\n")
            for rule in self.chains[name]:
                h.update(rule.encode() + b"\n")
        return h.hexdigest()[:16]

    @property
    def marker(self) -> str:
        return f"dockyard ruleset {self.digest}"


_PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1"}
_PROTOCOL_NAMES = {v: k for k, v in _PROTOCOL_NUMBERS.items()}


def protocol_match(rule: RuleState) -> list[str] | None:
    """iptables arguments matching the rule's protocol and ports; None when not IPv4-expressible."""
    proto = (rule.protocol or "").lower()
    if proto in ("", "any", "0"):
        return []
    proto = _PROTOCOL_NAMES.get(proto, proto)
    if proto in ("tcp", "udp"):
        args = ["-p", proto, "-m", proto]
        lo, hi = rule.port_range_min, rule.port_range_max
        if lo is not None or hi is not None:
            lo = lo if lo is not None else hi
            hi = hi if hi is not None else lo
            args += ["--dport", str(lo) if lo == hi else f"{lo}:{hi}"]
        else:
            args = ["-p", proto]
        return args
    if proto == "icmp":
        if rule.port_range_min is None:
            return ["-p", "icmp"]
        kind = str(rule.port_range_min)
        if rule.port_range_max is not None:
            kind += f"/{rule.port_range_max}"
        return ["-p", "icmp", "-m", "icmp", "--icmp-type", kind]
    if proto in ("icmpv6", "ipv6-icmp", "58"):
        return None
    if proto.isdigit():
        return ["-p", proto]
    return ["-p", proto]


def _short(port_id: str) -> str:
    return port_id.replace("-", "")[:12]


def desired_ruleset(
    prefix: str,
    ports: Iterable[PortState],
    rules: Iterable[RuleState],
    bridges: Iterable[str] = (),
) -> Ruleset:
    """The chains that enforce `rules` for `ports` (pure; input order does not matter).

    `bridges` are all of dockyard's bridges (those of ports are added): on them, an address
    that is no port's (a container attached behind dockyard's back, or whose port was
    deleted while it still runs) passes nothing."""
    ports = sorted(ports, key=lambda p: (p.bridge, p.ip, p.port_id))
    by_group: dict[str, list[RuleState]] = {}
    for r in rules:
        by_group.setdefault(r.group_id, []).append(r)
    members: dict[str, list[str]] = {}
    for p in ports:
        for g in p.groups:
            members.setdefault(g, []).append(p.ip)
    for ips in members.values():
        ips.sort()

    def sort_key(r: RuleState) -> tuple:
        return (
            r.direction,
            r.protocol or "",
            r.port_range_min if r.port_range_min is not None else -1,
            r.port_range_max if r.port_range_max is not None else -1,
            r.remote_ip_prefix or "",
            r.remote_group_id or "",
        )

    entry = f"{prefix}-FWD"
    chains: dict[str, list[str]] = {entry: ["-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]}
    mark = f"{MARK_BIT:#x}/{MARK_BIT:#x}"
    clear = f"-j MARK --set-xmark 0x0/{MARK_BIT:#x}"
    all_bridges = sorted(set(bridges) | {p.bridge for p in ports})
    out_of = {b: f"{prefix}-E{b[3:]}" for b in all_bridges}  # egress dispatch, by source
    into = {b: f"{prefix}-N{b[3:]}" for b in all_bridges}  # ingress dispatch, by destination
    for b in all_bridges:
        chains[out_of[b]] = []
        chains[into[b]] = []
    for p in ports:
        if not p.port_security and p.admin_up:
            chains[out_of[p.bridge]].append(f"-s {p.ip}/32 -j RETURN")
            chains[into[p.bridge]].append(f"-d {p.ip}/32 -j RETURN")
            continue
        for direction, chain, peer_flag in (
            ("egress", f"{prefix}-O{_short(p.port_id)}", "-d"),
            ("ingress", f"{prefix}-I{_short(p.port_id)}", "-s"),
        ):
            lines: list[str] = []
            group_rules = [r for g in sorted(set(p.groups)) for r in by_group.get(g, [])]
            if not p.admin_up:
                group_rules = []
            for r in sorted(group_rules, key=sort_key):
                if r.direction != direction or r.ethertype != "IPv4":
                    continue
                proto = protocol_match(r)
                if proto is None:
                    continue
                if r.remote_group_id:
                    # membership is one chain per (group, side) that marks member addresses,
                    # so a rule costs two lines however many members the group has
                    if not members.get(r.remote_group_id):
                        continue
                    kind = "S" if peer_flag == "-s" else "D"
                    group_chain = f"{prefix}-{kind}{_short(r.remote_group_id)}"
                    if group_chain not in chains:
                        chains[group_chain] = [
                            f"{peer_flag} {ip}/32 -j MARK --set-xmark {mark}"
                            for ip in members[r.remote_group_id]
                        ]
                    if clear not in lines:
                        lines.insert(0, clear)
                    candidates = [
                        " ".join([*proto, "-j", group_chain]),
                        f"-m mark --mark {mark} -j RETURN",
                    ]
                elif r.remote_ip_prefix and r.remote_ip_prefix != ANY:
                    candidates = [" ".join([peer_flag, r.remote_ip_prefix, *proto, "-j RETURN"])]
                else:
                    candidates = [" ".join([*proto, "-j", "RETURN"])]
                if not all(c in lines for c in candidates):
                    lines.extend(candidates)
            lines.append("-j DROP")
            chains[chain] = lines
            # goto: the port chain's RETURN then resumes FWD after the dispatch jump
            if direction == "egress":
                chains[out_of[p.bridge]].append(f"-s {p.ip}/32 -g {chain}")
            else:
                chains[into[p.bridge]].append(f"-d {p.ip}/32 -g {chain}")
    for b in all_bridges:
        chains[out_of[b]].append("-j DROP")  # no port has this source address
        chains[into[b]].append("-j DROP")  # no port has this destination address
    chains[entry].extend(f"-i {b} -j {out_of[b]}" for b in all_bridges)
    chains[entry].extend(f"-o {b} -j {into[b]}" for b in all_bridges)
    if any(name[len(prefix) + 1] in "SD" for name in chains if name != entry):
        chains[entry].append(clear)  # allowed packets leave without dockyard's mark bit
    return Ruleset(prefix=prefix, chains=chains)


def render(ruleset: Ruleset, stale_chains: Iterable[str] = ()) -> str:
    """iptables-restore input (for --noflush) that replaces dockyard's chains atomically."""
    stale = sorted(set(stale_chains) - set(ruleset.chains))
    names = [ruleset.entry, *sorted(n for n in ruleset.chains if n != ruleset.entry)]
    out = ["*filter"]
    out += [f":{name} - [0:0]" for name in [*names, *stale]]
    out.append(f'-A {ruleset.entry} -m comment --comment "{ruleset.marker}"')
    for name in names:
        out += [f"-A {name} {rule}" for rule in ruleset.chains[name]]
    out += [f"-X {name}" for name in stale]
    out.append("COMMIT")
    return "\n".join(out) + "\n"


# ---- the kernel side -----------------------------------------------------------------------

Runner = Callable[[list[str], str | None], str]


def run_command(cmd: list[str], stdin: str | None = None) -> str:
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
    return result.stdout


class IptablesApplier:
    """Applies a Ruleset to the kernel and checks whether it is still in force."""

    def __init__(self, runner: Runner = run_command):
        self.run = runner

    @staticmethod
    def available() -> bool:
        return shutil.which("iptables-restore") is not None

    def _save(self) -> str:
        return self.run(["iptables-save", "-t", "filter"], None)

    def observed_chains(self, prefix: str, saved: str | None = None) -> set[str]:
        saved = self._save() if saved is None else saved
        return {
            line[1:].split()[0] for line in saved.splitlines() if line.startswith(f":{prefix}-")
        }

    def in_force(self, ruleset: Ruleset) -> bool:
        """The hook, the ruleset's marker and as many rules as it has (a flushed or partly
        edited chain shows up as a different count)."""
        saved = self._save()
        lines = saved.splitlines()
        hook = f"-A {HOOK_CHAIN} -j {ruleset.entry}"
        ours = sum(1 for ln in lines if ln.startswith(f"-A {ruleset.prefix}-"))
        expected = 1 + sum(len(rules) for rules in ruleset.chains.values())
        return hook in lines and ruleset.marker in saved and ours == expected

    def apply(self, ruleset: Ruleset) -> None:
        saved = self._save()
        stale = self.observed_chains(ruleset.prefix, saved)
        self.run(["iptables-restore", "-w", "10", "--noflush"], render(ruleset, stale))
        lines = saved.splitlines()
        if f":{HOOK_CHAIN}" not in {ln.split()[0] for ln in lines if ln.startswith(":")}:
            self.run(["iptables", "-w", "10", "-N", HOOK_CHAIN], None)
        if f"-A {HOOK_CHAIN} -j {ruleset.entry}" not in lines:
            self.run(["iptables", "-w", "10", "-I", HOOK_CHAIN, "1", "-j", ruleset.entry], None)

    def remove(self, prefix: str) -> None:
        """Unhook and delete every chain of `prefix` (used by tests and `dockyard` cleanup)."""
        saved = self._save()
        entry = f"{prefix}-FWD"
        if f"-A {HOOK_CHAIN} -j {entry}" in saved.splitlines():
            self.run(["iptables", "-w", "10", "-D", HOOK_CHAIN, "-j", entry], None)
        chains = sorted(self.observed_chains(prefix, saved))
        if chains:
            text = "*filter\n" + "".join(f":{c} - [0:0]\n" for c in chains)
            text += "".join(f"-X {c}\n" for c in chains) + "COMMIT\n"
            self.run(["iptables-restore", "-w", "10", "--noflush"], text)

    def collect_garbage(self, own_prefix: str, bridge_exists: Callable[[str], bool]) -> list[str]:
        """Remove other dockyard deployments' chains that can no longer match anything: every
        bridge they name is gone, or they name none (their networks were deleted, or they were
        torn down without a clean shutdown). A live deployment with no bridge has nothing to
        protect, and its own loop puts its chains back within seconds anyway.
        Returns the prefixes removed."""
        saved = self._save()
        lines = saved.splitlines()
        removed = []
        for line in lines:
            m = _HOOK_RE.match(line)
            if not m or m.group(1) == own_prefix:
                continue
            prefix = m.group(1)
            bridges = {
                b
                for ln in lines
                if ln.startswith(f"-A {prefix}-FWD ")
                for b in _BRIDGE_RE.findall(ln)
            }
            if not any(bridge_exists(b) for b in bridges):
                self.remove(prefix)
                removed.append(prefix)
        return removed


_HOOK_RE = re.compile(rf"^-A {HOOK_CHAIN} -j (DY[0-9A-F]{{6}})-FWD$")
_BRIDGE_RE = re.compile(r"-[io] (dyn[0-9a-f]{12})\b")


def bridge_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


# ---- the desired state from the database ----------------------------------------------------


def load_state(session: Session) -> tuple[list[PortState], list[RuleState], list[str]]:
    """Every port holding an address (with its bridge and groups), every group rule, and the
    bridges of every network that has a subnet."""
    groups: dict[str, list[str]] = {}
    for port_id, group_id in session.execute(
        select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
    ):
        groups.setdefault(port_id, []).append(group_id)
    rows = session.execute(
        select(
            Port.id,
            Port.port_security_enabled,
            Port.admin_state_up,
            IPAllocation.ip_address,
            Network.id,
        )
        .join(IPAllocation, IPAllocation.port_id == Port.id)
        .join(Network, Network.id == Port.network_id)
    )
    ports = [
        PortState(
            port_id=pid,
            ip=ip,
            bridge=bridge_name(nid),
            groups=tuple(sorted(groups.get(pid, []))),
            port_security=bool(secure),
            admin_up=bool(up),
        )
        for pid, secure, up, ip, nid in rows
    ]
    rules = [
        RuleState(
            group_id=r.security_group_id,
            direction=r.direction,
            ethertype=r.ethertype,
            protocol=r.protocol,
            port_range_min=r.port_range_min,
            port_range_max=r.port_range_max,
            remote_ip_prefix=r.remote_ip_prefix,
            remote_group_id=r.remote_group_id,
        )
        for r in session.scalars(select(SecurityGroupRule))
    ]
    bridges = [
        bridge_name(nid)
        for nid in session.scalars(
            select(Network.id).join(Subnet, Subnet.network_id == Network.id).distinct()
        )
    ]
    return ports, rules, bridges


# ---- the loop ---------------------------------------------------------------------------------

_wakeups: dict[int, threading.Event] = {}


def request_sync(runtime) -> None:
    """Ask the firewall loop of this process to re-read the database now (optional: the loop
    polls every POLL_SECONDS anyway)."""
    event = _wakeups.get(id(runtime))
    if event is not None:
        event.set()


class FirewallSync:
    def __init__(
        self, runtime, prefix_of: Callable[[], str], applier: IptablesApplier | None = None
    ):
        self.runtime = runtime
        self.prefix_of = prefix_of
        self.applier = applier or IptablesApplier()
        self.wake = threading.Event()
        _wakeups[id(runtime)] = self.wake
        self.applied: str | None = None
        self.last_verify = 0.0
        self.last_garbage = 0.0
        self.failing = False

    def desired(self) -> Ruleset:
        with self.runtime.db.session() as session:
            ports, rules, bridges = load_state(session)
        return desired_ruleset(self.prefix_of(), ports, rules, bridges)

    def sync_once(self, force_verify: bool = False) -> bool:
        """Apply the desired ruleset if the kernel lacks it; True when something was applied."""
        ruleset = self.desired()
        now = time.monotonic()
        verify = force_verify or now - self.last_verify >= VERIFY_SECONDS
        if ruleset.digest == self.applied and not verify:
            return False
        if verify:
            self.last_verify = now
        if ruleset.digest == self.applied and self.applier.in_force(ruleset):
            return False
        self.applier.apply(ruleset)
        self.applied = ruleset.digest
        log.info(
            "firewall ruleset %s applied (%d chains)",
            ruleset.digest,
            len(ruleset.chains),
            extra={"fields": {"ruleset": ruleset.digest, "chains": len(ruleset.chains)}},
        )
        return True

    def _step(self) -> None:
        self.wake.clear()
        try:
            self.sync_once()
            if time.monotonic() - self.last_garbage >= GARBAGE_SECONDS:
                self.last_garbage = time.monotonic()
                for prefix in self.applier.collect_garbage(self.prefix_of(), bridge_exists):
                    log.info("removed inert firewall chains %s-* of a gone deployment", prefix)
            if self.failing:
                log.info("firewall sync recovered")
            self.failing = False
        except Exception:
            if not self.failing:
                log.exception("firewall sync failed; retrying")
            self.failing = True
            self.applied = None

    def release_if_idle(self) -> None:
        """At shutdown: with no port to protect, take dockyard's chains out of the kernel. With
        ports, the rules stay in force while dockyard is down (and are reconciled at start)."""
        ruleset = self.desired()
        start = len(ruleset.prefix) + 1
        if not any(name[start] in "IO" for name in ruleset.chains if name != ruleset.entry):
            self.applier.remove(ruleset.prefix)

    async def run(self) -> None:
        if not self.applier.available():
            log.error("iptables-restore is not installed: security groups are NOT enforced")
            return
        try:
            while True:
                await anyio.to_thread.run_sync(self._step)
                deadline = time.monotonic() + POLL_SECONDS
                while time.monotonic() < deadline and not self.wake.is_set():
                    await anyio.sleep(0.05)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                try:
                    await anyio.to_thread.run_sync(self.release_if_idle)
                except Exception:  # noqa: BLE001 - best effort at shutdown
                    log.warning("firewall chains not released at shutdown", exc_info=True)
