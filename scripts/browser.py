"""Make sure Debian's Chromium is there for the browser tests (Playwright drives it).

No browser download works on these machines, so Playwright is told to use /usr/bin/chromium.
Installs the `chromium` package when it is missing and we may (root with apt-get); otherwise says
so, and the browser tests skip (or fail under CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    if os.path.exists(CHROMIUM):
        return 0
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("Installing Debian's chromium for the browser tests…", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env)
    if not os.path.exists(CHROMIUM):
        print("!! Chromium is not installed: browser tests will be skipped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
