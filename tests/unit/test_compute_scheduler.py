"""Scheduler filters and weighers are pure functions over a snapshot of host state."""

import pytest

from dockyard.compute.scheduler import (
    BootRequest,
    HostState,
    NoValidHost,
    affinity_filter,
    anti_affinity_filter,
    core_filter,
    enabled_filter,
    image_filter,
    ram_filter,
    select_host,
)


def host(name="h1", **kw) -> HostState:
    base = dict(total_ram_mb=8192, total_vcpus=4, ram_ratio=1.0, cpu_ratio=1.0, arch="x86_64")
    base.update(kw)
    return HostState(name=name, **base)


def test_ram_filter_counts_overcommit_reserved_and_used():
    h = host(total_ram_mb=4096, ram_ratio=1.5, reserved_ram_mb=512, used_ram_mb=2048)
    # 4096*1.5 - 512 - 2048 = 3584 MB free
    assert ram_filter(h, BootRequest(ram_mb=3584, vcpus=1)) is None
    why = ram_filter(h, BootRequest(ram_mb=3585, vcpus=1))
    assert why == "h1: needs 3585 MB RAM, has 3584 MB free (RamFilter)"


def test_core_filter_with_allocation_ratio():
    h = host(total_vcpus=2, cpu_ratio=16.0, used_vcpus=30)
    assert core_filter(h, BootRequest(ram_mb=1, vcpus=2)) is None
    assert "needs 3 vCPUs, has 2 free" in core_filter(h, BootRequest(ram_mb=1, vcpus=3))


def test_enabled_filter_names_disabled_and_down_hosts():
    assert "disabled (maintenance)" in enabled_filter(
        host(enabled=False, disabled_reason="maintenance"), BootRequest(1, 1)
    )
    assert "does not answer" in enabled_filter(host(up=False), BootRequest(1, 1))
    assert enabled_filter(host(), BootRequest(1, 1)) is None


def test_anti_affinity_respects_max_per_host():
    req = BootRequest(1, 1, group_policy="anti-affinity", group_members=frozenset({"a", "b"}))
    assert anti_affinity_filter(host(servers=frozenset({"a"})), req) is not None
    assert anti_affinity_filter(host(servers=frozenset()), req) is None
    two = BootRequest(
        1, 1, group_policy="anti-affinity", group_members=frozenset({"a"}), group_max_per_host=2
    )
    assert anti_affinity_filter(host(servers=frozenset({"a"})), two) is None


def test_affinity_follows_placed_members_only():
    req = BootRequest(1, 1, group_policy="affinity", group_members=frozenset({"a"}))
    assert affinity_filter(host("h1", servers=frozenset({"a"})), req) is None
    assert affinity_filter(host("h2"), req) is not None
    # a group with no placed members does not constrain
    empty = BootRequest(1, 1, group_policy="affinity")
    assert affinity_filter(host("h2"), empty) is None


def test_image_filter_architecture_aliases():
    assert image_filter(host(arch="x86_64"), BootRequest(1, 1, image_arch="amd64")) is None
    assert "image needs arm64" in image_filter(
        host(arch="x86_64"), BootRequest(1, 1, image_arch="arm64")
    )
    assert image_filter(host(), BootRequest(1, 1, image_container_format="ovf")) is not None


def test_select_host_spreads_by_free_ram():
    hosts = [host("busy", used_ram_mb=6000), host("idle", used_ram_mb=100)]
    assert select_host(hosts, BootRequest(512, 1)).host.name == "idle"


def test_soft_anti_affinity_prefers_hosts_without_members():
    hosts = [host("a", servers=frozenset({"m"})), host("b", used_ram_mb=4000)]
    req = BootRequest(512, 1, group_policy="soft-anti-affinity", group_members=frozenset({"m"}))
    assert select_host(hosts, req).host.name == "b"
    soft = BootRequest(512, 1, group_policy="soft-affinity", group_members=frozenset({"m"}))
    assert select_host(hosts, soft).host.name == "a"


def test_no_valid_host_names_every_rejection():
    hosts = [host("small", total_ram_mb=1024), host("off", enabled=False)]
    with pytest.raises(NoValidHost) as info:
        select_host(hosts, BootRequest(ram_mb=2048, vcpus=1))
    text = str(info.value)
    assert text.startswith("No valid host was found.")
    assert "small: needs 2048 MB RAM" in text
    assert "off: disabled" in text
    assert len(info.value.reasons) == 2


def test_no_hosts_at_all():
    with pytest.raises(NoValidHost, match="no compute host is registered"):
        select_host([], BootRequest(1, 1))
