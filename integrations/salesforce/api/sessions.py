"""HTTP sessions for Salesforce hosts: every request with a timeout and the configured CA, and
one session per connection per worker process, reused across tasks (keep-alive, TLS).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings

if TYPE_CHECKING:
    from integrations.salesforce.models import SalesforceConnection

__all__ = ["TimeoutSession", "salesforce_http_session", "shared_http_session"]


class TimeoutSession(requests.Session):
    """A requests session whose every request has a timeout (no call may hang a worker), and
    whose `verify` is used even when REQUESTS_CA_BUNDLE is set in the environment (requests
    otherwise lets that variable override the session's own CA)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        # The client currently using this session, told about every response (its API usage).
        self.listener: Callable[[requests.Response], None] | None = None
        self.hooks["response"].append(self._tell_listener)

    def _tell_listener(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if self.listener is not None:
            self.listener(response)

    def request(self, method: str | bytes, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, **kwargs)


def salesforce_http_session() -> TimeoutSession:
    """A session for Salesforce hosts: timeouts, and the emulator's CA when one is configured."""
    session = TimeoutSession(settings.SALESFORCE_HTTP_TIMEOUT)
    session.verify = settings.SALESFORCE_CA_BUNDLE or True
    return session


# One HTTP session per connection per worker process, reused across tasks: keep-alive and TLS
# sessions survive from one drain to the next (issue 12 measured 9 % of busy time in new
# handshakes). A worker process runs one task at a time (prefork), so a session has one user at
# a time; the lock only guards the cache itself. Keyed by process id as well, so a session made
# before a fork is never shared with the children.
_SESSIONS: OrderedDict[tuple[int, int, str], TimeoutSession] = OrderedDict()
_SESSIONS_LOCK = threading.Lock()
_MAX_SESSIONS = 64


def shared_http_session(connection: SalesforceConnection) -> TimeoutSession:
    """This process's session for `connection` (made on first use; the least recently used is
    closed when more than 64 are open)."""
    key = (os.getpid(), connection.pk or 0, connection.instance_url)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None or session.verify != (settings.SALESFORCE_CA_BUNDLE or True):
            session = salesforce_http_session()
            _SESSIONS[key] = session
        _SESSIONS.move_to_end(key)
        while len(_SESSIONS) > _MAX_SESSIONS:
            _old_key, old = _SESSIONS.popitem(last=False)
            old.close()
        return session
