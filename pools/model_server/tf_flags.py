"""tensorflow_model_server's flags that this server takes but does not act on (pure).

A deployment's command line for TF Serving must start this server unchanged, so every
flag of TF Serving's main.cc is accepted. Those that would change nothing here (a
boolean set to false) pass quietly; the others are named in one warning at start.
Flags that ask for transport security are refused instead: serving plaintext while
the operator asked for TLS must not be a warning in a log.
"""

from __future__ import annotations

import argparse

# Flags of TF Serving's main.cc that this server takes and ignores.
UNSUPPORTED: tuple[str, ...] = (
    "grpc_socket_path", "rest_api_timeout_in_ms", "rest_api_enable_cors_support",
    "enable_batching", "batching_parameters_file", "enable_per_model_batching_parameters",
    "num_unload_threads", "max_num_load_retries", "load_retry_interval_micros",
    "flush_filesystem_caches", "tensorflow_session_parallelism",
    "tensorflow_session_config_file", "platform_config_file",
    "per_process_gpu_memory_fraction", "saved_model_tags", "grpc_channel_arguments",
    "enable_model_warmup", "num_request_iterations_for_warmup",
    "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model", "num_tflite_pools",
    "num_tflite_interpreters_per_pool", "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled", "xla_gpu_compilation_enabled", "enable_profiler",
    "thread_pool_factory_config_file", "mixed_precision", "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
)
# Taken only to refuse them with a clear message.
SECURITY: tuple[str, ...] = ("ssl_config_file", "use_alts_credentials")

_FALSE = ("false", "0", "no")
_TRUE = ("true", "1", "yes")


def tf_bool(value: str) -> bool:
    """A TF Serving boolean flag's value: `--flag`, `--flag=true`, `--flag=false`."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_bool(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    parser.add_argument(f"--{flag}", type=tf_bool, nargs="?", const=True, default=False,
                        help=help_text)


def add_unsupported(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "accepted as tensorflow_model_server does, not acted on (a warning names them)")
    for flag in (*UNSUPPORTED, *SECURITY):
        group.add_argument(f"--{flag}", nargs="?", const="true", default=None,
                           help=argparse.SUPPRESS)


def _asks_for_something(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in (*_FALSE, "")


def ignored(args: argparse.Namespace) -> list[str]:
    """The unsupported flags given with a value that would change TF Serving's behaviour."""
    return [f"--{flag}" for flag in UNSUPPORTED if _asks_for_something(getattr(args, flag))]


def refused(args: argparse.Namespace) -> list[str]:
    return [f"--{flag}" for flag in SECURITY if _asks_for_something(getattr(args, flag))]


def warning(flags: list[str]) -> str:
    return ("TF Serving flags not supported by this server, ignored: " + ", ".join(flags))
