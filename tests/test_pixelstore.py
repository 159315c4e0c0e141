"""The pixel store (per-pixel arrays of a run on disk) and the chunked reductions over it.

A reduction over the store's chunks must give the bits of the same reduction over whole arrays
(``np.bincount`` adds a bin's weights in input order): then a run's figures do not depend on the
chunks, the tiles, the workers or the engine.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from sim import indicators as I
from sim import pixelstore
from sim.errors import InputError
from sim.pixelstore import PixelStore, bincount_onto, chunks


def test_tiles_written_in_any_order_read_back_in_chunks():
    rng = np.random.default_rng(3)
    values = rng.random(10_001).astype(np.float32)
    store = PixelStore(values.size)
    tiles = chunks(values.size, 1234)
    for a, b in reversed(tiles):                      # tiles finish in any order
        store.write("x", a, values[a:b])
    np.testing.assert_array_equal(np.concatenate([store.read("x", a, b) for a, b in store.chunks(999)]), values)
    np.testing.assert_array_equal(store.array("x"), values)
    assert store.read("x", 10, 20).dtype == np.float32
    folder = store.dir
    store.close()
    assert not os.path.exists(folder)


def test_a_write_outside_the_land_pixels_is_refused():
    store = PixelStore(100)
    store.create("x", np.float32)
    with pytest.raises(InputError, match="x"):
        store.write("x", 95, np.zeros(10, np.float32))
    with pytest.raises(KeyError, match="no array 'y'"):
        store.read("y")


def test_the_store_folder_goes_with_the_store():
    store = PixelStore(10)
    folder = store.dir
    del store
    assert not os.path.exists(folder)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 50_000])
def test_bincount_over_chunks_has_the_bits_of_one_bincount(chunk):
    rng = np.random.default_rng(chunk)
    keys = rng.integers(0, 40, 20_000)
    w = rng.lognormal(3.0, 2.0, keys.size)            # many magnitudes: a sum's rounding depends on its order
    total = np.zeros(40)
    for a, b in chunks(keys.size, chunk):
        total = bincount_onto(total, keys[a:b], w[a:b])
    whole = np.bincount(keys, weights=w, minlength=40)
    assert np.array_equal(total, whole)
    # summing per-chunk bincounts instead is not exact: the check above can fail
    naive = sum(np.bincount(keys[a:b], weights=w[a:b], minlength=40) for a, b in chunks(keys.size, 1000))
    assert not np.array_equal(naive, whole)


def test_bincount_onto_counts_without_weights_and_refuses_keys_outside_the_bins():
    keys = np.array([3, 0, 3, 3, 1])
    total = np.array([0.5, 0.0, 0.0, 1e16])
    got = bincount_onto(total, keys)
    # one bincount with the running totals as leading entries: 1e16 + 1 + 1 + 1 added one by one stays 1e16
    whole = np.bincount(np.concatenate([np.arange(4), keys]), weights=np.concatenate([total, np.ones(5)]))
    assert np.array_equal(got, whole) and got[3] == 1e16 and got[0] == 1.5
    assert total[3] == 1e16                                                # the running total is not changed
    for bad in ([0, 4], [-1, 2]):
        with pytest.raises(ValueError, match=r"keys outside \[0, 4\)"):
            bincount_onto(total, np.array(bad), np.ones(2))


def _pixels(n, seed=0):
    rng = np.random.default_rng(seed)
    rsrp = rng.normal(-95, 12, n).astype(np.float32)
    rsrp[rng.random(n) < 0.05] = np.nan
    return dict(district_idx=rng.integers(0, 5, n), population=rng.lognormal(2.0, 1.5, n),
                rsrp_outdoor_dbm=rsrp, sinr_outdoor_db=rng.normal(5, 8, n).astype(np.float32),
                rsrp_indoor_dbm=rsrp - 15, sinr_indoor_db=rng.normal(3, 8, n).astype(np.float32),
                rate_unloaded_bps=rng.lognormal(19, 1.2, n).astype(np.float32),
                rate_busy_bps=rng.lognormal(18.5, 1.2, n).astype(np.float32))


def test_indicators_over_chunks_are_those_of_the_whole_arrays():
    px = _pixels(30_000)
    kw = dict(rsrp_min_dbm=-110.0, sinr_min_db=-3.0, rate_gigabit_bps=1e9, rate_busy_min_bps=1e8, n_districts=5)
    whole_d, whole_c = I.physical_indicators(**px, **kw)
    sums = None
    for a, b in chunks(30_000, 4321):
        sums = I.physical_sums(sums, **{k: v[a:b] for k, v in px.items()}, **kw)
    by_d, city = I.shares_from_sums(sums)
    assert by_d.keys() == whole_d.keys()
    for k in whole_d:
        assert np.array_equal(by_d[k], whole_d[k], equal_nan=True), k
        assert city[k] == whole_c[k], k


@pytest.mark.slow
def test_a_run_is_the_same_whatever_the_chunks(monkeypatch):
    """configs/tiny.toml simulated with the store's reductions in chunks of 997 pixels (and tiles of a fifth of
    the land) against one chunk: the same indicators, rasters and cells table, bit for bit."""
    import dataclasses

    from sim import api

    sc = api.load_config("configs/tiny.toml")
    ref = api.simulate(sc, workers=1)
    monkeypatch.setattr(pixelstore, "CHUNK_PX", 997)
    small = dataclasses.replace(sc, radio=dataclasses.replace(sc.radio, block_size=ref.inputs.rasters.n_land // 5))
    other = api.simulate(small, workers=2)
    assert other.citywide == ref.citywide
    assert other.indicators.equals(ref.indicators)
    assert other.raster_names() == ref.raster_names()
    for name in ref.raster_names():
        np.testing.assert_array_equal(other.raster(name), ref.raster(name), err_msg=name)
    assert other.busy.cells.equals(ref.busy.cells)


@pytest.mark.parametrize("chunk", [777, 50_000])
def test_speed_test_in_two_passes_is_that_of_the_whole_arrays(chunk):
    """Percentiles from a histogram pass then the tests of their bins: the values of the sort of all tests
    (:func:`sim.indicators.weighted_quantiles`); the mean the same to rounding (it is added in pixel order)."""
    rng = np.random.default_rng(11)
    n = 40_000
    nets = [rng.lognormal(19, 1, n).astype(np.float32) for _ in range(2)]
    nets[1][rng.random(n) < 0.1] = np.nan
    nets[0][:500] = np.float32(2.5e8)                  # ties
    pop = rng.lognormal(2, 1.5, n)
    d = rng.integers(0, 6, n)
    shares = (0.7, 0.3)
    whole_d, whole_c = I.speed_test_indicators(nets, [pop * s for s in shares], d, 6)
    sums = I.SpeedTestSums(6)
    for add in (sums.add, sums.add_again):
        for a, b in chunks(n, chunk):
            for i in range(2):
                add(nets[i][a:b], pop[a:b] * shares[i], d[a:b])
    by_d, city = sums.result()
    for k in ("p10", "p50", "p90"):
        assert np.array_equal(by_d[k], whole_d[k]), k
        assert city[k] == whole_c[k], k
    np.testing.assert_allclose(by_d["mean"], whole_d["mean"], rtol=1e-12)
    assert city["mean"] == pytest.approx(whole_c["mean"], rel=1e-12)
