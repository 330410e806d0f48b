"""The ``lerna`` command.

Exit codes: 0 success; 1 the job failed (a round timed out, a server error); 2 bad usage or
configuration (typer's own code for usage errors); 3 the data set is not installed.
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from lerna.cli.serving import PARTS, ServerProcess, build_app, free_port, port_is_free
from lerna.sim import movielens

app = typer.Typer(
    help="Lerna: privacy-preserving on-device personalization trained by federated learning.",
    no_args_is_help=True,
)
console = Console()

DEFAULT_PORTS = {"all": 8000, "fl-api": 8000, "mpc": 8100, "recommender": 9090}


@app.command()
def serve(
    part: Annotated[str, typer.Argument(help=f"Which part to run: {', '.join(PARTS)}")] = "all",
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default: 8000; mpc 8100; recommender 9090)")
    ] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the FL-API (and, for ``all``, every part in one process on the embedded default)."""
    if part not in PARTS:
        raise typer.BadParameter(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
    chosen = port or DEFAULT_PORTS[part]
    if part == "recommender":
        from lerna.recommender.errors import UnsafeBindError
        from lerna.recommender.settings import RecommenderSettings, check_bind_allowed

        try:
            check_bind_allowed(RecommenderSettings(host=host, port=chosen))
        except UnsafeBindError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    try:
        asgi = build_app(part)
    except (RuntimeError, ValidationError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"Lerna {part} on http://{host}:{chosen} (docs at /docs)")
    options: dict[str, Any] = {
        "host": host,
        "port": chosen,
        "log_level": "info",
        "access_log": False,  # the FL-API writes its own JSON access log with request ids
    }
    if workers > 1:
        # Several processes need an import path; the app built above has already validated
        # the settings, applied migrations and created any generated secrets, so the workers
        # only read them.
        os.environ["LERNA_SERVE_PART"] = part
        uvicorn.run("lerna.cli.serving:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(asgi, **options)


@app.command()
def migrate() -> None:
    """Apply database migrations (the embedded default also does this at start)."""
    from lerna.server.db import make_engine
    from lerna.server.migrate import upgrade
    from lerna.server.settings import Settings

    settings = Settings()
    upgrade(make_engine(settings.db_url))
    console.print(f"database at head: {settings.db_url.split('@')[-1]}")


def _load_dataset() -> movielens.MovieLens:
    try:
        return movielens.load()
    except movielens.DatasetMissingError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from None


@app.command()
def demo(
    devices: Annotated[
        int | None, typer.Option(help="Devices (MovieLens users); default: all 943")
    ] = None,
    rounds: Annotated[int | None, typer.Option(help="Federated rounds")] = None,
    report: Annotated[Path, typer.Option(help="Where to write the JSON report")] = Path(
        "reports/demo.json"
    ),
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep serving after the run")
    ] = True,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    model: Annotated[str | None, typer.Option(help="Model type")] = None,
    dropout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of selected devices that vanish")
    ] = 0.0,
    privacy: Annotated[
        str, typer.Option(help="Aggregation: secagg+ (default), two-server, none")
    ] = "secagg+",
    noise_multiplier: Annotated[
        float, typer.Option(min=0.0, help="DP noise multiplier z (0: no differential privacy)")
    ] = 0.0,
    cohort: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Devices sampled per round (default: all; fcf needs every device each round)",
        ),
    ] = None,
) -> None:
    """Start the embedded stack, run a MovieLens-100K fleet through real federated rounds, report."""
    from lerna.cli import demo_job as demo_mod
    from lerna.server.settings import Settings

    data = _load_dataset()
    n = min(devices or len(data.user_ids()), len(data.user_ids()))
    if n < 1:
        raise typer.BadParameter("--devices must be at least 1")
    rounds = rounds or demo_mod.DEFAULT_ROUNDS
    settings = Settings()
    if not port_is_free(host, port):
        new = free_port(host)
        console.print(f"port {port} is busy; using {new}")
        port = new
    log = settings.data_dir / "demo-server.log"
    console.print(f"starting the embedded stack on http://{host}:{port} (log: {log})")
    try:
        started = time.monotonic()
        server = ServerProcess("all", host, port, log).start()
    except RuntimeError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    startup = time.monotonic() - started
    try:
        kind = model or demo_mod.DEFAULT_MODEL
        size = min(n, cohort) if cohort else n
        privacy_cfg = demo_mod.privacy_config(privacy, size, dropout, noise_multiplier)
        hyper = demo_mod.model_hyper(kind, n, size, noise_multiplier > 0)
        if noise_multiplier > 0:  # the DP form's clip norm and size (docs/privacy.md)
            from lerna.sim.private_evaluation import DP_CLIP, DP_HYPER

            privacy_cfg["clip_norm"] = DP_CLIP.get(kind, privacy_cfg["clip_norm"])
            hyper = {**DP_HYPER.get(kind, {}), **hyper}
        ids = demo_mod.provision(server.url, size, kind, data, privacy_cfg, hyper)
        storage = demo_mod.new_run_dir(settings.data_dir)
        result = demo_mod.run_fleet(
            server.url, ids["app"]["token"], n, rounds, storage, data, dropout, size
        )
        shutil.rmtree(storage, ignore_errors=True)
        result.timings["server_start"] = startup
        clock = time.monotonic()
        result.final["centralized"] = demo_mod.centralized(kind, n, data)
        result.timings["centralized"] = time.monotonic() - clock
        usage = resource.getrusage(resource.RUSAGE_SELF)
        extra = {
            **demo_mod.extras(data, n, rounds, kind),
            "cpu_seconds": {
                "fleet": round(usage.ru_utime + usage.ru_stime, 1),
                "server": server.cpu_seconds(),
            },
            "privacy": demo_mod.privacy_report(server.url, ids, result),
            "seconds": round(time.monotonic() - started, 1),
            "dashboard": server.url,
        }
        body = demo_mod.build_report(result, extra)
        demo_mod.write_report(report, body)
        demo_mod.print_report(console, body)
        console.print(f"report written to {report}")
    except Exception as exc:
        server.stop()
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from None
    if not serve:
        server.stop()
        return
    console.print(f"\nDashboard: {server.url}/  API docs: {server.url}/docs")
    console.print(f"Log in as {demo_mod.DEMO_EMAIL} / {demo_mod.DEMO_PASSWORD}  (Ctrl-C to stop)")
    try:
        while server.alive:
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.stop()


@app.command()
def simulate(
    server: Annotated[str, typer.Option(help="FL-API base URL")],
    app_token: Annotated[str, typer.Option(help="The app's token")],
    devices: Annotated[int, typer.Option(min=1)] = 100,
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    report: Annotated[Path, typer.Option()] = Path("reports/simulate.json"),
    dropout: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.0,
    storage: Annotated[
        Path | None, typer.Option(help="Where the devices keep their stores")
    ] = None,
) -> None:
    """Drive N real SDK clients (MovieLens users) over HTTP against a running server."""
    from lerna.cli import demo_job as demo_mod

    data = _load_dataset()
    where = storage or demo_mod.new_run_dir(Path(os.environ.get("LERNA_DATA_DIR", ".lerna")))
    try:
        result = demo_mod.run_fleet(
            server.rstrip("/"), app_token, devices, rounds, where, data, dropout
        )
    except Exception as exc:
        console.print(f"[red]simulation failed:[/red] {exc}")
        raise typer.Exit(1) from None
    body = demo_mod.build_report(result, {"server": server})
    demo_mod.write_report(report, body)
    demo_mod.print_report(console, body)
    console.print(f"report written to {report}")


@app.command("eval")
def eval_cmd(
    protocol: Annotated[
        str, typer.Option(help="temporal (per-device 80/20) or stratified (Microsoft Recommenders)")
    ] = "temporal",
    model: Annotated[str, typer.Option(help="Model type")] = "fcf",
    rounds: Annotated[int, typer.Option(min=1, help="Federated rounds")] = 3,
    devices: Annotated[int | None, typer.Option(min=1, help="Devices (default: all users)")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    report: Annotated[Path, typer.Option(help="Where to write the JSON figures")] = Path(
        "reports/eval.json"
    ),
    epsilon: Annotated[
        list[float] | None,
        typer.Option(
            min=0.01,
            help="Also train with DP-FedAvg at this epsilon (repeatable, e.g. 1 4 8: "
            "--epsilon 1 --epsilon 4 --epsilon 8); see lerna.sim.private_evaluation",
        ),
    ] = None,
) -> None:
    """Evaluate the model on MovieLens-100K in-process: federated, centralized and baselines."""
    import json

    from rich.table import Table

    from lerna.sim.evaluation import evaluate
    from lerna.sim.splits import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise typer.BadParameter(f"protocol must be one of {', '.join(PROTOCOLS)}")
    data = _load_dataset()
    with console.status(f"training and scoring ({protocol}, {model}, {rounds} rounds)"):
        figures = evaluate(protocol, model, rounds=rounds, devices=devices, seed=seed, data=data)
    if epsilon:
        from lerna.sim.evaluation import prepare
        from lerna.sim.private_evaluation import evaluate_private

        with console.status(f"DP-FedAvg at epsilon {', '.join(f'{e:g}' for e in epsilon)}"):
            private = evaluate_private(
                prepare(protocol, devices, seed, data), model, rounds, epsilon, seed=seed
            )
        figures.update({f"{name}, {model} DP form": row for name, row in private.items()})
    table = Table(title=f"MovieLens-100K, {protocol} protocol")
    columns = ("ndcg@10", "precision@10", "recall@10", "map@10", "seconds")
    table.add_column("model")
    for column in columns:
        table.add_column(column, justify="right")
    for name, row in figures.items():
        table.add_row(name, *(f"{row.get(c, 0.0):.4f}" for c in columns))
    console.print(table)
    body = {
        "dataset": movielens.NAME,
        "protocol": protocol,
        "model": model,
        "rounds": rounds,
        "final": figures,
    }
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(body, indent=2) + "\n")
    console.print(f"report written to {report}")


def main() -> None:
    app()
