"""The app factory includes the device-protocol routers first (fewer routes tried per device
request). That is only safe while no two routes can match one request: checked here over the
whole OpenAPI surface, so a new overlapping route fails this test instead of changing which
handler answers."""

from __future__ import annotations

import re
from pathlib import Path

from lerna.server.app import create_app
from lerna.server.settings import Settings


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")


def test_no_two_routes_match_one_request(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    paths = app.openapi()["paths"]
    routes = [(method, template) for template, ops in paths.items() for method in ops]
    assert ("post", "/v1/device/rounds/{round_id}/secagg/{kind}") in routes
    clashes = []
    for method, template in routes:
        concrete = re.sub(r"\{[^}]+\}", "7", template)
        matching = [other for m, other in routes if m == method and _pattern(other).match(concrete)]
        if matching != [template]:
            clashes.append((method, template, matching))
    assert clashes == []
