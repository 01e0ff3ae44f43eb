"""Stream notes (Post, with @mentions that notify the mentioned user) and notifications."""

from __future__ import annotations

import re
from typing import Any

from sandbox.espocrm.schema import ENTITY, EspoError, User, new_id, now_espo, validation_error
from sandbox.espocrm.store import EspoStore

MENTION_RE = re.compile(r"@([A-Za-z0-9_.\-]*[A-Za-z0-9_])")


def create_note(store: EspoStore, user: User, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("type", "Post") != "Post":
        raise EspoError(403, "No create access.")
    post = data.get("post")
    if not isinstance(post, str) or not post.strip():
        raise validation_error("post", "required", entity="Note")
    parent_type, parent_id = data.get("parentType"), data.get("parentId")
    if parent_type == "User":  # a post on a user's own stream (EspoCRM: User permission)
        if parent_id not in store.users:
            raise EspoError(404, f"Record {parent_id} not found.")
    elif parent_type is not None:
        if parent_type != ENTITY:
            raise EspoError(403, "No access.")
        store.get(str(parent_id))
    note = {
        "id": new_id(),
        "type": "Post",
        "post": post,
        "parentType": parent_type,
        "parentId": parent_id,
        "createdAt": now_espo(),
        "createdById": user.id,
        "createdByName": user.name,
        "deleted": False,
    }
    store.notes.append(note)
    _notify_mentions(store, user, note)
    return note


def _notify_mentions(store: EspoStore, author: User, note: dict[str, Any]) -> None:
    for mention in MENTION_RE.findall(note["post"]):
        target = store.by_user_name.get(mention.lower())
        if target is not None and target.id != author.id:
            store.notifications.append(
                {
                    "id": new_id(),
                    "type": "MentionInPost",
                    "userId": target.id,
                    "read": False,
                    "noteId": note["id"],
                    "relatedType": "Note",
                    "relatedId": note["id"],
                    "relatedParentType": note["parentType"],
                    "relatedParentId": note["parentId"],
                    "createdAt": note["createdAt"],
                    "createdById": author.id,
                }
            )


def create_notification(store: EspoStore, user: User, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("userId") not in store.users:
        raise validation_error("userId", "required")
    note = {
        "id": new_id(),
        "type": str(data.get("type") or "Message"),
        "userId": data["userId"],
        "message": data.get("message"),
        "read": False,
        "createdAt": now_espo(),
        "createdById": user.id,
    }
    store.notifications.append(note)
    return note
