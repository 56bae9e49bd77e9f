"""ModelServerConfig: parsing (text format, as tensorflow_model_server reads it) and checks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from base.errors import InvalidArgument

if TYPE_CHECKING:
    from tensorflow_serving.config.model_server_config_pb2 import ModelConfig, ModelServerConfig


def _pb() -> Any:
    # The protos import TensorFlow's protos (seconds): only when a config is built.
    from tensorflow_serving.config import model_server_config_pb2

    return model_server_config_pb2


def empty_config() -> ModelServerConfig:
    config = _pb().ModelServerConfig()
    config.model_config_list.SetInParent()
    return config


def from_flags(model_name: str | None, model_base_path: str | None) -> ModelServerConfig:
    """The one-model config `--model_name/--model_base_path` stand for (TF Serving's default)."""
    config = empty_config()
    if model_base_path:
        entry = config.model_config_list.config.add()
        entry.name = model_name or "default"
        entry.base_path = model_base_path
        entry.model_platform = "tensorflow"
    return config


def parse_text(text: str) -> ModelServerConfig:
    from google.protobuf import text_format

    config = _pb().ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise InvalidArgument(f"Invalid model config: {exc}") from exc
    if not config.HasField("model_config_list") and not config.HasField("custom_model_config"):
        config.model_config_list.SetInParent()
    return config


def read_file(path: str | Path) -> ModelServerConfig:
    return parse_text(Path(path).read_text())


def is_absolute(base_path: str) -> bool:
    """TF Serving accepts absolute local paths and URIs (s3://, gs://, ...)."""
    return "://" in base_path or base_path.startswith("/")


def validate(config: ModelServerConfig) -> list[ModelConfig]:
    """The model list of a config, or InvalidArgument as TF Serving's ValidateModelConfigList."""
    if config.WhichOneof("config") != "model_config_list":
        raise InvalidArgument(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. "
            "Only ModelConfigList is currently supported")
    seen: set[str] = set()
    models = list(config.model_config_list.config)
    for model in models:
        if not model.name:
            raise InvalidArgument("Model config has an empty name")
        if model.name in seen:
            raise InvalidArgument(
                f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if not model.base_path:
            raise InvalidArgument(f"Model {model.name} has an empty base_path")
        if not is_absolute(model.base_path):
            raise InvalidArgument(
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}")
        if model.model_platform not in ("", "tensorflow"):
            raise InvalidArgument(
                f"Model {model.name} has unsupported platform {model.model_platform!r}")
        policy = model.model_version_policy
        if policy.WhichOneof("policy_choice") == "latest" and policy.latest.num_versions < 0:
            raise InvalidArgument(f"Model {model.name}: num_versions must be positive")
        for label, version in model.version_labels.items():
            if version <= 0:
                raise InvalidArgument(f"Model {model.name}: label {label} has version {version}")
    return models


def same_model(a: ModelConfig, b: ModelConfig) -> bool:
    """Equal configs mean the model is left as it is by a reload (not reloaded)."""
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def same_source(a: ModelConfig, b: ModelConfig) -> bool:
    """Same base path: loaded versions can be kept while the policy or labels change."""
    return a.base_path.rstrip("/") == b.base_path.rstrip("/")
