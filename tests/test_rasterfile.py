"""Tests of sim.report.rasterfile: land-pixel rasters written window by window as COGs.

The reference is :func:`sim.report.files.write_geotiff` of the scattered whole array
(``sim.grid.scatter_to_raster``): the streamed file must hold the same pixels, overviews and tags.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio

from sim.errors import InputError
from sim.grid import Grid, scatter_to_raster
from sim.report import files
from sim.report.rasterfile import BLOCK_ROWS, LandRasterWriter, preview_factor

X0_M, Y0_M, RES_M = 340_000.0, 3_470_000.0, 100.0
# 600 rows: three blocks of 256 rows, the second without land; 300 columns: two tiles, the second partial
GRID = Grid("EPSG:32651", X0_M, Y0_M, RES_M, (600, 300))


def _land(grid=GRID, seed=5):
    """An irregular land mask: random pixels, a sea corner, no land at all in rows 256-511 (a whole block)."""
    rng = np.random.default_rng(seed)
    mask = rng.random(grid.shape) < 0.7
    mask[:40, :120] = False
    mask[BLOCK_ROWS:2 * BLOCK_ROWS] = False
    mask[-1, -1] = True   # the last pixel is land: the last chunk ends in the last tile
    return np.flatnonzero(mask.ravel())


def _float_values(n, seed=6):
    rng = np.random.default_rng(seed)
    v = rng.normal(-90.0, 8.0, n).astype(np.float32)
    v[rng.random(n) < 0.05] = np.nan   # land pixels without a value (no server)
    return v


def _class_values(n, seed=7):
    return np.random.default_rng(seed).integers(0, 4, n).astype(np.uint8)


def _chunks(n, size):
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _stream(path, land, values, chunks, *, grid=GRID, **kw):
    with LandRasterWriter(path, grid, land, kw.pop("nodata", np.nan), kw.pop("band", "SS-RSRP outdoor"),
                          kw.pop("units", "dBm"), **kw) as w:
        for start, stop in chunks:
            w.write(start, stop, values[start:stop])
    return w


def _levels(path):
    """The full-resolution band and every overview, as read back by rasterio."""
    with rasterio.open(path) as ds:
        out = [ds.read(1)]
        n = len(ds.overviews(1))
        meta = (ds.profile, ds.tags(), ds.tags(1), ds.descriptions, ds.units, ds.overviews(1))
    for k in range(n):
        with rasterio.open(path, overview_level=k) as ov:
            out.append(ov.read(1))
    return out, meta


IRREGULAR = "irregular"


@pytest.mark.parametrize("kind", ["float", "class"])
@pytest.mark.parametrize("chunk", [997, 12_345, IRREGULAR])
def test_streamed_file_is_write_geotiff_of_the_scattered_array(tmp_path, kind, chunk):
    """Band, every overview, tags and bytes equal write_geotiff's, for chunks that split rows and blocks."""
    land = _land()
    if kind == "float":
        values, nodata, kw = _float_values(land.size), np.nan, {}
        whole = scatter_to_raster(GRID, land, values)
    else:
        values, nodata, kw = _class_values(land.size), 255, {"dtype": "uint8"}
        whole = scatter_to_raster(GRID, land, values, fill=255).astype(np.uint8)
    if chunk == IRREGULAR:   # uneven chunks, some empty, one of a single pixel
        cuts = [0, 0, 1, 500, 500, 20_000, 20_001, 60_000, land.size]
        chunks = list(zip(cuts[:-1], cuts[1:]))
    else:
        chunks = _chunks(land.size, chunk)
    ref = files.write_geotiff(tmp_path / "ref.tif", GRID, whole, nodata, "holes", "class")
    _stream(tmp_path / "new.tif", land, values, chunks, nodata=nodata, band="holes", units="class", **kw)
    ref_levels, ref_meta = _levels(ref)
    new_levels, new_meta = _levels(tmp_path / "new.tif")
    assert repr(new_meta) == repr(ref_meta)   # repr: NaN nodata equals NaN
    assert len(new_levels) == 1 + len(files.OVERVIEW_FACTORS)
    for a, b in zip(ref_levels, new_levels):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)   # NaN where NaN
    np.testing.assert_array_equal(new_levels[0], whole)
    assert (tmp_path / "new.tif").read_bytes() == ref.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.tif", "ref.tif"]   # no temporary file left


def test_streamed_file_is_a_cloud_optimized_geotiff(tmp_path):
    from rio_cogeo.cogeo import cog_validate

    land = _land()
    p = tmp_path / "rsrp.tif"
    _stream(p, land, _float_values(land.size), _chunks(land.size, 4096))
    valid, errors, warnings = cog_validate(p, quiet=True)
    assert valid and not errors and not warnings, (errors, warnings)
    with rasterio.open(p) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.block_shapes == [(256, 256)] and ds.compression.name == "zstd"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "1") == "1"   # no predictor (files.GEOTIFF_PREDICTOR)


def test_scale_gives_the_bits_of_the_mbps_geotiffs(tmp_path):
    """scale=1e-6: the bits of ``(values as float64 / 1e6).astype(float32)`` (app.outputs.geotiff_of)."""
    land = _land()
    rng = np.random.default_rng(8)
    rates = (rng.random(land.size) * 2e9).astype(np.float32).astype(np.float64)   # bit/s
    # float64 values whose x * 1e-6 and x / 1e6 round to different float32 (found by search): a division
    rates[:3] = [1087249984000000.1, 67171156000000.01, 1082922560000000.1]
    assert ((rates[:3] * 1e-6).astype(np.float32) != (rates[:3] / 1e6).astype(np.float32)).all()
    whole = (np.asarray(scatter_to_raster(GRID, land, rates), np.float64) / 1e6).astype(np.float32)
    ref = files.write_geotiff(tmp_path / "ref.tif", GRID, whole, np.nan, "rate", "Mbit/s")
    w = _stream(tmp_path / "new.tif", land, rates, _chunks(land.size, 5000), band="rate", units="Mbit/s", scale=1e-6)
    assert (tmp_path / "new.tif").read_bytes() == ref.read_bytes()
    np.testing.assert_array_equal(w.preview, scatter_to_raster(GRID, land, rates))   # the preview: bit/s
    # a multiplier that is not 1/n is a multiplication
    _stream(tmp_path / "x2.tif", land, rates, _chunks(land.size, 5000), scale=2.5)
    with rasterio.open(tmp_path / "x2.tif") as ds:
        np.testing.assert_array_equal(ds.read(1).ravel()[land], (rates.astype(np.float64) * 2.5).astype(np.float32))


def test_preview_is_the_scattered_array_at_f1_and_the_strided_sample_beyond(tmp_path):
    land = _land()
    values = _float_values(land.size)
    whole = scatter_to_raster(GRID, land, values)
    w = _stream(tmp_path / "a.tif", land, values, _chunks(land.size, 3000))   # preview_max_px 2048 > 600
    assert w.preview_grid == GRID
    assert w.preview.dtype == np.result_type(values.dtype, np.float32)   # float32 values: half the memory
    np.testing.assert_array_equal(w.preview, whole)
    for max_px, f in ((150, 4), (128, 5), (1, 600)):
        assert preview_factor(GRID.shape, max_px) == f
        w = _stream(tmp_path / f"p{f}.tif", land, values, _chunks(land.size, 3000), preview_max_px=max_px)
        rows = np.minimum(np.arange(math.ceil(600 / f)) * f + f // 2, 599)
        cols = np.minimum(np.arange(math.ceil(300 / f)) * f + f // 2, 299)
        assert w.preview_grid == Grid(GRID.crs, X0_M, Y0_M, RES_M * f, (rows.size, cols.size))
        np.testing.assert_array_equal(w.preview, whole[np.ix_(rows, cols)])
    assert rows[-1] == 300 and cols[-1] == 299   # f = 600: the centre pixel, clipped to the last column


def test_background_writes_record_the_file_and_give_the_same_bytes(tmp_path):
    land = _land()
    values = _float_values(land.size)
    ref = _stream(tmp_path / "ref.tif", land, values, _chunks(land.size, 7000)).path
    run = files.create_run_dir(tmp_path, "bg", name="run")
    with files.background_writes(2):
        w = _stream(run / "r.tif", land, values, _chunks(land.size, 7000))
        assert w.preview.shape == GRID.shape   # ready before the file is
    assert files.written_outputs(run) == ["r.tif"]
    assert (run / "r.tif").read_bytes() == ref.read_bytes()
    files.finish_run_dir(run, "bg", files.written_outputs(run))


def _old_file(tmp_path):
    p = tmp_path / "rsrp.tif"
    p.write_bytes(b"the previous run's file")
    return p


def _only_old_file_left(tmp_path, p):
    return sorted(q.name for q in tmp_path.iterdir()) == [p.name] and p.read_bytes() == b"the previous run's file"


@pytest.mark.parametrize("bad, match", [
    (lambda w, v: w.write(10, 20, v[10:20]), r"rsrp\.tif: start: expected land pixels in order, from 0; got 10"),
    (lambda w, v: (w.write(0, 10, v[:10]), w.write(5, 20, v[5:20])), r"rsrp\.tif: start: .* from 10; got 5"),
    (lambda w, v: w.write(0, 10, v[:9]), r"rsrp\.tif: values: expected 10 values \(land pixels 0:10\), got shape"),
    (lambda w, v: w.write(0, v.size + 1, v), r"rsrp\.tif: stop: expected 0 <= stop <= \d+"),
    (lambda w, v: (w.write(0, 10, v[:10]), w.close()), r"rsrp\.tif: values: closed after 10 of \d+ land pixels"),
    (lambda w, v: (w.write(0, v.size, v), w.close(), w.write(0, 1, v[:1])), r"rsrp\.tif: the raster writer is closed"),
])
def test_bad_input_names_the_file_and_leaves_the_old_file(tmp_path, bad, match):
    land = _land()
    values = _float_values(land.size)
    p = _old_file(tmp_path)
    w = LandRasterWriter(p, GRID, land, np.nan, "SS-RSRP outdoor", "dBm")
    try:
        with pytest.raises(InputError, match=match):
            bad(w, values)
    finally:
        if "closed" not in match:
            w.abort()
    if "closed" not in match:
        assert _only_old_file_left(tmp_path, p)


def test_an_exception_in_the_block_aborts(tmp_path):
    land = _land()
    values = _float_values(land.size)
    p = _old_file(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with LandRasterWriter(p, GRID, land, np.nan, "x", "dBm") as w:
            w.write(0, land.size, values)
            raise KeyboardInterrupt
    assert _only_old_file_left(tmp_path, p)
    with pytest.raises(InputError, match=r"rsrp\.tif: values: closed after 100 of"):
        with LandRasterWriter(p, GRID, land, np.nan, "x", "dBm") as w:
            w.write(0, 100, values[:100])
    assert _only_old_file_left(tmp_path, p)
    shuffled = land.copy()
    shuffled[[10, 11]] = shuffled[[11, 10]]
    with pytest.raises(InputError, match=r"rsrp\.tif: land_flat: expected increasing flat indices \(land pixels 11:"):
        with LandRasterWriter(p, GRID, shuffled, np.nan, "x", "dBm") as w:
            w.write(0, 11, values[:11])   # 10 and 11 swapped: the next chunk starts below the last pixel
            w.write(11, 30, values[11:30])
    assert _only_old_file_left(tmp_path, p)
    with pytest.raises(InputError, match=r"nowhere.*rsrp\.tif: the destination folder does not exist"):
        LandRasterWriter(tmp_path / "nowhere" / "rsrp.tif", GRID, land, np.nan, "x", "dBm")
    with pytest.raises(InputError, match=r"rsrp\.tif: resampling: unknown resampling 'bilinearish'"):
        LandRasterWriter(p, GRID, land, np.nan, "x", "dBm", resampling="bilinearish")
    assert _only_old_file_left(tmp_path, p)


def test_no_path_makes_the_preview_alone(tmp_path, monkeypatch):
    """path None (a map without its GeoTIFF): the same preview, no file, no temporary file, nothing recorded."""
    monkeypatch.chdir(tmp_path)
    land = _land()
    values = _float_values(land.size)
    ref = _stream(tmp_path / "ref.tif", land, values, _chunks(land.size, 3000), preview_max_px=128)
    (tmp_path / "ref.tif").unlink()
    w = LandRasterWriter(None, GRID, land, np.nan, "x", "m", preview_max_px=128)
    for start, stop in _chunks(land.size, 3000):
        w.write(start, stop, values[start:stop])
    np.testing.assert_array_equal(w.close(), ref.preview)
    assert list(tmp_path.iterdir()) == []
    w = LandRasterWriter(None, GRID, land, np.nan, "x", "m")
    with pytest.raises(InputError, match=r"preview: values: closed after 0 of"):
        w.close()


def test_cog_copies_never_wait_for_a_slot_and_a_cancelled_one_leaves_no_file(tmp_path, monkeypatch):
    """Inside background_writes(1, max_pending=1) the COG copies of 4 closed writers are all handed over (none
    waits for the one slot, which a PNG still holds); an error in the block then cancels the copies not started:
    no temporary file stays, and no COG but complete ones."""
    import threading

    land = _land()
    values = _float_values(land.size)
    release = threading.Event()
    real = files._palette_png

    def held_palette_png(rgba, path, dpi=None):
        if not release.wait(20):   # holds the one slot (and its thread) until the copies are handed over
            raise TimeoutError("a COG copy waited for the slot")
        return real(rgba, path, dpi)

    monkeypatch.setattr(files, "_palette_png", held_palette_png)
    run = files.create_run_dir(tmp_path, "bg", name="run")
    with pytest.raises(KeyError):
        with files.background_writes(1, max_pending=1):
            files.write_png_rgba(run / "map.png", np.zeros((8, 8, 4), np.uint8))
            for k in range(4):
                _stream(run / f"r{k}.tif", land, values, _chunks(land.size, 7000))   # no wait: the slot is taken
            release.set()
            raise KeyError("stop")
    names = sorted(p.name for p in run.iterdir())
    assert [n for n in names if n.startswith(".") and n != files.RUN_MARKER] == []
    for n in names:
        if n.endswith(".tif"):
            with rasterio.open(run / n) as ds:
                assert np.isfinite(ds.read(1)).any()   # a complete COG (a copy that had started)
    files.abandon_run_dir(run)


def test_a_shared_sampler_and_sampled_values_give_the_same_previews(tmp_path):
    """Writers sharing one PreviewSampler, and a map-only writer given the sampled pixels alone (write_sampled),
    make the previews of writers of their own fed every pixel; a sampler of another grid is not used."""
    from sim.report.rasterfile import PreviewSampler

    land = _land()
    values = _float_values(land.size)
    spans = _chunks(land.size, 3000)
    whole = scatter_to_raster(GRID, land, values)
    for max_px, f in ((128, 5), (2048, 1)):
        sampler = PreviewSampler(GRID, land, max_px)
        assert sampler.f == f
        rows = np.minimum(np.arange(math.ceil(600 / f)) * f + f // 2, 599)
        cols = np.minimum(np.arange(math.ceil(300 / f)) * f + f // 2, 299)
        for k in range(2):   # the second writer uses the plans the first one found
            w = _stream(tmp_path / f"s{f}{k}.tif", land, values, spans, preview_max_px=max_px, sampler=sampler)
            np.testing.assert_array_equal(w.preview, whole[np.ix_(rows, cols)])
        w = LandRasterWriter(None, GRID, land, np.nan, "x", "m", preview_max_px=max_px, sampler=sampler)
        for start, stop in spans:
            pos = w.sampled(start, stop)
            assert (pos is None) == (f == 1)
            w.write_sampled(start, stop, values[start:stop] if pos is None else values[start:stop][pos])
        np.testing.assert_array_equal(w.close(), whole[np.ix_(rows, cols)])
    other = Grid("EPSG:32651", X0_M, Y0_M, RES_M, (600, 301))
    w = LandRasterWriter(None, other, land, np.nan, "x", "m", preview_max_px=128,
                         sampler=PreviewSampler(GRID, land, 128))
    assert w.preview_grid.shape == (120, 61)
    w = LandRasterWriter(tmp_path / "f.tif", GRID, land, np.nan, "x", "m")
    with pytest.raises(InputError, match=r"expected every land pixel's value: the raster has a file"):
        w.write_sampled(0, 10, values[:10])
    w.abort()
    w = LandRasterWriter(None, GRID, land, np.nan, "x", "m", preview_max_px=128)
    with pytest.raises(InputError, match=r"values: expected \d+ values \(the sampled land pixels of 0:3000\)"):
        w.write_sampled(0, 3000, values[:3000])
