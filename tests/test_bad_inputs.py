"""The hostile-input corpus (tests/bad_inputs/cases.toml): every case exits 2 with one line naming
the file and the key (or line and column), or succeeds where the input is legal; a failing case
leaves nothing behind (no run folder, no file anywhere under its folder).

Besides the table: data files never make gigacity fetch a URL (a VRT served on 127.0.0.1),
SIGTERM and SIGINT stop a run cleanly at any stage, a closed stdout is not an error, and a site
file beyond the row cap is refused before it is parsed.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from sim.cli import main

HERE = Path(__file__).resolve().parent / "bad_inputs"
CASES = tomllib.loads((HERE / "cases.toml").read_text(encoding="utf-8"))["case"]
BASE = tomllib.loads((HERE / "base.toml").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- building a case


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def toml_text(doc: dict) -> str:
    """A TOML document of ``doc``: top-level arrays inline first, then one [table] per section."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{name}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _set(doc: dict, dotted: str, value) -> None:
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", dotted)
    node = doc
    for p, nxt in zip(parts[:-1], parts[1:]):
        key = int(p[1:-1]) if p.startswith("[") else p
        if isinstance(node, dict) and key not in node:
            node[key] = [] if nxt.startswith("[") else {}
        node = node[key]
    last = parts[-1]
    node[int(last[1:-1]) if last.startswith("[") else last] = value


def _resolve(value, tmp: Path):
    """``"@name"`` -> the case file ``name`` copied into ``tmp`` (a path below it may follow)."""
    if isinstance(value, str) and value.startswith("@"):
        rel = value[1:]
        first = rel.split("/")[0]
        shutil.copy(HERE / first, tmp / first)
        return str(tmp / rel)
    return value


def _generate_deep_toml(tmp: Path) -> Path:
    path = tmp / "deep.toml"
    path.write_text("x = " + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    return path


GENERATORS = {"deep_toml": _generate_deep_toml}


def build_case(case: dict, tmp: Path) -> dict:
    """The case's files under ``tmp`` and the substitutions of its command line."""
    doc = json.loads(json.dumps(BASE))
    for key in ("districts", "census", "key_places"):
        doc["region"][key] = str((HERE / doc["region"][key]).resolve())
    doc["output"]["dir"] = str(tmp / "runs")
    for key, value in case.get("set", {}).items():
        _set(doc, key, _resolve(value, tmp))
    if "generate" in case:
        config = GENERATORS[case["generate"]](tmp)
    elif "config" in case:
        config = tmp / case["config"]
        shutil.copy(HERE / case["config"], config)
    else:
        config = tmp / "case.toml"
        config.write_text(toml_text(doc), encoding="utf-8")
    for name in case.get("files", []):
        shutil.copy(HERE / name, tmp / name)
    out = tmp / "out"
    setup = case.get("setup")
    if setup == "out_mine":
        out.mkdir()
        (out / ".gigacity-run").write_text("{}\n", encoding="utf-8")
        (out / "summary.json").write_text("{}\n", encoding="utf-8")
    elif setup == "out_not_mine":
        out.mkdir()
        (out / "report.md").write_text("the user's own report\n", encoding="utf-8")
    elif setup == "out_empty":
        out.mkdir()
    elif setup == "out_file":
        out.write_text("a regular file\n", encoding="utf-8")
    subs = {"config": str(config), "out": str(out), "tmp": str(tmp)}
    for side in ("a", "b"):
        if f"summary_{side}" in case:
            folder = tmp / f"run_{side}"
            folder.mkdir()
            shutil.copy(HERE / case[f"summary_{side}"], folder / "summary.json")
            subs[side] = str(folder)
    return subs


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def _commands(case: dict, subs: dict) -> list[list[str]]:
    if "command" in case:
        return [[a.format(**subs) for a in case["command"]]]
    return [["validate", subs["config"]], ["run", subs["config"], "--out", subs["out"], "--quiet"]]


# ----------------------------------------------------------------------------- the table


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"     # the working folder of the command: nothing may appear in it
    work.mkdir()
    subs = build_case(case, tmp_path)
    monkeypatch.chdir(work)
    for name in case.get("needs_modules", []):
        pytest.importorskip(name)   # an optional extra (CI installs it)
    for name in case.get("hide_modules", []):
        monkeypatch.setitem(sys.modules, name, None)   # `import name` fails as if it were not installed
    expected = case.get("exit", 2)
    for argv in _commands(case, subs):
        before = _tree(tmp_path)
        rc = main(argv)
        out, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        if expected == 0:
            assert rc == 0, err
            assert not lines, err
            continue
        assert rc == expected, f"{argv}: exit {rc}, stdout {out!r}"
        assert len(lines) == 1, err
        assert lines[0].startswith("gigacity: error: "), err
        for fragment in case.get("fragments", []):
            assert fragment in lines[0], lines[0]
        assert _tree(tmp_path) == before, f"{argv} left files behind"
    assert not any(work.iterdir()), "files written into the working folder"


def test_corpus_is_counted():
    """The corpus: one id per case, every file of tests/bad_inputs used by a case."""
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    used = {"base.toml", "cases.toml", "summary_ok.json"}
    text = (HERE / "cases.toml").read_text(encoding="utf-8")
    for p in HERE.iterdir():
        if p.name not in used:
            assert p.name in text, f"{p.name} is used by no case"
    assert len(CASES) >= 70


# ----------------------------------------------------------------------------- no network


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def _any(self):
        type(self).requests.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.end_headers()

    do_GET = do_HEAD = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Recorder.requests
    server.shutdown()
    server.server_close()


def test_data_files_never_fetch_urls(http_server, tmp_path, capsys, monkeypatch):
    port, requests = http_server
    vrt = (HERE / "vrt_districts.geojson").read_text(encoding="utf-8").format(port=port)
    # the server answers: GDAL left to pick a driver from the content does fetch (what the readers prevent)
    import pyogrio

    (tmp_path / "probe.geojson").write_text(vrt, encoding="utf-8")
    with pytest.raises(Exception):  # noqa: B017 - any failure: only the request matters
        pyogrio.read_dataframe(tmp_path / "probe.geojson")
    assert requests, "the test server saw no request: the test could not fail"
    requests.clear()
    monkeypatch.chdir(tmp_path)
    for name, sets in (("d.geojson", {"region.districts": "@"}), ("d.gpkg", {"region.districts": "@"}),
                       ("s.geojson", {"deployment.strategy": "file", "deployment.site_format": "geojson",
                                      "deployment.site_file": "@"})):
        (tmp_path / name).write_text(vrt, encoding="utf-8")
        doc = json.loads(json.dumps(BASE))
        for key in ("districts", "census", "key_places"):
            doc["region"][key] = str((HERE / doc["region"][key]).resolve())
        for key, value in sets.items():
            _set(doc, key, str(tmp_path / name) if value == "@" else value)
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(toml_text(doc), encoding="utf-8")
        assert main(["validate", str(cfg)]) == 2
        assert main(["run", str(cfg), "--out", str(tmp_path / f"run-{name}"), "--quiet"]) == 2
    # a run folder whose rasters and GeoPackage are VRTs: compare reads them with their own drivers
    for side in ("a", "b"):
        folder = tmp_path / side
        folder.mkdir()
        shutil.copy(HERE / "summary_ok.json", folder / "summary.json")
        (folder / "cmcc-n41_rate_indoor_bps.tif").write_text(vrt.replace("OGRVRT", "VRT"), encoding="utf-8")
        (folder / "districts.gpkg").write_text(vrt, encoding="utf-8")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")]) == 2
    capsys.readouterr()
    assert requests == []


# ----------------------------------------------------------------------------- stdout closed


def _cli(*args):
    return [sys.executable, "-m", "sim", *args]


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_compare_into_a_closed_pipe_exits_0(tmp_path, reader):
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        shutil.copy(HERE / "summary_ok.json", tmp_path / side / "summary.json")
    cmd = " ".join(_cli("compare", str(tmp_path / "a"), str(tmp_path / "b")))
    # `true` has left before gigacity writes: its write meets a closed pipe
    proc = subprocess.run(["bash", "-c", f"{cmd} | {reader}; echo \"rc=${{PIPESTATUS[0]}}\" >&2"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, MPLBACKEND="Agg"))
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "rc=0", proc.stderr
    # deterministic: the reader has gone before gigacity writes a byte
    closed = subprocess.Popen(_cli("compare", str(tmp_path / "a"), str(tmp_path / "b")), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=dict(os.environ, MPLBACKEND="Agg"))
    closed.stdout.close()
    assert closed.wait(timeout=300) == 0
    assert closed.stderr.read() == b""
    closed.stderr.close()


# ----------------------------------------------------------------------------- signals


def _signal_run(tmp_path, sig, stage: str):
    doc = json.loads(json.dumps(BASE))
    for key in ("districts", "census", "key_places"):
        doc["region"][key] = str((HERE / doc["region"][key]).resolve())
    doc["region"]["district_codes"] = ["310101", "310104", "310105", "310106"]
    doc["region"]["resolution_m"] = 50.0
    doc["radio"]["workers"] = 2
    doc["radio"]["block_size"] = 2048
    doc["output"] = {"dir": str(tmp_path / "runs"), "maps": True, "geotiff": True}
    cfg = tmp_path / "slow.toml"
    cfg.write_text(toml_text(doc), encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.Popen(_cli("run", str(cfg), "--out", str(out)), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, start_new_session=True,
                            env=dict(os.environ, MPLBACKEND="Agg"))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if stage in line:
            time.sleep(0.5)
            os.kill(proc.pid, sig)
            break
    rest = proc.stderr.read()
    proc.stderr.close()
    proc.wait(timeout=120)
    time.sleep(1.0)
    return proc, out, "".join(seen), rest


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.parametrize("stage", ["reading geodata", "coverage cmcc-n41", "busy hour", "writing outputs"])
def test_signal_stops_cleanly(tmp_path, sig, code, stage, group_alive):
    proc, out, before, after = _signal_run(tmp_path, sig, stage)
    assert proc.returncode == code, before + after
    lines = [line for line in after.splitlines() if line.strip() and not line.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("gigacity: "), after
    assert "Traceback" not in after
    assert group_alive(proc.pid) == [], "worker processes outlived the run"
    if out.exists():
        left = [p.name for p in out.rglob("*") if ".tmp-" in p.name]
        assert left == [], f"temporary files left: {left}"
        # a later run in that folder with --force is allowed (the marker says it is a run folder)
        assert (out / ".gigacity-run").is_file()


# ----------------------------------------------------------------------------- big site file


@pytest.mark.slow
def test_site_file_over_the_row_cap_is_refused_before_parsing(tmp_path, capsys, monkeypatch):
    from sim.sitefiles import MAX_SITE_ROWS

    path = tmp_path / "big.csv"
    line = "121.48,31.23,cmcc,n41\n"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("lon,lat,operator,band\n")
        block = line * 100_000
        for _ in range(MAX_SITE_ROWS // 100_000):
            fh.write(block)
        fh.write(line)
    doc = json.loads(json.dumps(BASE))
    for key in ("districts", "census", "key_places"):
        doc["region"][key] = str((HERE / doc["region"][key]).resolve())
    doc["deployment"].update(strategy="file", site_file=str(path))
    cfg = tmp_path / "big.toml"
    cfg.write_text(toml_text(doc), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{MAX_SITE_ROWS + 1:,} rows, more than the {MAX_SITE_ROWS:,}" in err, err
    assert time.perf_counter() - t0 >= 0  # (no timing asserted: counting needs no parse)
