"""Why a target's requests failed, by class: what coverage reports and what tells a site down.

Each failure reason a patrol counts (``patrol/target/<id>/errors/<reason>``) falls in one
class: ``blocked`` (robots.txt, 401/403/429/451, refused by policy), ``offline`` (refused,
timeouts, lost connections, 5xx, browser errors, and ``host_unresponsive``: requests not
sent once their host had failed too often in a row), ``domain_gone`` (DNS: no server
answers; ``host_unresolved``: not sent, the host's name did not resolve), ``not_found``
(404, and 410: the server answers that the page is missing or was removed on purpose)
and ``other``.
"""

from __future__ import annotations

BLOCKED = ("private_network", "robots", "ignored", "http_401", "http_403", "http_429", "http_451")
OFFLINE = ("refused", "timeout", "connection_lost", "render_timeout", "render_error", "too_large",
           "host_unresponsive")
DOMAIN_GONE = ("dns", "host_unresolved")
NOT_FOUND = ("http_404", "http_410")


def failure_class(reason: str) -> str:
    if reason in BLOCKED:
        return "blocked"
    if reason in DOMAIN_GONE:
        return "domain_gone"
    if reason in NOT_FOUND:
        return "not_found"
    if reason in OFFLINE or reason.startswith("http_5"):
        return "offline"
    return "other"


def describe_failures(errors: dict) -> str:
    """``offline×3 (timeout×2, http_503×1)``: each class with the reasons behind it."""
    parts = []
    for cls, count in sorted(classify_errors(errors).items()):
        reasons = sorted(((r, int(n)) for r, n in errors.items() if failure_class(r) == cls),
                         key=lambda pair: (-pair[1], pair[0]))
        detail = ", ".join(f"{r}×{n}" for r, n in reasons)
        parts.append(f"{cls}×{count}" + (f" ({detail})" if reasons != [(cls, count)] else ""))
    return ", ".join(parts)


def classify_errors(errors: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for reason, count in (errors or {}).items():
        key = failure_class(reason)
        out[key] = out.get(key, 0) + int(count)
    return out
