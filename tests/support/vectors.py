"""Known-answer vectors that both the service and the sandbox are checked against, each with
its own implementation: one vector, two independent implementations."""

from __future__ import annotations

# EspoCRM's HMAC authorization: (api key, secret key, method, path) -> X-Hmac-Authorization.
ESPO_HMAC_REQUEST = (
    "api0key0000000000000000000000001",
    "sec0key0000000000000000000000001",
    "GET",
    "CBeteiligte",
)
ESPO_HMAC_HEADER = (
    "YXBpMGtleTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDE6NDFhMTgyNTRjOWRjNGQwNmRlMWZhODVmNzU1ZWQz"
    "MmU0Y2RmN2IwOGMwYWYwMDk0ZGYxMDI2ODg0NjEwZDMxNw=="
)
