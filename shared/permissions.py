"""Roles and what each may do: the one table every endpoint's permission check reads.

viewer reads only; agent works conversations, contacts and chatbots; org_admin does
everything inside its organization; super_admin does everything, across organizations.
"""

from __future__ import annotations

import enum


class Role(str, enum.Enum):
    super_admin = "super_admin"
    org_admin = "org_admin"
    agent = "agent"
    viewer = "viewer"


class Permission(str, enum.Enum):
    platform_manage = "platform:manage"  # organizations across the platform, plans
    org_read = "org:read"
    org_manage = "org:manage"
    users_read = "users:read"
    users_manage = "users:manage"
    departments_read = "departments:read"
    departments_manage = "departments:manage"
    jobs_read = "jobs:read"
    jobs_manage = "jobs:manage"
    contacts_read = "contacts:read"
    contacts_write = "contacts:write"
    conversations_read = "conversations:read"
    conversations_reply = "conversations:reply"
    conversations_manage = "conversations:manage"
    chatbots_read = "chatbots:read"
    chatbots_manage = "chatbots:manage"
    campaigns_read = "campaigns:read"
    campaigns_manage = "campaigns:manage"
    numbers_read = "numbers:read"
    numbers_manage = "numbers:manage"
    templates_read = "templates:read"
    templates_manage = "templates:manage"
    analytics_read = "analytics:read"
    alerts_manage = "alerts:manage"  # read and acknowledge what needs an admin's eye


_READS = frozenset(p for p in Permission if p.value.endswith(":read"))
_AGENT_WORK = frozenset(
    {
        Permission.contacts_write,
        Permission.conversations_reply,
        Permission.conversations_manage,
        Permission.chatbots_manage,
        Permission.jobs_manage,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.viewer: _READS,
    Role.agent: _READS | _AGENT_WORK,
    Role.org_admin: frozenset(Permission) - {Permission.platform_manage},
    Role.super_admin: frozenset(Permission),
}


def has_permission(role: Role | str, permission: Permission | str) -> bool:
    return Permission(permission) in ROLE_PERMISSIONS[Role(role)]
