"""TF Serving's REST API through httpx against a real server process."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from tests.model_server.helpers import ModelServer, metric
from tierserve import toy_models

OK = {"error_code": "OK", "error_message": ""}
# TF Serving's own answer for its half_plus_two (tensorflow_serving/servables/tensorflow/testdata).
TF_SERVING_METADATA = Path(__file__).with_name("half_plus_two_model_metadata.json")


def test_status_of_a_model_and_of_one_version(served: ModelServer) -> None:
    assert served.status("m2").json() == {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": OK}]}
    m3 = served.status("m3").json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in m3] == [("2", "AVAILABLE"), ("1", "AVAILABLE")]
    one = httpx.get(f"{served.rest}/v1/models/m3/versions/1").json()
    assert one["model_version_status"][0]["version"] == "1"
    by_label = httpx.get(f"{served.rest}/v1/models/m3/labels/canary").json()
    assert by_label["model_version_status"][0]["version"] == "2"


def test_predict_row_form_answers_a_plain_list(served: ModelServer) -> None:
    response = served.predict("m2", {"instances": [1.0, 2.0, 5.0]})
    assert response.status_code == 200
    assert response.json() == {"predictions": toy_models.expected(4.0, 1.0, [1, 2, 5])}


def test_predict_columnar_form_answers_outputs(served: ModelServer) -> None:
    response = served.predict("m1", {"inputs": {"x": [0.5, -3.0]}})
    assert response.json() == {"outputs": toy_models.expected(2.0, 0.0, [0.5, -3.0])}
    bare = served.predict("m1", {"inputs": [1.5]})
    assert bare.json() == {"outputs": [3.0]}


def test_predict_by_version_and_by_label(served: ModelServer) -> None:
    v1 = served.predict("m3", {"instances": [1.0]}, "/versions/1")
    assert v1.json() == {"predictions": [5.0]}
    # m2 serves its latest version only (the default policy).
    assert served.predict("m2", {"instances": [1.0]}, "/versions/1").status_code == 404
    stable = served.predict("m3", {"instances": [1.0]}, "/labels/stable")
    canary = served.predict("m3", {"instances": [1.0]}, "/labels/canary")
    assert (stable.json(), canary.json()) == ({"predictions": [5.0]}, {"predictions": [6.0]})


def test_b64_values_through_the_bytes_length_signature(served: ModelServer) -> None:
    data = bytes(range(256))
    body = {"signature_name": "bytes_length",
            "instances": [{"b64": base64.b64encode(data).decode()}, "abc"]}
    response = served.predict("m1", body)
    assert response.json() == {"predictions": [256, 3]}
    columnar = served.predict("m1", {"signature_name": "bytes_length",
                                     "inputs": {"data_bytes": [{"b64": "AAE="}]}})
    assert columnar.json() == {"outputs": [2]}


def test_tf_servings_own_half_plus_two(served: ModelServer) -> None:
    response = served.predict("half_plus_two", {"instances": [1.0, 2.0, 5.0]})
    assert response.json() == {"predictions": [2.5, 3.0, 4.5]}
    assert served.states("half_plus_two") == {123: "AVAILABLE"}


def test_two_version_model_serves_its_latest_version(served: ModelServer) -> None:
    assert served.states("half_plus_two_2_versions") == {124: "AVAILABLE"}
    latest = served.predict("half_plus_two_2_versions", {"instances": [[1.0], [4.0]]},
                            "/versions/124")
    assert latest.json() == {"predictions": [[2.5], [4.0]]}
    assert served.predict("half_plus_two_2_versions", {"instances": [[1.0]]},
                          "/versions/123").status_code == 404
    sigs = httpx.get(f"{served.rest}/v1/models/half_plus_two_2_versions/metadata").json()
    assert set(sigs["metadata"]["signature_def"]["signature_def"]) == {
        "serving_default", "classify_x_to_y", "regress_x_to_y", "regress_x_to_y2",
        "regress_x2_to_y3", "classify_x2_to_y3"}


def test_metadata_matches_tf_servings_shape(served: ModelServer) -> None:
    got = httpx.get(f"{served.rest}/v1/models/half_plus_two/metadata").json()
    expected = json.loads(TF_SERVING_METADATA.read_text())
    expected["model_spec"]["name"] = "half_plus_two"
    assert got == expected
    toy = httpx.get(f"{served.rest}/v1/models/m3/versions/1/metadata").json()
    assert toy["model_spec"]["version"] == "1"
    sigs = toy["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {"serving_default", "bytes_length"}
    assert sigs["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"


@pytest.mark.parametrize("path, body, status, words", [
    ("/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found"),
    ("/v1/models/m1/versions/7:predict", {"instances": [1]}, 404, "Specific(m1, 7)"),
    ("/v1/models/m3/labels/nope:predict", {"instances": [1]}, 400, "label"),
    ("/v1/models/m1:predict", {"instances": [1], "signature_name": "nope"}, 400, "nope"),
    ("/v1/models/m1:predict", {"inputs": {"wrong": [1]}}, 400, "wrong"),
    ("/v1/models/m1:predict", {"instances": ["text"]}, 400, "expected type"),
    ("/v1/models/m1:predict", {"instances": [[1, 2], [3]]}, 400, "shape"),
    ("/v1/models/m1:predict", {"nothing": 1}, 400, "instances"),
    ("/v1/models/m1:regress", {"examples": []}, 400, "examples"),
    ("/v1/models/m1:regress", {"examples": [{"x": 1.0}]}, 400, "method_name"),
    ("/v1/models/m1:explain", {"instances": [1]}, 400, "Malformed"),
])
def test_errors_have_tf_servings_body_and_code(served: ModelServer, path: str, body: dict,
                                               status: int, words: str) -> None:
    response = httpx.post(f"{served.rest}{path}", json=body, timeout=30)
    assert response.status_code == status
    assert set(response.json()) == {"error"} and words in response.json()["error"]


def test_bad_json_unknown_model_status_and_bad_urls(served: ModelServer) -> None:
    bad = httpx.post(f"{served.rest}/v1/models/m1:predict", content=b"{not json")
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    missing = served.status("nope")
    assert missing.status_code == 404 and missing.json()["error"]
    assert httpx.get(f"{served.rest}/v1/models/m1/versions/9").status_code == 404
    assert httpx.get(f"{served.rest}/v1/models/m1/versions/x").status_code == 400


def test_listing_without_a_name_is_tf_servings_400(served: ModelServer) -> None:
    # TF Serving answers these itself; no redirect to /v1/models/.
    listing = httpx.get(f"{served.rest}/v1/models", timeout=10)
    assert (listing.status_code, listing.json()) == (
        400, {"error": "Missing model name in request."})
    slash = httpx.get(f"{served.rest}/v1/models/", timeout=10)
    assert (slash.status_code, slash.json()) == (
        400, {"error": "Malformed request: GET /v1/models/"})
    assert httpx.post(f"{served.rest}/v1/models", json={}, timeout=10).status_code == 400


def test_corrupt_and_empty_models_report_end_with_their_error(served: ModelServer,
                                                              store_root: Path) -> None:
    for name in ("corrupt", "empty"):
        (state,) = served.status(name).json()["model_version_status"]
        assert state["state"] == "END" and state["version"] == "1"
        assert state["status"]["error_code"] != "OK" and state["status"]["error_message"]
        # The model and the reason; where it lives on this server goes to the log only.
        message = state["status"]["error_message"]
        assert str(store_root) not in message and "/tmp" not in message, message
        assert served.predict(name, {"instances": [1.0]}).status_code == 404
    assert served.predict("m1", {"instances": [1.0]}).json() == {"predictions": [2.0]}


def test_prometheus_metrics_count_requests_and_loads(served: ModelServer) -> None:
    before = metric(served, "tierserve_model_server_requests_total",
                    'api="rest",code="OK",method="predict",model="m1"')
    served.predict("m1", {"instances": [1.0]})
    after = metric(served, "tierserve_model_server_requests_total",
                   'api="rest",code="OK",method="predict",model="m1"')
    assert after == before + 1
    assert metric(served, "tierserve_model_server_loaded_models") >= 4
    assert metric(served, "tierserve_model_server_model_load_seconds_count") >= 5
    assert metric(served, "tierserve_model_server_model_loads_total", 'outcome="error"') >= 2


def test_tf_servings_metric_names(served: ModelServer, store_root: Path) -> None:
    count = ":tensorflow:serving:request_count"
    before = metric(served, count, 'model_name="m1",status="OK"')
    served.predict("m1", {"instances": [1.0]})
    assert metric(served, count, 'model_name="m1",status="OK"') == before + 1
    assert metric(served, ":tensorflow:serving:request_latency_count",
                  'model_name="m1",API="predict",entrypoint="REST"') >= 1
    assert metric(served, ":tensorflow:serving:runtime_latency_count",
                  'model_name="m1",API="Predict",runtime="TF1"') >= 1
    loads = ":tensorflow:cc:saved_model:load_attempt_count"
    assert metric(served, loads, f'model_path="{store_root}/m1/1",status="success"') == 1
    assert metric(served, loads, f'model_path="{store_root}/corrupt/1",status="fail"') >= 1


async def test_concurrent_clients_each_get_their_own_answer(served: ModelServer) -> None:
    import asyncio

    async with httpx.AsyncClient(base_url=served.rest, timeout=60) as client:
        async def one(i: int) -> tuple[int, object]:
            response = await client.post("/v1/models/m2:predict",
                                         json={"instances": [float(i), float(i) / 2]})
            return response.status_code, response.json()

        results = await asyncio.gather(*(one(i) for i in range(200)))
    for i, (status, body) in enumerate(results):
        assert status == 200
        assert body == {"predictions": toy_models.expected(4.0, 1.0, [i, i / 2])}
