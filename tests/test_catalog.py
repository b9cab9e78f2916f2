"""Device/network catalog, calibration arithmetic and the shipped example problems.

None of these needs torch: the catalog and the examples are data, so solvers, tests and
benchmarks use real models on a machine without the ``profile`` extra.
"""

from __future__ import annotations

import glob
import json
import os

import pytest

import placement
from placement.errors import InputError
from profiles import catalog, make_problem
from profiles.models import parse_input_shape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "models", "*.json")))
REQUIRED_DEVICES = {"rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "phone", "laptop", "edge-gpu"}
REQUIRED_NETWORKS = {"wifi5", "wifi6", "ethernet", "5g"}
FIGURES = ("flops_per_s", "memory_bytes", "power_active_w", "power_idle_w", "tx_power_w", "rx_power_w")
EXAMPLE_MODELS = {"mobilevit_s", "efficientformer_l1", "levit_128s", "fastvit_t8", "coatnet_0_rw_224",
                  "resnet18", "deit_tiny_patch16_224"}


def test_catalog_has_the_required_devices_and_networks():
    assert REQUIRED_DEVICES <= set(catalog.device_types())
    assert REQUIRED_NETWORKS <= set(catalog.network_names())


@pytest.mark.parametrize("device_type", sorted(set(catalog.device_types()) - {catalog.HOST}))
def test_every_device_figure_cites_a_source(device_type):
    spec = catalog.device_spec(device_type)
    for key in FIGURES:
        assert spec[key] >= 0, key
        assert spec["sources"].get(key), f"{device_type}.{key} has no source"
    if spec.get("radio"):
        assert spec["sources"].get("radio")
    assert spec["class"] in ("cpu", "gpu", "mcu")


@pytest.mark.parametrize("name", sorted(REQUIRED_NETWORKS | {"wifi4"}))
def test_every_network_figure_cites_a_source(name):
    spec = catalog.network_spec(name)
    assert spec["bandwidth_bytes_per_s"] > 0 and spec["latency_s"] >= 0
    assert spec["sources"]["bandwidth_bytes_per_s"] and spec["sources"]["latency_s"]


def test_repeated_device_types_get_unique_ids():
    devs = catalog.devices(["rpi4", "rpi4", "laptop"])
    assert [d["id"] for d in devs] == ["rpi4-0", "rpi4-1", "laptop"]
    assert [d["type"] for d in devs] == ["rpi4", "rpi4", "laptop"]


def test_unknown_device_and_network_are_input_errors():
    with pytest.raises(InputError, match="unknown device type 'toaster'"):
        catalog.parse_device_list("rpi4,toaster")
    with pytest.raises(InputError, match="expected a comma-separated list"):
        catalog.parse_device_list(" , ")
    with pytest.raises(InputError, match="unknown network 'carrier-pigeon'"):
        catalog.network_spec("carrier-pigeon")


@pytest.mark.parametrize("text", ["1x3x224", "1x3xax224", "0x3x224x224", "224"])
def test_malformed_input_shape_is_an_input_error(text):
    if text == "1x3x224":
        assert parse_input_shape(text) == (1, 3, 224)
        return
    with pytest.raises(InputError, match="--input: expected"):
        parse_input_shape(text)


def test_links_are_capped_by_the_slower_radio():
    devs = catalog.devices(["esp32-s3", "rpi4", "laptop", "edge-gpu"])
    net = catalog.network("wifi5", devs)
    assert net["default"]["bandwidth_bytes_per_s"] == 4.0e7
    links = {(l["src"], l["dst"]): l["bandwidth_bytes_per_s"] for l in net["links"]}
    assert links[("esp32-s3", "edge-gpu")] == 2.5e6  # the MCU's 802.11n radio
    assert links[("rpi4", "laptop")] == 1.25e7  # the Pi's single-stream radio
    assert ("laptop", "edge-gpu") not in links  # both at least as fast as the network: default


def _toy_section(t_host=0.01):
    return {
        "name": "toy", "input_bytes": 1000.0,
        "blocks": [
            {"id": "a", "flops": 1e6, "kind": "conv", "output_bytes": 10.0,
             "meta": {"time_host_s": t_host, "flops_by_kind": {"conv": 1e6}}},
            {"id": "b", "flops": 1e6, "kind": "attention", "output_bytes": 10.0,
             "meta": {"time_host_s": t_host, "flops_by_kind": {"attention": 5e5, "mlp": 5e5}}},
        ],
        "edges": [{"src": "a", "dst": "b", "bytes": 10.0}],
    }


def test_calibration_scales_by_rate_ratio_kind_mix_and_overhead():
    ref = {"rate_flops_per_s": 3.0e10, "flops": 3e9, "time_host_s": 0.1}
    p = make_problem(_toy_section(0.01), ["rpi4", "edge-gpu"], "wifi5", reference=ref)
    a, b = p["model"]["blocks"]
    # CPU device, same efficiency profile as the host: the rate ratio only
    assert a["time_s"]["rpi4"] == pytest.approx(0.01 * 3.0e10 / 6.0e9)
    # GPU: + overhead, and attention runs relatively worse there than on the CPU host
    cpu, gpu = catalog.efficiency_profile("cpu"), catalog.efficiency_profile("gpu")
    rho = 0.5 * cpu["attention"] / gpu["attention"] + 0.5 * cpu["mlp"] / gpu["mlp"]
    assert b["time_s"]["edge-gpu"] == pytest.approx(5e-5 + 0.01 * 3.0e10 / 2.0e12 * rho)
    cal = p["meta"]["calibration"]
    assert cal["reference"]["rate_flops_per_s"] == 3.0e10
    assert cal["devices"]["rpi4"]["time_scale"] == pytest.approx(5.0)
    loaded = placement.load(p)
    assert len(loaded.blocks) == 2


def test_problem_without_reference_falls_back_to_flops():
    p = make_problem(_toy_section(), ["rpi4", "laptop"], "ethernet")
    assert all("time_s" not in b for b in p["model"]["blocks"])
    assert p["source"] == p["sink"] == "rpi4"
    placement.load(p)


def test_the_fourteen_examples_are_shipped():
    names = {os.path.basename(p) for p in EXAMPLES}
    for model in EXAMPLE_MODELS:
        for gran in ("stage", "block"):
            assert f"{model}.{gran}.json" in names


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_every_shipped_example_loads_and_records_its_measurements(path):
    problem = placement.load(path)
    assert len(problem.blocks) >= 3
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    meta = raw["model"]["meta"]
    assert sum(b["flops"] for b in raw["model"]["blocks"]) == meta["model_flops_fvcore"]
    assert sum(b["meta"].get("params", 0) for b in raw["model"]["blocks"]) == meta["model_params"]
    assert meta["split_output_max_abs_error"] == 0.0
    rec = meta["measurement"]
    assert rec["threads"] >= 1 and rec["statistic"] == "median" and rec["torch"] and rec["date_utc"]
    cal = raw["meta"]["calibration"]
    assert cal["reference"]["rate_flops_per_s"] > 0
    types = {d["type"] for d in raw["devices"]}
    for b in raw["model"]["blocks"]:
        assert set(b["time_s"]) == types
        assert b["fx_nodes"]
    # the weakest device of the make_examples set (the ESP32-S3 node) cannot hold the whole
    # model; the `.splits.json` profiles (bench_splits' input) are on rpi4 and up
    if path.endswith((".stage.json", ".block.json")):
        weakest = min(raw["devices"], key=lambda d: d["memory_bytes"])
        assert sum(b["params_bytes"] for b in raw["model"]["blocks"]) > weakest["memory_bytes"]


def test_cli_solves_a_shipped_example(capsys):
    from placement.cli import main

    path = next(p for p in EXAMPLES if p.endswith("mobilevit_s.block.json"))
    assert main(["solve", path, "--method", "single"]) == 0


def test_radios_cap_wifi_links_but_not_ethernet():
    """A Pi's single-stream Wi-Fi radio (1.25e7 B/s) caps its Wi-Fi 5 links; on Gigabit
    Ethernet its port carries the traffic, at the network's 1.17e8 B/s."""
    from profiles.catalog import devices, network
    devs = devices(["rpi4", "rpi4"])
    wifi = network("wifi5", devs)
    assert [x["bandwidth_bytes_per_s"] for x in wifi["links"]] == [1.25e7]
    eth = network("ethernet", devs)
    assert eth["links"] == [] and eth["default"]["bandwidth_bytes_per_s"] == 1.17e8
    assert "wired" in eth["meta"]["radio_caps"]
