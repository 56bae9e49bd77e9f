"""`tierserve model-server`: tensorflow_model_server's flags, our TF-Serving-compatible server."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from pools.model_server import tf_flags

log = logging.getLogger("tierserve.model_server")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    add("--rest_api_port", type=int, default=0, help="REST port (0: no REST API, as TF Serving)")
    add("--host", default="127.0.0.1",
        help="address both APIs listen on (0.0.0.0 inside a container)")
    add("--grpc_host", default=None, help="gRPC address (default: --host)")
    add("--rest_api_host", default=None, help="REST address (default: --host)")
    add("--model_name", default="default", help="name of the model of --model_base_path")
    add("--model_base_path", default="",
        help="folder of the model's numbered versions: a local path or s3://bucket/prefix")
    add("--model_config_file", default="",
        help="text-format ModelServerConfig; with neither this nor --model_base_path the "
             "server starts with no models (load them with HandleReloadConfigRequest)")
    add("--model_config_file_poll_wait_seconds", type=float, default=0.0,
        help="re-read --model_config_file this often (0: never)")
    add("--file_system_poll_wait_seconds", type=float, default=1.0,
        help="look for new and removed versions this often (0: only at start)")
    add("--num_load_threads", type=int, default=4,
        help="models of one reload loaded in parallel")
    add("--rest_api_num_threads", type=int, default=8, help="REST inference threads")
    add("--grpc_max_threads", type=int, default=16, help="gRPC worker threads")
    add("--tensorflow_intra_op_parallelism", type=int, default=0,
        help="threads inside one TF op (0: one per CPU this server may use: its affinity, "
             "capped by its cgroup's CPU quota)")
    add("--tensorflow_inter_op_parallelism", type=int, default=0,
        help="TF ops run at once (0: as many as intra-op threads, at least 2)")
    add("--release_memory_interval_seconds", type=float, default=10.0,
        help="after unloads, collect garbage and trim the heap at most this often, in the "
             "background (a full collection pauses Python; -1: leave it to Python)")
    add("--gil_switch_interval_ms", type=float, default=0.0,
        help="how long a Python thread may hold the GIL while another waits (0: Python's "
             "5 ms). A server that loads while it serves: a load's Python holds the GIL, and "
             "a prediction waits up to this long at each of its thread hand-offs")
    add("--model_cache_dir", default="",
        help="where s3:// versions are downloaded (default: a temporary folder)")
    add("--shutdown_grace_seconds", type=float, default=20.0,
        help="on SIGTERM, how long in-flight requests may take to finish")
    add("--monitoring_config_file", default="",
        help="TF Serving's MonitoringConfig (text): prometheus_config { enable: true path: "
             "\"/metrics\" } serves the metrics on that path too")
    tf_flags.add_bool(parser, "allow_version_labels_for_unavailable_models",
                      "let a config give a new label to a version not loaded yet")
    tf_flags.add_bool(parser, "enable_serialization_as_tensor_content",
                      "gRPC Predict answers in tensor_content instead of the typed fields")
    tf_flags.add_bool(parser, "version", "print the versions and exit")
    tf_flags.add_unsupported(parser)


def _initial_config(args: argparse.Namespace) -> Any:
    from pools.model_server import config

    if args.model_config_file:
        return config.read_file(args.model_config_file)
    base_path = args.model_base_path
    if base_path and not config.is_absolute(base_path):
        # TF Serving insists on absolute paths; on the command line we resolve them instead.
        base_path = str(Path(base_path).resolve())
    return config.from_flags(args.model_name, base_path)


def run(args: argparse.Namespace) -> int:
    if args.version:
        print(_versions())
        return 0
    _exit_now(_run(args))
    return 0  # unreachable


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from base.version import __version__

    try:
        tensorflow = version("tensorflow")
    except PackageNotFoundError:
        tensorflow = "unknown"
    return f"TensorFlow ModelServer: tierserve {__version__}\nTensorFlow Library: {tensorflow}"


def _check_flags(args: argparse.Namespace) -> Any:
    """The monitoring settings, or None (logged) when the server must not start."""
    from base.errors import InvalidArgument
    from pools.model_server import monitoring

    refused = tf_flags.refused(args)
    if refused:
        log.error("%s: transport security is not supported by this server; refusing to "
                  "serve without it (terminate TLS in front of it instead)", ", ".join(refused))
        return None
    ignored = tf_flags.ignored(args)
    if ignored:
        log.warning("%s", tf_flags.warning(ignored))
    if not args.monitoring_config_file:
        return monitoring.Monitoring()
    try:
        settings = monitoring.read_file(args.monitoring_config_file)
    except InvalidArgument as exc:
        log.error("%s", exc.message)
        return None
    if settings.enabled and not args.rest_api_port:
        log.warning("the monitoring config enables Prometheus, but there is no REST API to "
                    "serve it on (--rest_api_port)")
    return settings


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    settings = _check_flags(args)  # before TensorFlow's import: a refusal costs nothing
    if settings is None:
        return 1

    from base.errors import FailedPrecondition, InvalidArgument, TierserveError
    from pools.model_server.grpc_service import make_server
    from pools.model_server.manager import ModelManager
    from pools.model_server.metrics import Metrics
    from pools.model_server.servable import Servable

    _set_tf_threads(args)
    set_gil_switch_interval(args.gil_switch_interval_ms)
    from pools.model_server.memory import freeze_long_lived

    log.info("%d objects of the start frozen out of garbage collection", freeze_long_lived())
    own_cache = not args.model_cache_dir
    cache_root = Path(args.model_cache_dir or tempfile.mkdtemp(prefix="tierserve-ms-cache-"))
    metrics = Metrics()
    manager = ModelManager(Servable, cache_root, args.num_load_threads, metrics.observe_load,
                           args.release_memory_interval_seconds,
                           args.allow_version_labels_for_unavailable_models)
    try:
        try:
            manager.reload(_initial_config(args))
        except (InvalidArgument, FailedPrecondition) as exc:
            # As TF Serving: a bad list, or labels on versions not loaded yet, stop the start.
            log.error("bad model config: %s", exc.message)
            return 1
        except TierserveError as exc:
            # Unlike TF Serving we keep going: the failed models report END with their error.
            log.error("%s", exc.message)
        if stopping.is_set():
            return 0
        grpc_host = args.grpc_host or args.host
        grpc_server, grpc_port = make_server(manager, metrics, grpc_host, args.port,
                                             args.grpc_max_threads,
                                             args.enable_serialization_as_tensor_content)
        log.info("gRPC API on %s:%d", grpc_host, grpc_port)
        manager.start_polling(args.file_system_poll_wait_seconds, args.model_config_file or None,
                              args.model_config_file_poll_wait_seconds)
        if args.rest_api_port:
            _serve_rest(args, manager, metrics, grpc_server, stopping, settings)
        else:
            stopping.wait()
        log.info("shutting down: finishing in-flight requests")
        grpc_server.stop(args.shutdown_grace_seconds).wait()
        return 0
    finally:
        manager.close()
        if own_cache:
            shutil.rmtree(cache_root, ignore_errors=True)


def set_gil_switch_interval(ms: float) -> None:
    """`--gil_switch_interval_ms`; 0 or less keeps Python's."""
    if ms > 0:
        sys.setswitchinterval(ms / 1000)


def _set_tf_threads(args: argparse.Namespace) -> None:
    """Before TensorFlow's runtime starts (no op has run yet): sized to the CPUs we get, not
    to the machine's cores, which several servers on one box would oversubscribe."""
    import tensorflow as tf

    from pools.model_server.threads import available_cpus, pool_sizes

    cpus = available_cpus()
    auto_intra, auto_inter = pool_sizes(cpus)
    threading_ = tf.config.threading
    threading_.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism or auto_intra)
    threading_.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism or auto_inter)
    # Read back from TensorFlow: what it will use, as tests and operators check it.
    log.info("TensorFlow thread pools: intra_op=%d inter_op=%d (%g CPUs available)",
             threading_.get_intra_op_parallelism_threads(),
             threading_.get_inter_op_parallelism_threads(), cpus)


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown, which takes TensorFlow seconds; the
    servers are stopped and nothing is left to flush but the logs."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _serve_rest(args: argparse.Namespace, manager: Any, metrics: Any, grpc_server: Any,
                stopping: threading.Event, settings: Any) -> None:
    import uvicorn

    from pools.model_server.rest import METRICS_PATH, RestApi

    api = RestApi(manager, metrics, args.rest_api_num_threads,
                  settings.path if settings.enabled else METRICS_PATH)
    host = args.rest_api_host or args.host

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # gRPC stops taking new calls at the same moment REST does.
            grpc_server.stop(args.shutdown_grace_seconds)
            stopping.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(api.app(), host=host, port=args.rest_api_port, log_level="warning",
                            timeout_graceful_shutdown=int(args.shutdown_grace_seconds) or None,
                            lifespan="off", loop="asyncio")
    server = Server(config)
    log.info("REST API on %s:%d", host, args.rest_api_port)
    # uvicorn re-raises the signal it caught after shutting down; our own handler (set
    # in run) takes it then, so the process exits 0.
    server.run()
    api.executor.shutdown(wait=True)
