"""The loader's rules for shared media (SPEC 5a) and scenarios (SPEC 10): each broken rule
is named; a valid file is refused (not ignored) until the evaluator models the feature."""

from __future__ import annotations

import copy

import pytest

import placement
from placement.errors import ProblemError


def three(diamond):
    d = copy.deepcopy(diamond)
    d["devices"].append(dict(d["devices"][1], id="C"))
    return d


@pytest.mark.parametrize("media,match", [
    ([{"id": "w", "devices": ["A"]}], r"network\.media\[0\]\.devices: expected at least 2 items"),
    ([{"id": "w", "devices": ["A", "Q"]}], r"network\.media\[0\]\.devices\[1\]: expected the id of a device, found \"Q\""),
    ([{"id": "w", "devices": ["A", "B", "A"]}], r"network\.media\[0\]\.devices\[2\]: expected each device once"),
    ([{"id": "w", "devices": ["A", "B"]}, {"id": "w", "devices": ["A", "C"]}],
     r"network\.media\[1\]\.id: expected a unique medium id"),
    ([{"id": "w", "devices": ["A", "B"]}, {"id": "v", "devices": ["B", "C", "A"]}],
     r"network\.media\[1\]\.devices: expected a pair of devices in at most one medium, found \[\"A\", \"B\"\] \(both are in medium 'w' too\)"),
    ([{"id": "w", "devices": ["A", "B"], "speed": 1}], r"network\.media\[0\]: expected only known keys, found \"speed\""),
])
def test_media_rules(diamond, media, match):
    d = three(diamond)
    d["network"]["media"] = media
    with pytest.raises(ProblemError, match=match):
        placement.load(d)


def test_valid_media_are_loaded_and_modelled(diamond):
    d = three(diamond)
    d["network"]["media"] = [{"id": "w", "devices": ["A", "B"]}, {"id": "v", "devices": ["B", "C"]}]
    p = placement.load(d)
    assert p.media == (("w", (0, 1)), ("v", (1, 2))) and p.features == {"media"}
    assert p.medium_of[0, 1] == p.medium_of[1, 0] == 0 and p.medium_of[1, 2] == 1 and p.medium_of[0, 2] == -1


@pytest.mark.parametrize("scenarios,match", [
    ([{"name": "a", "probability": 0.5}, {"name": "a", "probability": 0.5}],
     r"model\.scenarios\[1\]\.name: expected a unique scenario name"),
    ([{"name": "a", "probability": 0.5}, {"name": "b", "probability": 0.4}],
     r"model\.scenarios: expected probabilities that sum to 1, found 0\.9"),
    ([{"name": "a", "probability": 0}, {"name": "b", "probability": 1}],
     r"model\.scenarios\[0\]\.probability: expected a finite number > 0"),
    ([{"name": "a", "probability": 1, "skip": ["zz"]}],
     r"model\.scenarios\[0\]\.skip\[0\]: expected the id of a block, found \"zz\""),
    ([{"name": "a", "probability": 0.5, "skip": ["r"]}, {"name": "b", "probability": 0.5}],
     r"model\.scenarios\[0\]\.skip: expected the successors of every skipped block skipped too, "
     r"found \"t\" \('t' runs but its input from 'r' is skipped in scenario 'a'\)"),
    ([{"name": "a", "probability": 0.5, "skip": ["t"]}, {"name": "b", "probability": 0.5, "skip": ["t"]}],
     r"model\.scenarios: expected every block to run in at least one scenario, found \"t\""),
    ([{"name": "a", "probability": 1, "skip": ["s", "l", "r", "t"]}],
     r"model\.scenarios\[0\]\.skip: expected at least one block that runs"),
    ([{"name": "a", "probability": 1, "skip": ["t", "t"]}],
     r"model\.scenarios\[0\]\.skip\[1\]: expected each block once"),
])
def test_scenario_rules(diamond, scenarios, match):
    d = copy.deepcopy(diamond)
    d["model"]["scenarios"] = scenarios
    with pytest.raises(ProblemError, match=match):
        placement.load(d)


def test_valid_scenarios_load_now_that_the_evaluator_models_them(diamond):
    d = copy.deepcopy(diamond)
    d["model"]["scenarios"] = [{"name": "exit-early", "probability": 0.6, "skip": ["t"]},
                               {"name": "full", "probability": 0.4 + 1e-12}]
    p = placement.load(d)
    assert "scenarios" in p.features
    assert [(s.name, s.runs.tolist()) for s in p.scenarios] == [
        ("exit-early", [True, True, True, False]), ("full", [True, True, True, True])]


def test_generator_and_catalog_put_wifi_devices_on_one_medium_when_media_are_modelled(monkeypatch):
    from placement import loader
    from profiles import catalog
    devs = catalog.devices(["rpi4", "jetson-nano", "laptop"])
    # media are modelled (issue 15): Wi-Fi and the star's access point share the air by default
    assert "media" in loader.MODELLED_FEATURES
    ids = [d["id"] for d in devs]
    assert catalog.network("wifi5", devs)["media"] == [{"id": "wifi5", "devices": ids}]
    assert "media" not in catalog.network("wifi5", devs, media=False)
    assert "media" not in catalog.network("ethernet", devs)
    assert catalog.network("wifi5", devs, media=True)["media"] == [{"id": "wifi5", "devices": ids}]
    assert "media" not in catalog.network("ethernet", devs, media=True)
    monkeypatch.setattr(loader, "MODELLED_FEATURES", frozenset({"media"}))
    star = placement.generate("chain", 4, 3, network="star")
    assert star["network"]["media"] == [{"id": "ap", "devices": [d["id"] for d in star["devices"]]}]
    assert "media" not in placement.generate("chain", 4, 3, network="star", media=False)["network"]
    assert "media" not in placement.generate("chain", 4, 3, network="mesh")["network"]
    assert catalog.network("wifi4", devs)["media"][0]["devices"] == ids
    placement.load(star)  # loads once the gate is open


def test_media_and_scenarios_together_are_refused_not_mixed(diamond):
    d = three(diamond)
    d["network"]["media"] = [{"id": "w", "devices": ["A", "B"]}]
    d["model"]["scenarios"] = [{"name": "a", "probability": 0.5, "skip": ["t"]},
                               {"name": "b", "probability": 0.5}]
    with pytest.raises(ProblemError, match=r"network\.media: expected a problem without shared media when "
                       r"the model has scenarios .*not together yet"):
        placement.load(d)
    del d["network"]["media"]
    assert placement.load(d).scenarios
