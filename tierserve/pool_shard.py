"""`tierserve pool`: the cold pool, and with `--shard-name` one shard of a sharded cold tier.

The pool itself knows nothing of the db (pools/ never imports it); this wrapper keeps the
shard's row in `cold_shards` alive for it: a thread probes the pool's own /healthz every
`--heartbeat-interval` and writes the answer with a fresh heartbeat. Routers route among
the rows that are healthy and recent. A clean stop (SIGTERM, Ctrl-C) marks the row
unhealthy at once; a crash simply stops the heartbeats, and routers skip the shard once
its row is stale. Either way its models go to the next shard in their ranking.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

import httpx
from pydantic import ValidationError

from base.errors import TierserveError
from base.names import is_valid_model_name
from pools.cold import cli as pool_cli

log = logging.getLogger("tierserve.shard")
HEARTBEAT_S = 2.0
PROBE_TIMEOUT_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pool_cli.add_arguments(parser)
    group = parser.add_argument_group(
        "sharded cold tier", "with --shard-name, this pool registers in the db as one shard "
                             "and routers send it the models it owns (rendezvous hashing)")
    group.add_argument("--shard-name", help="this shard's stable name, e.g. cold-0: its models "
                                            "follow the name, not the address; env "
                                            "TIERSERVE_POOL_SHARD_NAME (default none: an "
                                            "unsharded pool)")
    group.add_argument("--shard-url", help="the base URL routers reach this pool at (default: "
                                           "http://HOST:PORT of this pool; env "
                                           "TIERSERVE_POOL_SHARD_URL)")
    group.add_argument("--shard-grpc", help="the host:port routers reach this pool's gRPC front "
                                            "at (default: HOST:GRPC_PORT of this pool; with "
                                            "--grpc-port 0, pass it; env "
                                            "TIERSERVE_POOL_SHARD_GRPC)")
    group.add_argument("--db-url", help="SQLAlchemy URL of the routers' db (required with "
                                        "--shard-name; env TIERSERVE_DB_URL)")
    group.add_argument("--heartbeat-interval", type=float, default=HEARTBEAT_S,
                       help="seconds between heartbeats (routers skip a shard after "
                            "their --shard-stale-after, 6 s by default)")


class Heartbeat:
    """Probe the pool, write its row, every `interval` seconds, in a daemon thread."""

    def __init__(self, db_url: str, name: str, url: str, probe_url: str,
                 interval: float, grpc: str | None = None) -> None:
        from db import queries

        self.queries = queries
        self.engine = queries.make_engine(db_url)
        self.name, self.url, self.probe_url, self.interval = name, url, probe_url, interval
        self.grpc = grpc
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shard-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _healthy(self, client: httpx.Client) -> bool:
        try:
            return client.get(self.probe_url).status_code == 200
        except httpx.HTTPError:
            return False  # not listening yet (its model servers start first), or hung

    def beat(self, client: httpx.Client) -> bool:
        healthy = self._healthy(client)
        try:
            self.queries.heartbeat_shard(self.engine, self.name, self.url, grpc=self.grpc,
                                         healthy=healthy)
        except TierserveError as exc:  # the db is away: routers will see the row go stale
            log.warning("shard %s: heartbeat not written: %s", self.name, exc)
        return healthy

    def _run(self) -> None:
        was: bool | None = None
        with httpx.Client(timeout=PROBE_TIMEOUT_S, trust_env=False) as client:
            while True:
                healthy = self.beat(client)
                if healthy != was:
                    log.info("shard %s at %s: %s", self.name, self.url,
                             "serving" if healthy else "not answering yet")
                    was = healthy
                if self._stop.wait(self.interval):
                    return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=PROBE_TIMEOUT_S + 5)
        try:
            self.queries.leave_shard(self.engine, self.name)
        except TierserveError as exc:
            log.warning("shard %s: could not mark it stopped: %s", self.name, exc)
        self.engine.dispose()


def _from_env(args: argparse.Namespace) -> None:
    # Services configured by environment (Swarm, Kubernetes) set these instead of flags.
    for dest, key in (("shard_name", "TIERSERVE_POOL_SHARD_NAME"),
                      ("shard_url", "TIERSERVE_POOL_SHARD_URL"),
                      ("shard_grpc", "TIERSERVE_POOL_SHARD_GRPC"),
                      ("db_url", "TIERSERVE_DB_URL")):
        if not getattr(args, dest) and os.environ.get(key):
            setattr(args, dest, os.environ[key])


def run(args: argparse.Namespace) -> int:
    _from_env(args)
    if not args.shard_name:
        return pool_cli.run(args)
    if not args.db_url:
        print("tierserve pool: --shard-name needs --db-url (the routers' db)", file=sys.stderr)
        return 2
    if not is_valid_model_name(args.shard_name):
        print(f"tierserve pool: invalid --shard-name {args.shard_name!r} (letters, digits, "
              "'.', '_', '-')", file=sys.stderr)
        return 2
    try:
        config = pool_cli.config_from_args(args)
    except ValidationError as exc:
        print(pool_cli.settings_error(exc), file=sys.stderr)
        return 2
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    local = f"http://{host}:{config.port}"
    grpc = args.shard_grpc or (f"{host}:{config.grpc_port}" if config.grpc_port else None)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        beat = Heartbeat(args.db_url, args.shard_name, args.shard_url or local,
                         f"{local}/healthz", args.heartbeat_interval, grpc)
    except TierserveError as exc:
        print(f"tierserve pool: shard {args.shard_name}: {exc}", file=sys.stderr)
        return 2
    # uvicorn stops gracefully on SIGTERM, then raises the signal again once done; with the
    # default handler the process would die there, before the row is marked stopped.
    signal.signal(signal.SIGTERM, _exit_on_term)
    beat.start()
    try:
        return pool_cli.run(args)
    finally:
        beat.stop()


def _exit_on_term(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
