"""`--monitoring_config_file`: TF Serving's MonitoringConfig, in its text format.

    prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }

tensorflow-serving-api does not ship monitoring_config_pb2, so the two messages are
declared here from TF Serving's monitoring_config.proto (same package, names and
field numbers) and parsed with protobuf's own text format parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from base.errors import InvalidArgument

DEFAULT_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath


@dataclass(frozen=True)
class Monitoring:
    enabled: bool = False
    path: str = DEFAULT_PATH


@cache
def _message_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tierserve/monitoring_config.proto", package="tensorflow.serving", syntax="proto3")
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL,
                         label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING,
                         label=field.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=field.TYPE_MESSAGE,
                         type_name=".tensorflow.serving.PrometheusConfig",
                         label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()  # our own: never clashes with a real registration
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def parse_text(text: str) -> Monitoring:
    from google.protobuf import text_format

    message = _message_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise InvalidArgument(f"Invalid monitoring config: {exc}") from exc
    prometheus = message.prometheus_config
    path = prometheus.path or DEFAULT_PATH
    if not path.startswith("/"):
        raise InvalidArgument(f"Invalid monitoring config: path {path!r} must start with /")
    return Monitoring(enabled=prometheus.enable, path=path)


def read_file(path: str | Path) -> Monitoring:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidArgument(f"Cannot read the monitoring config file: {exc.strerror}") from exc
    return parse_text(text)
