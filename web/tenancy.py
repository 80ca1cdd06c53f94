"""The organization a request acts for.

Bound once per request (shared.db.bind_organization) so tenant queries are filtered
in one place. Until authentication exists (issue 3) no organization is bound and
the jobs endpoints are not scoped.
"""

import uuid

from shared.db import current_organization


def current_org_id() -> uuid.UUID | None:
    return current_organization()
