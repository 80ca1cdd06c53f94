"""DESIGN §2: web → shared ← workers; shared imports neither and never Flask; sandbox imports nothing of ours."""

import ast
from pathlib import Path

from shared.settings import PROJECT_ROOT

PROJECT_PACKAGES = {"web", "workers", "shared", "sandbox", "celeryconfig", "flowerconfig", "wsgi"}
FORBIDDEN = {
    "web": {"workers", "sandbox"},
    "workers": {"web", "sandbox", "flask", "flask_smorest", "flask_jwt_extended"},
    "shared": {"web", "workers", "sandbox", "flask", "flask_smorest", "flask_jwt_extended", "flask_cors"},
    "sandbox": PROJECT_PACKAGES - {"sandbox"},
}


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def violations(root: Path) -> list[str]:
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for module in imported_modules(path.read_text()):
                top = module.split(".")[0]
                if top in forbidden:
                    found.append(f"{path.relative_to(root)} imports {module}")
    return found


def test_the_project_follows_the_dependency_rule():
    assert violations(PROJECT_ROOT) == []


def test_the_check_catches_a_web_module_importing_a_worker(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "api.py").write_text("from workers.tasks import maintenance\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "ok.py").write_text("import sqlalchemy\n")
    (tmp_path / "shared" / "bad.py").write_text("def f():\n    import flask\n")
    assert sorted(violations(tmp_path)) == ["shared/bad.py imports flask", "web/api.py imports workers.tasks"]
