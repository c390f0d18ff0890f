"""The layers hold: what `lint-imports` checks in CI, plus what it cannot see.

import-linter (contracts in pyproject.toml) proves that no module imports up a layer and that no
import circle exists between sibling modules. It counts an import inside a function like any
other, so those contracts already fail on a circle hidden that way; the test below also keeps
such imports from coming back as a habit: a function-local import of our own code is how a
circle is usually hidden. Django's `AppConfig.ready()` is the documented exception: it runs once
the app registry is ready, where integrations register their hooks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("autorespond", "integrations", "salesforce_emulator")
MAX_MODULE_LINES = 500


def _modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _is_ours(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in PACKAGES
    return any(alias.name.split(".")[0] in PACKAGES for alias in node.names)


def test_no_function_imports_our_code_except_app_ready() -> None:
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if function.name == "ready" and path.name == "apps.py":
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and _is_ours(node):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} in {function.name}()")
    assert found == []


def _imported_roots(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [(node.module or "").split(".")[0]]
    return [alias.name.split(".")[0] for alias in node.names]


def test_the_core_imports_no_integration() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _modules()
        if path.relative_to(ROOT).parts[0] == "autorespond"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom) and "integrations" in _imported_roots(node)
    ]
    assert found == []


def test_no_module_of_the_integration_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _modules()
        if path.relative_to(ROOT).parts[0] == "integrations"
        and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_import_contracts_are_kept() -> None:
    """The contracts in pyproject.toml, as CI's `make lint` runs them."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
