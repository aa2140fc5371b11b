"""One policy table: which roles and scope may perform each API operation.

A rule is a pure function of the caller's context and the target's attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dockyard.api.context import RequestContext
from dockyard.api.errors import Forbidden

Target = Mapping[str, Any]
Rule = Callable[[RequestContext, Target], bool]


def admin(ctx: RequestContext, target: Target) -> bool:
    return ctx.is_admin


def anyone(ctx: RequestContext, target: Target) -> bool:
    return True


def _in_project(ctx: RequestContext, target: Target) -> bool:
    owner = target.get("project_id", ctx.project_id)
    return ctx.project_id is not None and owner == ctx.project_id


def member(ctx: RequestContext, target: Target) -> bool:
    """admin, or member of the project that owns the target."""
    return ctx.is_admin or (_in_project(ctx, target) and ctx.has_role("member"))


def reader(ctx: RequestContext, target: Target) -> bool:
    """admin, or reader/member of the project that owns the target."""
    return ctx.is_admin or (_in_project(ctx, target) and ctx.has_role("member", "reader"))


def own_user(ctx: RequestContext, target: Target) -> bool:
    """admin, or the caller acting on itself."""
    return ctx.is_admin or target.get("user_id") == ctx.user_id


def own_user_only(ctx: RequestContext, target: Target) -> bool:
    """Only the user itself (e.g. changing its own password)."""
    return target.get("user_id") == ctx.user_id


def own_project(ctx: RequestContext, target: Target) -> bool:
    """admin, or any role on the very project asked about."""
    return ctx.is_admin or (ctx.project_id is not None and target.get("id") == ctx.project_id)


POLICY: dict[str, Rule] = {
    # identity
    "identity:get_domain": anyone,
    "identity:list_domains": admin,
    "identity:list_projects": admin,
    "identity:get_project": own_project,
    "identity:create_project": admin,
    "identity:update_project": admin,
    "identity:delete_project": admin,
    "identity:list_user_projects": own_user,
    "identity:list_users": admin,
    "identity:get_user": own_user,
    "identity:create_user": admin,
    "identity:update_user": admin,
    "identity:delete_user": admin,
    "identity:change_password": own_user_only,
    "identity:list_roles": anyone,
    "identity:get_role": anyone,
    "identity:create_role": admin,
    "identity:delete_role": admin,
    "identity:list_grants": admin,
    "identity:check_grant": admin,
    "identity:create_grant": admin,
    "identity:revoke_grant": admin,
    "identity:list_role_assignments": admin,
    "identity:list_role_assignments_for_self": own_user,
    "identity:list_catalog": anyone,
    "identity:manage_app_credentials": own_user_only,
    "identity:read_app_credentials": own_user,
    # image (visibility is checked by dockyard.image; these rules say who may act at all)
    "image:get_images": reader,
    "image:get_image": reader,
    "image:download_image": reader,
    "image:add_image": member,
    "image:modify_image": member,
    "image:upload_image": member,
    "image:delete_image": member,
    "image:publicize_image": admin,
    "image:communitize_image": member,
    "image:deactivate": admin,
    "image:reactivate": admin,
    "image:get_members": reader,
    "image:get_member": reader,
    "image:add_member": member,
    "image:modify_member": member,
    "image:delete_member": member,
    # compute
    "compute:servers:index": reader,
    "compute:servers:show": reader,
    "compute:servers:create": member,
    "compute:servers:update": member,
    "compute:servers:delete": member,
    "compute:servers:action": member,
    "compute:servers:all_tenants": admin,
    "compute:servers:create:forced_host": admin,
    "compute:servers:reset_state": admin,
    "compute:servers:console_output": member,
    "compute:servers:create_image": member,
    "compute:flavors:read": anyone,
    "compute:flavors:manage": admin,
    "compute:keypairs:manage": own_user,
    "compute:server_groups:read": reader,
    "compute:server_groups:manage": member,
    "compute:quotas:show": reader,
    "compute:quotas:update": admin,
    "compute:limits": reader,
    "compute:availability_zones": anyone,
    "compute:availability_zones:detail": admin,
    "compute:hosts": admin,
    # network (Neutron v2.0 subset; docs/networking.md)
    "network:list_extensions": anyone,
    "network:get_network": reader,
    "network:create_network": member,
    "network:create_network:shared": admin,
    "network:create_network:router:external": admin,
    "network:update_network": member,
    "network:update_network:shared": admin,
    "network:delete_network": member,
    "network:get_subnet": reader,
    "network:create_subnet": member,
    "network:update_subnet": member,
    "network:delete_subnet": member,
    "network:get_port": reader,
    "network:create_port": member,
    "network:create_port:mac_address": member,
    "network:update_port": member,
    "network:delete_port": member,
    "network:get_security_group": reader,
    "network:create_security_group": member,
    "network:update_security_group": member,
    "network:delete_security_group": member,
    "network:get_security_group_rule": reader,
    "network:create_security_group_rule": member,
    "network:delete_security_group_rule": member,
    "network:get_quota": reader,
    "network:update_quota": admin,
    # orchestration (stacks are project-owned; the engine acts with the creator's roles)
    "orchestration:list_stacks": reader,
    "orchestration:create_stack": member,
    "orchestration:preview_stack": member,
    "orchestration:lookup_stack": reader,
    "orchestration:show_stack": reader,
    "orchestration:update_stack": member,
    "orchestration:preview_update_stack": member,
    "orchestration:delete_stack": member,
    "orchestration:abandon_stack": member,
    "orchestration:export_stack": member,
    "orchestration:show_template": reader,
    "orchestration:show_environment": reader,
    "orchestration:show_files": reader,
    "orchestration:list_outputs": reader,
    "orchestration:show_output": reader,
    "orchestration:suspend": member,
    "orchestration:resume": member,
    "orchestration:check": member,
    "orchestration:cancel_update": member,
    "orchestration:cancel_without_rollback": member,
    "orchestration:list_resources": reader,
    "orchestration:show_resource": reader,
    "orchestration:signal_resource": member,
    "orchestration:mark_unhealthy": member,
    "orchestration:list_events": reader,
    "orchestration:show_event": reader,
    "orchestration:validate_template": member,
    "orchestration:list_resource_types": reader,
    "orchestration:show_resource_type": reader,
    "orchestration:list_template_versions": reader,
    "orchestration:list_template_functions": reader,
    "orchestration:software_configs": member,
    "orchestration:software_deployments": member,
}


def check(ctx: RequestContext, action: str, target: Target | None = None) -> bool:
    rule = POLICY.get(action)
    if rule is None:
        raise KeyError(f"no policy for {action}")
    return rule(ctx, target or {})


def enforce(ctx: RequestContext, action: str, target: Target | None = None) -> None:
    """Raise 403 unless the caller may perform the action on the target."""
    if not check(ctx, action, target):
        raise Forbidden(f"You are not authorized to perform the requested action: {action}.")
