"""Pictures of a plan: the right number of bars and arrows, real sizes, self-contained HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import placement
from placement.errors import InputError
from placement.plots import dag_layout, show

from .conftest import ROOT


def split_plan(problem):
    """A feasible plan over several devices: blocks in topological order cut into contiguous
    runs, one per device that can hold them (checked with the evaluator)."""
    p = placement.load(problem)
    ids = [p.blocks[b].id for b in p.topo]
    for parts in range(min(p.n_devices, 4), 0, -1):
        size = -(-len(ids) // parts)
        order_devices = sorted(range(p.n_devices), key=lambda d: -p.memory[d])[:parts]
        assignment = {b: p.devices[order_devices[i // size]].id for i, b in enumerate(ids)}
        plan = placement.evaluate(p, {"assignment": assignment, "method": "handmade"})
        if plan.feasible:
            return p, plan
    raise AssertionError("no feasible split plan")


def cross_edges(p, plan) -> int:
    return sum(plan.assignment[p.blocks[u].id] != plan.assignment[p.blocks[v].id]
               for u, v in zip(p.edge_src, p.edge_dst))


def test_svg_has_one_bar_per_block_and_one_arrow_per_cross_edge(tmp_path, diamond):
    p = placement.load(diamond)
    plan = placement.evaluate(p, {"assignment": {"s": "A", "l": "A", "r": "B", "t": "A"}})
    out = tmp_path / "gantt.svg"
    info = show(p, plan, out)
    svg = out.read_text()
    assert len(re.findall(r'id="block:', svg)) == 4 == info["bars"]
    # s->r and r->t cross devices
    assert sorted(re.findall(r'id="transfer:([^"]+)"', svg)) == ["r--t", "s--r"]
    assert info["transfers"] == 2 == info["dag_cross_edges"]
    assert len(re.findall(r'id="input:', svg)) == 1 and len(re.findall(r'id="output:', svg)) == 1
    assert len(re.findall(r'id="dag-edge:', svg)) == 4
    assert "latency" in svg  # the title names it


def test_png_of_a_generated_plan_is_a_real_picture(tmp_path):
    d = placement.generate("hybrid", 24, 4, seed=3, name="pic")
    p, plan = split_plan(d)
    out = tmp_path / "plan.png"
    info = show(p, plan.to_dict(), out)
    assert info["bars"] == p.n_blocks and info["devices"] == 4
    assert info["transfers"] == cross_edges(p, plan) > 0
    assert info["inputs"] == len(p.input_blocks) and info["outputs"] == len(p.output_blocks)
    from matplotlib.image import imread
    img = imread(out)
    h, w = img.shape[:2]
    assert w > 1000 and h > 600, (w, h)
    assert out.stat().st_size > 30_000
    # not blank: many distinct colours (bars by kind, nodes by device)
    colours = {tuple(px) for px in (img[::7, ::7, :3] * 255).astype(int).reshape(-1, 3)}
    assert len(colours) > 20


def test_gantt_only_and_a_plan_with_only_an_assignment(tmp_path, diamond):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"assignment": {"s": "B", "l": "B", "r": "B", "t": "B"}}))
    prob_file = tmp_path / "p.json"
    prob_file.write_text(json.dumps(diamond))
    info = show(str(prob_file), str(plan_file), tmp_path / "g.svg", dag=False)
    svg = (tmp_path / "g.svg").read_text()
    assert info["transfers"] == 0 and "dag_nodes" not in info
    assert "dag-edge:" not in svg and len(re.findall(r'id="block:', svg)) == 4
    # all on B, source/sink A: the input and output are arrows between rows
    assert 'id="input:s"' in svg and 'id="output:t"' in svg


def test_html_is_self_contained(tmp_path):
    d = placement.generate("dag", 12, 3, seed=1, name="html")
    p, plan = split_plan(d)
    out = tmp_path / "plan.html"
    show(p, plan, out)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "<script" not in page
    assert not re.search(r'(src|href)="https?://', page), "no network resources"
    assert page.count('id="block:') == p.n_blocks
    schedule = page.split("<h2>Schedule")[1].split("<h2>")[0]
    assert schedule.count("<tr><td>") == p.n_blocks
    # a tooltip on every block and every transfer between devices
    n_cross = cross_edges(p, plan)
    assert len(re.findall(r'<g id="block:[^"]+"[^>]*><title>', page)) == p.n_blocks
    assert len(re.findall(r'<g id="transfer:[^"]+"[^>]*><title>', page)) == n_cross > 0
    transfers = page.split("<h2>Transfers")[1].split("<h2>")[0]
    assert transfers.count("<tr><td>") == n_cross
    memory = page.split("<h2>Memory")[1]
    assert memory.count("<tr><td>") == len(set(plan.assignment.values()))
    assert page.count("<h1>") == 1 and "· status" not in page.split("<svg")[1], "one header, not two"


def test_layout_puts_every_edge_forward():
    p = placement.load(placement.generate("dag", 30, 2, seed=0))
    pos = dag_layout(p)
    assert all(pos[int(u)][0] < pos[int(v)][0] for u, v in zip(p.edge_src, p.edge_dst))


def test_bad_extension_and_cli(tmp_path, diamond):
    p = placement.load(diamond)
    plan = placement.evaluate(p, {"assignment": {"s": "A", "l": "A", "r": "B", "t": "A"}})
    with pytest.raises(InputError, match=r"expected a file ending in \.png, \.svg, \.pdf or \.html"):
        show(p, plan, tmp_path / "x.gif")
    (tmp_path / "p.json").write_text(json.dumps(diamond))
    plan.save(tmp_path / "plan.json")
    run = lambda *a: subprocess.run([sys.executable, "-m", "placement.cli", "show", *a],
                                    capture_output=True, text=True, cwd=ROOT)
    ok = run(str(tmp_path / "p.json"), str(tmp_path / "plan.json"), "-o", str(tmp_path / "c.png"))
    assert ok.returncode == 0, ok.stderr
    assert "4 blocks on 2 devices (of 2 drawn), 2 transfers" in ok.stdout
    assert (tmp_path / "c.png").stat().st_size > 10_000
    bad = run(str(tmp_path / "p.json"), str(tmp_path / "plan.json"), "-o", str(tmp_path / "c.gif"))
    assert bad.returncode == 2 and "expected a file ending in" in bad.stderr
    (tmp_path / "wrong.json").write_text(json.dumps({"assignment": {"s": "Z"}}))
    wrong = run(str(tmp_path / "p.json"), str(tmp_path / "wrong.json"), "-o", str(tmp_path / "w.png"))
    assert wrong.returncode == 2 and "assignment" in wrong.stderr


def test_pdf_hide_idle_and_the_time_axis(tmp_path):
    d = placement.generate("hybrid", 10, 8, seed=2, name="idle")
    p = placement.load(d)
    ids = [b.id for b in p.blocks]
    dev = [x.id for x in p.devices]
    # two devices of eight run everything: the other six rows are dropped with hide_idle
    plan = placement.evaluate(p, {"assignment": {b: dev[0] if i < 5 else dev[1] for i, b in enumerate(ids)}})
    full = show(p, plan, tmp_path / "full.svg")
    assert full["devices"] == 8 and full["devices_used"] == 2
    small = show(p, plan, tmp_path / "small.svg", hide_idle=True)
    keep = {0, 1, p.source, p.sink}
    assert small["devices"] == len(keep) and small["bars"] == p.n_blocks
    pdf = tmp_path / "plan.pdf"
    show(p, plan, pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    svg = (tmp_path / "full.svg").read_text()
    unit = "ms" if plan.metrics["latency_s"] < 1 else "s"
    assert f"time ({unit})" in svg


def test_kind_and_device_palettes_do_not_share_a_colour():
    from placement.plots import DEVICE_COLOURS, KIND_COLOURS, _EXTRA
    assert not {c.lower() for c in DEVICE_COLOURS} & {c.lower() for c in list(KIND_COLOURS.values()) + _EXTRA}


def _chromium():
    import shutil
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_html_renders_in_headless_chromium_without_console_errors(tmp_path):
    d = placement.generate("dag", 12, 3, seed=1, name="html")
    p, plan = split_plan(d)
    out = tmp_path / "plan.html"
    show(p, plan, out)
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    res = subprocess.run([_chromium(), *flags, f"--screenshot={shot}", "--window-size=1400,1200",
                          out.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", out.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.stdout.count('id="block:') == p.n_blocks and "<title>" in dom.stdout
