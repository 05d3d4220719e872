"""`ivr web`: serve the operator/admin web UI and the JSON API with uvicorn on
Settings.web_host:web_port (IVR_WEB_HOST / IVR_WEB_PORT)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ivr.config import Settings, load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("web", help="run the web UI (operators, admins, managers) and the JSON API")
    parser.add_argument("--host", help="bind address (default IVR_WEB_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default IVR_WEB_PORT, 8080)")
    parser.set_defaults(func=run)


def uvicorn_config(app: Any, settings: Settings, host: str | None = None, port: int | None = None) -> Any:
    """The uvicorn configuration `ivr web` uses; `ivr run` serves the same app in its own loop
    with `uvicorn.Server(uvicorn_config(...)).serve()`."""
    import uvicorn

    # log_config=None keeps our logging set-up (phone masking) instead of uvicorn's own
    return uvicorn.Config(app, host=host or settings.web_host, port=port or settings.web_port,
                          log_config=None, access_log=False, proxy_headers=False, server_header=False)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ivr.web.app import create_app
    from ivr.wiring import open_database

    settings = load_settings(args.env_file)
    db = open_database(settings)
    app = create_app(settings=settings, sessions=db.sessions)
    config = uvicorn_config(app, settings, args.host, args.port)
    from ivr.runtime import listen_socket  # a port in use is one clear line, not uvicorn's exit

    sock = listen_socket(config.host, config.port, "the web UI", "IVR_WEB_PORT")
    log.info("web UI on http://%s:%s/", config.host, config.port)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
