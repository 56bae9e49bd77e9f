"""--model_config_file is re-read every --model_config_file_poll_wait_seconds."""

from __future__ import annotations

from pathlib import Path

from tests.model_server.helpers import ModelServer, metric, wait_for
from tierserve import toy_models


def test_edited_config_file_adds_and_removes_a_model(served: ModelServer, served_config: Path,
                                                     tmp_path: Path) -> None:
    original = served_config.read_text()
    toy_models.write_model(tmp_path, "from_file", {3: 9.0})
    loads = metric(served, "tierserve_model_server_model_loads_total", 'outcome="ok"')
    entry = f'  config {{ name: "from_file" base_path: "{tmp_path / "from_file"}" }}\n}}\n'
    served_config.write_text(original.rstrip().removesuffix("}") + entry)
    try:
        wait_for(lambda: served.states("from_file") == {3: "AVAILABLE"}, what="model from file")
        assert served.predict("from_file", {"instances": [1.0]}).json() == {"predictions": [9.0]}
        # Only the new model loaded: the others, unchanged, were left alone.
        assert metric(served, "tierserve_model_server_model_loads_total",
                      'outcome="ok"') == loads + 1
    finally:
        served_config.write_text(original)
    wait_for(lambda: served.states("from_file") == {3: "END"}, what="model unloaded")
    assert served.predict("m1", {"instances": [1.0]}).json() == {"predictions": [2.0]}
