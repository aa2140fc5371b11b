"""The desired iptables ruleset is a pure function of ports and security-group rules."""

from __future__ import annotations

from dockyard.network.firewall import (
    MARK_BIT,
    IptablesApplier,
    PortState,
    RuleState,
    desired_ruleset,
    render,
)

P = "DYABCDEF"
WEB = PortState("aaaaaaaaaaaa1111", "10.0.0.5", "dynnet1", ("web",))
CLIENT = PortState("bbbbbbbbbbbb2222", "10.0.0.6", "dynnet1", ("default",))
EGRESS_ALL = [RuleState(g, "egress") for g in ("web", "default")]


def chains(ports, rules):
    return desired_ruleset(P, ports, rules).chains


def test_no_ingress_rule_means_drop_and_egress_all_means_return():
    c = chains([WEB, CLIENT], EGRESS_ALL)
    assert c[f"{P}-Iaaaaaaaaaaaa"] == ["-j DROP"]
    assert c[f"{P}-Oaaaaaaaaaaaa"] == ["-j RETURN", "-j DROP"]
    assert c[f"{P}-FWD"] == [
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-i dynnet1 -j {P}-Enet1",  # egress of the sender first, then ingress of the receiver
        f"-o dynnet1 -j {P}-Nnet1",
    ]
    # a port's chain is reached with goto, so its RETURN resumes FWD; unknown addresses drop
    assert c[f"{P}-Enet1"] == [
        f"-s 10.0.0.5/32 -g {P}-Oaaaaaaaaaaaa",
        f"-s 10.0.0.6/32 -g {P}-Obbbbbbbbbbbb",
        "-j DROP",
    ]
    assert c[f"{P}-Nnet1"] == [
        f"-d 10.0.0.5/32 -g {P}-Iaaaaaaaaaaaa",
        f"-d 10.0.0.6/32 -g {P}-Ibbbbbbbbbbbb",
        "-j DROP",
    ]


def test_bridges_without_ports_pass_nothing():
    c = chains([], [])
    assert c == {f"{P}-FWD": ["-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]}
    c = desired_ruleset(P, [], [], bridges=["dynempty000000"]).chains
    assert c[f"{P}-Eempty000000"] == ["-j DROP"] and c[f"{P}-Nempty000000"] == ["-j DROP"]


def test_tcp_port_rule():
    rules = [
        *EGRESS_ALL,
        RuleState(
            "web",
            "ingress",
            protocol="tcp",
            port_range_min=80,
            port_range_max=80,
            remote_ip_prefix="0.0.0.0/0",
        ),
    ]
    assert chains([WEB], rules)[f"{P}-Iaaaaaaaaaaaa"] == [
        "-p tcp -m tcp --dport 80 -j RETURN",
        "-j DROP",
    ]


def test_ranges_prefixes_udp_icmp_and_any():
    rules = [
        RuleState(
            "web",
            "ingress",
            protocol="udp",
            port_range_min=1000,
            port_range_max=2000,
            remote_ip_prefix="192.0.2.0/24",
        ),
        RuleState("web", "ingress", protocol="icmp", port_range_min=8, port_range_max=0),
        RuleState("web", "ingress", protocol="icmp"),
        RuleState("web", "ingress", protocol="132"),
        RuleState("web", "ingress", ethertype="IPv6"),  # not expressible in iptables (v4)
        RuleState("web", "ingress", protocol="icmpv6"),
    ]
    got = chains([WEB], rules)[f"{P}-Iaaaaaaaaaaaa"]
    assert set(got) == {
        "-s 192.0.2.0/24 -p udp -m udp --dport 1000:2000 -j RETURN",
        "-p icmp -m icmp --icmp-type 8/0 -j RETURN",
        "-p icmp -j RETURN",
        "-p 132 -j RETURN",
        "-j DROP",
    }
    assert got[-1] == "-j DROP"


def test_remote_group_is_one_membership_chain():
    other = PortState("cccccccccccc3333", "10.0.0.7", "dynnet1", ("default",))
    rules = [RuleState("default", "ingress", remote_group_id="default")]
    c = chains([CLIENT, other, WEB], rules)
    mark = f"{MARK_BIT:#x}/{MARK_BIT:#x}"
    members = f"{P}-Sdefault"
    assert c[members] == [
        f"-s 10.0.0.6/32 -j MARK --set-xmark {mark}",
        f"-s 10.0.0.7/32 -j MARK --set-xmark {mark}",
    ]
    assert c[f"{P}-Ibbbbbbbbbbbb"] == [
        f"-j MARK --set-xmark 0x0/{MARK_BIT:#x}",
        f"-j {members}",
        f"-m mark --mark {mark} -j RETURN",
        "-j DROP",
    ]
    # web is not a member of default: nothing admits it; the mark never leaves dockyard
    assert "10.0.0.5" not in " ".join(c[members])
    assert c[f"{P}-FWD"][-1] == f"-j MARK --set-xmark 0x0/{MARK_BIT:#x}"
    # a group with no members admits nobody
    lonely = chains([WEB], [RuleState("web", "ingress", remote_group_id="default")])
    assert lonely[f"{P}-Iaaaaaaaaaaaa"] == ["-j DROP"]


def test_rules_grow_linearly_with_ports():
    def total(n: int) -> int:
        ports = [
            PortState(f"{i:012x}", f"10.0.{i // 250}.{i % 250 + 2}", "dynnet1", ("default",))
            for i in range(n)
        ]
        rules = [
            RuleState("default", "egress"),
            RuleState("default", "ingress", remote_group_id="default"),
            RuleState("default", "ingress", protocol="tcp", port_range_min=22, port_range_max=22),
        ]
        return sum(len(v) for v in desired_ruleset(P, ports, rules).chains.values())

    assert total(400) < 2.1 * total(200)
    assert total(200) < 12 * 200


def test_port_security_disabled_is_unfiltered_and_no_groups_drops_all():
    open_port = PortState("dddddddddddd", "10.0.0.8", "dynnet1", (), port_security=False)
    closed = PortState("eeeeeeeeeeee", "10.0.0.9", "dynnet1", ())
    c = chains([open_port, closed], EGRESS_ALL)
    assert "-s 10.0.0.8/32 -j RETURN" in c[f"{P}-Enet1"]
    assert "-d 10.0.0.8/32 -j RETURN" in c[f"{P}-Nnet1"]
    assert not any(name.endswith("dddddddddddd") for name in c)
    assert c[f"{P}-Ieeeeeeeeeeee"] == ["-j DROP"] and c[f"{P}-Oeeeeeeeeeeee"] == ["-j DROP"]


def test_a_port_that_is_down_passes_nothing():
    down = PortState("ffffffffffff", "10.0.0.10", "dynnet1", ("web",), admin_up=False)
    unfiltered_but_down = PortState(
        "999999999999", "10.0.0.11", "dynnet1", (), port_security=False, admin_up=False
    )
    c = chains([down, unfiltered_but_down], EGRESS_ALL)
    for port in ("ffffffffffff", "999999999999"):
        assert c[f"{P}-I{port}"] == ["-j DROP"] and c[f"{P}-O{port}"] == ["-j DROP"]


def test_the_ruleset_does_not_depend_on_input_order():
    rules = [
        *EGRESS_ALL,
        RuleState("web", "ingress", protocol="tcp", port_range_min=80, port_range_max=80),
    ]
    a = desired_ruleset(P, [WEB, CLIENT], rules)
    b = desired_ruleset(P, [CLIENT, WEB], list(reversed(rules)))
    assert a.digest == b.digest and a.chains == b.chains
    c = desired_ruleset(P, [WEB, CLIENT], rules[:-1])
    assert c.digest != a.digest


def test_render_replaces_chains_and_drops_stale_ones():
    rs = desired_ruleset(P, [WEB], EGRESS_ALL)
    text = render(rs, stale_chains=[f"{P}-Iold000000000", f"{P}-FWD"])
    lines = text.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert f":{P}-FWD - [0:0]" in lines and f":{P}-Iold000000000 - [0:0]" in lines
    assert f"-X {P}-Iold000000000" in lines and f"-X {P}-FWD" not in lines
    assert f'-A {P}-FWD -m comment --comment "{rs.marker}"' in lines
    # declarations (which flush) come before rules, deletions after them
    assert lines.index(f":{P}-Iold000000000 - [0:0]") < lines.index(f"-X {P}-Iold000000000")


class FakeKernel:
    """Records commands; iptables-save answers with what was 'applied'."""

    def __init__(self, saved: str = ""):
        self.saved = saved
        self.calls: list[list[str]] = []

    def __call__(self, cmd, stdin=None):
        self.calls.append(cmd)
        return self.saved if cmd[0] == "iptables-save" else ""


def test_applier_hooks_once_and_sees_drift():
    rs = desired_ruleset(P, [WEB], EGRESS_ALL)
    kernel = FakeKernel(":DOCKER-USER - [0:0]\n-A DOCKER-USER -j RETURN\n")
    applier = IptablesApplier(kernel)
    assert not applier.in_force(rs)
    applier.apply(rs)
    assert ["iptables", "-w", "10", "-I", "DOCKER-USER", "1", "-j", f"{P}-FWD"] in kernel.calls
    # what the kernel holds after the restore: the hook, the marker and every rule
    applied = [ln for ln in render(rs).splitlines() if ln.startswith("-A ")]
    kernel.saved += f"-A DOCKER-USER -j {P}-FWD\n" + "\n".join(applied) + "\n"
    assert applier.in_force(rs)
    # a chain flushed behind dockyard's back is noticed
    flushed = kernel.saved.replace(f"-A {P}-Iaaaaaaaaaaaa -j DROP\n", "")
    assert not IptablesApplier(FakeKernel(flushed)).in_force(rs)
    kernel.calls.clear()
    applier.apply(rs)
    assert not any(c[:2] == ["iptables", "-w"] and "-I" in c for c in kernel.calls)


def test_garbage_collection_removes_only_inert_deployments():
    saved = "\n".join(
        [
            ":DOCKER-USER - [0:0]",
            ":DYAAAAAA-FWD - [0:0]",
            ":DYBBBBBB-FWD - [0:0]",
            ":DYBBBBBB-I000000000001 - [0:0]",
            ":DYCCCCCC-FWD - [0:0]",
            ":DYDDDDDD-FWD - [0:0]",
            "-A DOCKER-USER -j DYAAAAAA-FWD",
            "-A DOCKER-USER -j DYBBBBBB-FWD",
            "-A DOCKER-USER -j DYCCCCCC-FWD",
            "-A DOCKER-USER -j DYDDDDDD-FWD",
            "-A DOCKER-USER -j RETURN",
            "-A DYAAAAAA-FWD -d 10.1.0.2/32 -o dyn111111111111 -j DYAAAAAA-I000000000009",
            "-A DYBBBBBB-FWD -d 10.2.0.2/32 -o dyn222222222222 -j DYBBBBBB-I000000000001",
            "-A DYCCCCCC-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
            "-A DYDDDDDD-FWD -d 10.4.0.2/32 -o dyn444444444444 -j DYDDDDDD-I000000000004",
        ]
    )
    kernel = FakeKernel(saved + "\n")
    applier = IptablesApplier(kernel)
    existing = {"dyn444444444444"}
    removed = applier.collect_garbage("DYAAAAAA", lambda b: b in existing)
    # own chains are never touched; one whose bridges are gone or that names none goes
    assert removed == ["DYBBBBBB", "DYCCCCCC"]
    assert ["iptables", "-w", "10", "-D", "DOCKER-USER", "-j", "DYBBBBBB-FWD"] in kernel.calls
