"""The model server's command line, built in one place.

The flags are `tensorflow_model_server`'s, so one command line starts the official
`tensorflow/serving` image and our `tierserve model-server` alike. Always `--flag=value`
(one argv item per flag): the process runtime recognizes its own servers by the exact item
`--model_name=<model>` in /proc/<pid>/cmdline.
"""

from __future__ import annotations

from collections.abc import Sequence


def model_server_args(*, port: int, rest_api_port: int, model_name: str | None = None,
                      model_base_path: str | None = None, host: str | None = None,
                      intra_op_threads: int | None = None, inter_op_threads: int | None = None,
                      extra: Sequence[str] = ()) -> list[str]:
    """The flags after the program: gRPC `port`, `rest_api_port`, the one model to serve
    (none: the server starts empty), the TF thread pools (None: the server's default), then
    `extra` as given (a later flag wins in argparse and in TF Serving alike)."""
    args = [f"--port={port}", f"--rest_api_port={rest_api_port}"]
    if model_name is not None:
        args.append(f"--model_name={model_name}")
    if model_base_path is not None:
        args.append(f"--model_base_path={model_base_path}")
    if host is not None:
        args.append(f"--host={host}")
    if intra_op_threads is not None:
        args.append(f"--tensorflow_intra_op_parallelism={intra_op_threads}")
    if inter_op_threads is not None:
        args.append(f"--tensorflow_inter_op_parallelism={inter_op_threads}")
    return [*args, *extra]

