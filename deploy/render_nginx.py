"""Render deploy/nginx/lerna.conf.template for a host (standard library only).

    python deploy/render_nginx.py --fl-api 127.0.0.1:8001 --fl-api 127.0.0.1:8002 \\
        --cert /etc/ssl/lerna/fullchain.pem --key /etc/ssl/lerna/privkey.pem \\
        --server-name lerna.example.com --cors-origin https://dashboard.example.com \\
        > /etc/nginx/conf.d/lerna.conf

``--standalone DIR`` writes a complete nginx.conf whose pid, logs and temp files live in DIR,
for running nginx without touching /etc (tests, benchmarks): ``nginx -c DIR/nginx.conf``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

TEMPLATE = Path(__file__).parent / "nginx" / "lerna.conf.template"


def render_site(
    *,
    fl_api: list[str],
    mpc: str,
    recommender: str,
    cert: str,
    key: str,
    server_name: str = "_",
    https_listen: str = "443",
    http_listen: str = "80",
    cors_origins: list[str] | None = None,
    max_upload: str = "33m",
) -> str:
    if not fl_api:
        raise ValueError("at least one --fl-api address is needed")
    values = {
        "FL_API_SERVERS": "\n".join(
            f"    server {addr} max_fails=1 fail_timeout=5s;" for addr in fl_api
        ),
        "MPC": mpc,
        "RECOMMENDER": recommender,
        "CORS_ORIGINS": "\n".join(f"    {json.dumps(o)} $http_origin;" for o in cors_origins or []),
        "SERVER_NAME": server_name,
        "HTTPS_LISTEN": https_listen,
        "HTTP_LISTEN": http_listen,
        "TLS_CERT": cert,
        "TLS_KEY": key,
        "MAX_UPLOAD": max_upload,
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    if "@@" in text:
        raise ValueError("template has a placeholder this script does not fill")
    return text


def render_standalone(site: str, prefix: Path, workers: int = 1) -> str:
    """A whole nginx.conf that keeps every file under ``prefix`` (no root paths)."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes {workers};\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 8192; }\n"
        "http {\n"
        f"    access_log {prefix / 'access.log'};\n{temps}\n"
        "    default_type application/octet-stream;\n"
        f"{site}\n}}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fl-api", action="append", default=[], help="host:port, repeatable")
    parser.add_argument("--mpc", default="127.0.0.1:8100")
    parser.add_argument("--recommender", default="127.0.0.1:9090")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--server-name", default="_")
    parser.add_argument("--https-listen", default="443")
    parser.add_argument("--http-listen", default="80")
    parser.add_argument("--cors-origin", action="append", default=[])
    parser.add_argument("--max-upload", default="33m")
    parser.add_argument("--standalone", type=Path, help="write DIR/nginx.conf, a complete config")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    site = render_site(
        fl_api=args.fl_api or ["127.0.0.1:8000"],
        mpc=args.mpc,
        recommender=args.recommender,
        cert=args.cert,
        key=args.key,
        server_name=args.server_name,
        https_listen=args.https_listen,
        http_listen=args.http_listen,
        cors_origins=args.cors_origin,
        max_upload=args.max_upload,
    )
    if args.standalone:
        args.standalone.mkdir(parents=True, exist_ok=True)
        conf = args.standalone / "nginx.conf"
        conf.write_text(render_standalone(site, args.standalone.resolve(), args.workers))
        print(conf)
    else:
        print(site)


if __name__ == "__main__":
    main()
