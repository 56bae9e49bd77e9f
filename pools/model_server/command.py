"""The model server's command line, built in one place.

The flags are `tensorflow_model_server`'s, so one command line starts the official
`tensorflow/serving` image and our `tierserve model-server` alike. Always `--flag=value`
(one argv item per flag): the process runtime recognizes its own servers by the exact item
`--model_name=<model>` in /proc/<pid>/cmdline; a model with version labels is served from a
`--model_config_file` (`model_config_text`), which both servers read instead of
`--model_name`/`--model_base_path` (kept on the line all the same, for that recognition).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence


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



def labelled_versions(labels: Mapping[str, int], in_store: Sequence[int]
                      ) -> tuple[list[int], dict[str, int]]:
    """What a hot server of a labelled model keeps loaded, and the labels it can serve: every
    labelled version the store holds plus the latest (TF Serving's `specific` policy). A
    label naming a version the store lacks is left out: TF Serving waits for ever for a
    version it is told to load, and refuses a label on a version it does not serve."""
    present = set(in_store)
    kept = {label: v for label, v in sorted(labels.items()) if v in present}
    versions = set(kept.values()) | ({max(present)} if present else set())
    return sorted(versions), kept


def model_config_text(name: str, base_path: str, versions: Sequence[int],
                      labels: Mapping[str, int]) -> str:
    """A text-format ModelServerConfig (`--model_config_file`) serving `versions` of one model
    with its `version_labels`, as tensorflow_model_server and our server read it."""
    # JSON's string escapes are a subset of the text format's.
    lines = ["model_config_list {", "  config {", f"    name: {json.dumps(name)}",
             f"    base_path: {json.dumps(base_path)}", '    model_platform: "tensorflow"']
    if versions:
        listed = " ".join(f"versions: {v}" for v in versions)
        lines.append(f"    model_version_policy {{ specific {{ {listed} }} }}")
    for label, version in sorted(labels.items()):
        lines.append(f"    version_labels {{ key: {json.dumps(label)} value: {version} }}")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def config_file_args(config_path: str, poll_s: float | None = None) -> list[str]:
    """The flags that serve a `model_config_text` file. Labels are allowed on versions still
    loading at start (our server checks them before its first load; TF Serving after)."""
    args = [f"--model_config_file={config_path}",
            "--allow_version_labels_for_unavailable_models=true"]
    if poll_s:
        args.append(f"--model_config_file_poll_wait_seconds={poll_s:g}")
    return args
