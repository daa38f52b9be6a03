"""The web UI's files as shipped: native ES modules that resolve without a build step,
each small enough to read in one sitting, all of them in the installed package, and
every element id the scripts look up present in the page."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpx
import pytest

STATIC = Path(__file__).resolve().parents[1] / "src" / "imgfind" / "server" / "static"
MODULES = sorted(STATIC.glob("js/*.js")) + [STATIC / "app.js"]
IMPORT = re.compile(r'^import (?:\{([^}]*)\} from )?"(\./[^"]+)";', re.M)
EXPORT = re.compile(r"^export (?:async )?(?:function|const|let|class) ([\w$]+)", re.M)


def test_every_import_names_a_module_and_an_export_that_exist():
    exports = {m: set(EXPORT.findall(m.read_text())) for m in MODULES}
    assert len(MODULES) >= 15
    for module in MODULES:
        for names, target in IMPORT.findall(module.read_text()):
            path = (module.parent / target).resolve()
            assert path in exports, f"{module.name} imports missing {target}"
            for name in filter(None, (n.strip() for n in names.split(","))):
                assert name in exports[path], f"{module.name}: {target} exports no {name}"


def test_modules_stay_small():
    sizes = {m.name: len(m.read_text().splitlines()) for m in MODULES}
    assert max(sizes.values()) <= 300, sizes


def test_package_data_ships_every_static_file():
    pyproject = tomllib.loads((STATIC.parents[3] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["imgfind"]
    package = STATIC.parents[1]
    shipped = {p for g in globs for p in package.glob(g) if p.is_file()}
    missing = [str(p.relative_to(package)) for p in STATIC.rglob("*")
               if p.is_file() and p not in shipped]
    assert missing == []


def test_every_element_the_scripts_look_up_is_in_the_page():
    page = (STATIC / "index.html").read_text()
    ids = set(re.findall(r'id="([^"]+)"', page))
    wanted = {i for m in MODULES for i in re.findall(r'\$\("#([\w-]+)"\)', m.read_text())}
    assert wanted - ids == set()


@pytest.fixture
def server(tmp_path, tiny_model_dir):
    import imgfind
    from imgfind.server import create_app
    from tests.web import LiveServer

    lib = imgfind.open(tmp_path / "home", model_path=tiny_model_dir)
    live = LiveServer(create_app(lib))
    yield live.url
    live.stop()
    lib.close()


def test_the_server_serves_each_module_as_javascript(server):
    for module in MODULES:
        rel = module.relative_to(STATIC).as_posix()
        r = httpx.get(f"{server}/static/{rel}")
        assert r.status_code == 200, rel
        assert "javascript" in r.headers["content-type"]
        assert r.text == module.read_text()
