"""EmulatorServer: three werkzeug servers in one process, all on 127.0.0.1.

- the production login host (plain http): OAuth endpoints and identity URLs of production orgs;
- the sandbox login host (plain http): the same for sandbox orgs;
- the instance host (https): REST and SOAP, and Lightning record pages
  (``/lightning/r/<SObject>/<Id>/view``, lightning.py).

simple-salesforce always calls https:// on the instance host (SALESFORCE.md section 5), so the
instance host serves TLS with a certificate for 127.0.0.1 and localhost issued by a local CA
(trustme). Clients trust ``ca_path``. The login hosts stay plain http so the consent page opens in
a browser without a certificate warning. The control API and the HTML page are on all three.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import certifi
import trustme
from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .control import handle_control
from .core import EmulatorState
from .lightning import handle_lightning
from .oauth import LoginHost
from .rest import handle_rest, json_response
from .soap import soap_endpoint

logger = logging.getLogger(__name__)

CA_FILE = "emulator-ca.pem"
CA_KEY_FILE = "emulator-ca-key.pem"
CERT_FILE = "instance-cert.pem"
KEY_FILE = "instance-key.pem"
BUNDLE_FILE = "ca-bundle.pem"


def ensure_certificates(certs_dir: Path) -> dict[str, Path]:
    """Create (or reuse) the local CA and the instance host's certificate in ``certs_dir``.

    Reusing them keeps a browser or service that trusts the CA working across restarts.
    """
    certs_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "ca": certs_dir / CA_FILE,
        "ca_key": certs_dir / CA_KEY_FILE,
        "cert": certs_dir / CERT_FILE,
        "key": certs_dir / KEY_FILE,
        "bundle": certs_dir / BUNDLE_FILE,
    }
    if not all(paths[name].exists() for name in ("ca", "cert", "key")):
        ca = trustme.CA(organization_name="Salesforce Emulator (local test CA)")
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(paths["ca"]))
        ca.private_key_pem.write_to_path(str(paths["ca_key"]))
        paths["cert"].write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(paths["key"]))
        for name in ("ca_key", "key"):
            os.chmod(paths[name], 0o600)
    if not paths["bundle"].exists():
        # The public roots plus ours, for REQUESTS_CA_BUNDLE in a process that also talks to
        # real hosts.
        paths["bundle"].write_bytes(
            Path(certifi.where()).read_bytes() + b"\n" + paths["ca"].read_bytes()
        )
    return paths


class _Handler(WSGIRequestHandler):
    """Request handler that really drops the connection on DropConnection and logs quietly."""

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Paths only (never bodies or headers), at debug level: tokens stay out of logs.
        logger.debug("%s %s %s", self.command, self.path.split("?")[0], code)


class _App:
    """The WSGI application of one host."""

    def __init__(self, state: EmulatorState, login: LoginHost | None) -> None:
        self.state = state
        self.login = login

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self.route(request)(environ, start_response)

    def route(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_emulator"):
            return handle_control(self.state, request)
        if path == "/":
            return Response(status=302, headers={"Location": "/_emulator/ui"})
        if self.login is not None:
            response = self.login.handle(request)
            if response is not None:
                return response
        elif path.startswith("/services/data"):
            return handle_rest(self.state, request)
        elif path.startswith("/lightning/") and request.method == "GET":
            page = handle_lightning(self.state, request)
            if page is not None:
                return page
        elif path.startswith("/services/Soap/u/") and request.method == "POST":
            return self._soap(request)
        return json_response(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )

    def _soap(self, request: Request) -> Response:
        version = request.path.split("/")[4]
        return soap_endpoint(self.state, request, version)


class EmulatorServer:
    """The emulator as a running process part: three servers sharing one ``EmulatorState``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        login_port: int = 0,
        sandbox_port: int = 0,
        instance_port: int = 0,
        certs_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.ports = {"login": login_port, "sandbox": sandbox_port, "instance": instance_port}
        self.state = EmulatorState()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if certs_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="sf-emulator-")
            certs_dir = Path(self._tempdir.name)
        self.certs = ensure_certificates(Path(certs_dir))
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []
        self.login_url = self.sandbox_login_url = self.instance_url = ""

    @property
    def ca_path(self) -> Path:
        """PEM of the CA that signed the instance host's certificate."""
        return self.certs["ca"]

    @property
    def ca_bundle_path(self) -> Path:
        """Public roots plus the emulator CA, for REQUESTS_CA_BUNDLE."""
        return self.certs["bundle"]

    def start(self) -> EmulatorServer:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(self.certs["cert"], self.certs["key"])
        login = make_server(
            self.host,
            self.ports["login"],
            _App(self.state, LoginHost(self.state, "production")),
            threaded=True,
            request_handler=_Handler,
        )
        sandbox = make_server(
            self.host,
            self.ports["sandbox"],
            _App(self.state, LoginHost(self.state, "sandbox")),
            threaded=True,
            request_handler=_Handler,
        )
        instance = make_server(
            self.host,
            self.ports["instance"],
            _App(self.state, None),
            threaded=True,
            request_handler=_Handler,
            ssl_context=ssl_context,
        )
        self._servers = [login, sandbox, instance]
        self.login_url = f"http://{self.host}:{login.server_port}"
        self.sandbox_login_url = f"http://{self.host}:{sandbox.server_port}"
        self.instance_url = f"https://{self.host}:{instance.server_port}"
        with self.state.lock:
            self.state.login_urls = {
                "production": self.login_url,
                "sandbox": self.sandbox_login_url,
            }
            self.state.instance_url = self.instance_url
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, name=f"sf-emulator-{server.server_port}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
