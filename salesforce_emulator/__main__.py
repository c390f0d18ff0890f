"""Run the emulator in the foreground: ``python -m salesforce_emulator [--seed demo]``."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from .control import create_org_with_app
from .core import AssignmentEntry, AutoResponseEntry, EmulatorState
from .server import EmulatorServer

DEMO_CLIENT_ID = "demo-client-id"
DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - fake, only valid against the emulator
DEMO_WEB_PORT = 8000


def demo_callback_urls(web_port: int = DEMO_WEB_PORT) -> list[str]:
    """The demo connected app's callback URLs: the service's OAuth callback on `web_port`, by IP
    and by name. Salesforce compares the redirect_uri with the app's list exactly, port included,
    so the app must list the port the service really runs on (`make run` passes WEB_PORT)."""
    return [
        f"http://{host}:{web_port}/integrations/salesforce/callback/"
        for host in ("127.0.0.1", "localhost")
    ]


def seed_demo(state: EmulatorState, web_port: int = DEMO_WEB_PORT) -> dict[str, str]:
    """A production org with a user, a queue, a default Lead assignment rule, an active Lead
    auto-response rule and the demo connected app, whose callback is the service on
    `web_port`. Returns {"org_id", "username"} of the org's admin."""
    created = create_org_with_app(
        state,
        {
            "name": "Demo Plumbing Co",
            "users": [
                {
                    "username": "owner@demo-plumbing.example.com",
                    "first_name": "Olivia",
                    "last_name": "Owner",
                    "email": "owner@demo-plumbing.example.com",
                },
                {
                    "username": "sales@demo-plumbing.example.com",
                    "first_name": "Sam",
                    "last_name": "Sales",
                    "email": "sales@demo-plumbing.example.com",
                },
            ],
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "callback_urls": demo_callback_urls(web_port),
        },
    )
    org = state.org(created["org_id"])
    sam = next(u for u in org.users.values() if u.first_name == "Sam")
    queue = org.add_queue("Web Leads", member_ids=[sam.id], email=None)
    org.set_assignment_rule(
        "Lead",
        "Standard lead routing",
        [
            AssignmentEntry(assign_to=sam.id, criteria={"LeadSource": "Phone Inquiry"}),
            AssignmentEntry(assign_to=queue.id, criteria={}),
        ],
    )
    org.set_auto_response_rule(
        "Lead",
        "Web inquiry confirmation",
        [
            AutoResponseEntry(
                template="Lead Web Response",
                from_address="hello@demo-plumbing.example.com",
                subject="Thanks for contacting Demo Plumbing, {!Lead.FirstName}",
                body="Hi {!Lead.FirstName}, we got your request and will call you shortly.",
            )
        ],
    )
    return {"org_id": org.id, "username": org.admin.username}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m salesforce_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--login-port", type=int, default=8001)
    parser.add_argument("--sandbox-port", type=int, default=8002)
    parser.add_argument("--instance-port", type=int, default=8443)
    parser.add_argument("--certs-dir", type=Path, default=Path("var/emulator-certs"))
    parser.add_argument("--seed", choices=["demo"], default=None)
    parser.add_argument(
        "--web-port",
        type=int,
        default=DEMO_WEB_PORT,
        help="port of the service whose OAuth callback the demo connected app accepts",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    server = EmulatorServer(
        args.host, args.login_port, args.sandbox_port, args.instance_port, args.certs_dir
    ).start()
    print(f"Salesforce emulator\n  login (production): {server.login_url}")
    print(f"  login (sandbox):    {server.sandbox_login_url}")
    print(f"  instance (https):   {server.instance_url}")
    print(f"  CA to trust:        {server.ca_path}")
    print(f"  CA bundle:          {server.ca_bundle_path}")
    print(f"  records and emails: {server.login_url}/_emulator/ui")
    if args.seed == "demo":
        demo = seed_demo(server.state, args.web_port)
        print(f"  demo org {demo['org_id']}, user {demo['username']}")
        print(f"  connected app: {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}")
        print(f"  callback:      {demo_callback_urls(args.web_port)[0]}")
    print("Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
