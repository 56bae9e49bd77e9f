"""TF Serving's protos without importing TensorFlow.

The `tensorflow_serving.apis` modules import a few of TensorFlow's own protos
(`tensorflow.core.protobuf.error_codes_pb2`, ...), and importing any of them
runs `tensorflow/__init__.py`: seconds and ~600 MB for a process that never
runs a model. The pool loads only those plain `_pb2` files: it puts a bare
package object for `tensorflow` in `sys.modules` while they import, then takes
it out again, so a later `import tensorflow` in the same process still works.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _import_light() -> None:
    if "tensorflow" in sys.modules:  # TensorFlow is here already: nothing to save
        return
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return
    stub = types.ModuleType("tensorflow")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = stub
    try:
        import tensorflow_serving.apis.get_model_status_pb2
        import tensorflow_serving.apis.model_management_pb2  # noqa: F401
    finally:
        # Drop the stub packages; the generated `_pb2` modules stay registered.
        for name in [n for n in sys.modules
                     if n == "tensorflow" or (n.startswith("tensorflow.") and
                                              not n.endswith("_pb2"))]:
            del sys.modules[name]


_import_light()

from tensorflow_serving.apis import (  # noqa: E402
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
)
from tensorflow_serving.config import (  # noqa: E402
    file_system_storage_path_source_pb2,
    model_server_config_pb2,
)

__all__ = ["file_system_storage_path_source_pb2", "get_model_status_pb2",
           "model_management_pb2", "model_server_config_pb2", "model_service_pb2_grpc"]
