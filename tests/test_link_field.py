"""The field link model: device classes, the SINR ceiling, the rank model and always-on interference.

Sources: 3GPP TS 38.306 V17 §4.1.2 (peak rate), TS 38.104 V17 Table 6.5.2.2-1 (EVM 3.5 % for
256QAM), TS 38.101-1 V17 Table 5.3.2-1 (N_RB). The tests hold the properties the issue asks
for: a 1-carrier 4-layer class gives the TS 38.306 peak rate, the class mix is the
share-weighted sum, no spectral efficiency above the ceiling's, rates monotone in SINR, and
a larger min_load never raises a rate.
"""

import dataclasses
import types

import numpy as np
import pytest
from reference_loop import make_sectors

from sim import kernel, linkfield, linkmodel
from sim.busyload import rates_for_load
from sim.coverage import site_index
from sim.errors import InputError
from sim.kernel import activity, coverage_block
from sim.results import LayerRadio

PEAK_RTOL = 1e-12         # the same product in another order: float64 rounding only
SINR_GRID_DB = np.round(np.arange(-2000, 8001) * 0.01, 2)  # -20..80 dB in 0.01 dB steps
RADIO = LayerRadio("n78", fc_ghz=3.5, bw_hz=200e6, scs_khz=30, noise_figure_db=9.0, max_layers=4, dl_share=0.643)


def test_evm_ceiling_of_the_256qam_requirement():
    # TS 38.104 Table 6.5.2.2-1: 3.5 % -> -20 log10(0.035) = 29.12 dB (hand evaluation)
    assert linkfield.evm_sinr_ceiling_db(linkfield.EVM_256QAM_BS_PCT) == pytest.approx(29.119, abs=1e-3)
    # independent impairments add in power: 3.5 % and 2 % -> -10 log10(0.035**2 + 0.02**2) = 27.89 dB
    assert linkfield.evm_sinr_ceiling_db(3.5, 2.0) == pytest.approx(27.89, abs=0.01)
    with pytest.raises(InputError, match="evm_pct"):
        linkfield.evm_sinr_ceiling_db(0.0)


@pytest.mark.parametrize("bw_hz, n_prb", [(100e6, 273), (160e6, 273), (200e6, 273)])
def test_one_carrier_four_layer_class_gives_the_ts38306_peak_rate(bw_hz, n_prb):
    """TS 38.306 §4.1.2: 273 PRB (100 MHz, 30 kHz), 4 layers, 256QAM, f = 1, OH 0.14 -> 2.337 Gbit/s."""
    assert linkfield.n_prb_aggregated(bw_hz, 30, 1) == n_prb
    cls = [(1.0, linkfield.n_prb_aggregated(bw_hz, 30, 1), 4)]
    rate = linkfield.device_mix_rate_bps(np.float64(60.0), cls, 30, 1.0, overhead=linkmodel.NR_OVERHEAD_FR1_DL)
    peak = linkmodel.nr_peak_rate_bps(n_prb, 30, 4, 8)
    assert float(rate) == pytest.approx(peak, rel=PEAK_RTOL)
    assert peak == pytest.approx(2.337e9, rel=1e-3)


def test_two_carrier_aggregation_of_160_mhz():
    # TS 38.101-1 Table 5.3.2-1 at 30 kHz: 100 MHz 273 PRB + 60 MHz 162 PRB
    assert linkfield.n_prb_aggregated(160e6, 30, 2) == 435
    assert linkfield.n_prb_aggregated(160e6, 30, 5) == 435  # more carriers than the block has: all of it


def test_class_mix_is_the_share_weighted_sum():
    rng = np.random.default_rng(3)
    sinr = rng.uniform(-10, 45, 5000)
    p_los = rng.uniform(0, 1, 5000)
    classes = [(0.6, 273, 4), (0.3, 546, 4), (0.1, 273, 2)]
    kw = dict(scs_khz=30, dl_share=0.643, overhead=0.25, sinr_max_db=28.0, los_prob=p_los,
              thresholds_db=(3.0, 11.0, 20.0), los_thresholds_db=(3.0,))
    mix = linkfield.device_mix_rate_bps(sinr, classes, **kw)
    parts = sum(s * linkfield.device_mix_rate_bps(sinr, [(1.0, n, m)], **kw) for s, n, m in classes)
    np.testing.assert_allclose(mix, parts, rtol=1e-12)


def test_no_spectral_efficiency_above_the_ceiling():
    sinr_max = 28.0
    eff = linkfield.effective_sinr_db(SINR_GRID_DB, sinr_max)
    assert np.all(eff < sinr_max) and np.all(eff < SINR_GRID_DB)
    se = linkmodel.spectral_efficiency_bps_hz(eff)
    assert se.max() <= linkmodel.spectral_efficiency_bps_hz(np.float64(sinr_max))
    # and the kernel's per-pixel efficiency on a scene whose geometric SINR exceeds the ceiling
    sec, px, py, pid = _scene()
    radio = dataclasses.replace(RADIO, sinr_max_db=sinr_max)
    b = coverage_block(px, py, pid, site_index(sec, 10).candidates(px, py), sec, radio, np.zeros(sec.n_sectors))
    assert np.nanmax(b.sinr_db) > sinr_max + 5.0  # the scene reaches beyond the ceiling
    assert np.nanmax(b.se_bps_hz) <= linkmodel.spectral_efficiency_bps_hz(np.float32(sinr_max))


@pytest.mark.parametrize("p_los", [0.0, 0.4, 1.0])
def test_rate_is_monotone_in_sinr(p_los):
    classes = [(0.8, 273, 4), (0.2, 546, 4)]
    rate = linkfield.device_mix_rate_bps(SINR_GRID_DB, classes, 30, 0.643, 0.25, sinr_max_db=28.0,
                                         los_prob=np.full(SINR_GRID_DB.shape, p_los),
                                         thresholds_db=(3.0, 11.0, 20.0), los_thresholds_db=(3.0,))
    assert np.all(np.diff(rate) >= 0.0)
    assert rate[-1] > rate[0] == 0.0


def test_rank_depends_on_sinr_and_los():
    sinr = np.array([0.0, 5.0, 15.0, 25.0])
    nlos = linkfield.expected_layers(sinr, 4, None, (3.0, 11.0, 20.0), (3.0,))
    los = linkfield.expected_layers(sinr, 4, np.ones(4), (3.0, 11.0, 20.0), (3.0,))
    half = linkfield.expected_layers(sinr, 4, np.full(4, 0.5), (3.0, 11.0, 20.0), (3.0,))
    np.testing.assert_array_equal(nlos, [1, 2, 3, 4])
    np.testing.assert_array_equal(los, [1, 2, 2, 2])
    np.testing.assert_array_equal(half, [1, 2, 2.5, 3])
    assert linkfield.expected_layers(sinr, 2, None, (3.0, 11.0, 20.0)).max() == 2  # 2 Rx device


def test_activity_of_idle_cells():
    assert activity(0.0, 0.1) == pytest.approx(0.1)
    assert activity(1.0, 0.1) == pytest.approx(1.0)
    np.testing.assert_array_equal(activity(np.array([0.0, 0.5]), 0.0), [0.0, 0.5])


def _scene(n_sites=20, n_pix=400, seed=5):
    rng = np.random.default_rng(seed)
    side = 2000.0
    sec = make_sectors(rng.uniform(0, side, n_sites), rng.uniform(0, side, n_sites), rng=rng)
    return sec, rng.uniform(0, side, n_pix), rng.uniform(0, side, n_pix), np.arange(n_pix)


def _rates(min_load, load):
    sec, px, py, pid = _scene()
    radio = dataclasses.replace(RADIO, min_load=min_load, sinr_max_db=28.0, rank_thresholds_db=(3.0, 11.0, 20.0),
                                rank_thresholds_los_db=(3.0,))
    cand = site_index(sec, 10).candidates(px, py)
    b = coverage_block(px, py, pid, cand, sec, radio, np.full(sec.n_sectors, 0.5), top_m=6)
    cov = types.SimpleNamespace(interference=b.interference, load=np.full(sec.n_sectors, 0.5),
                                los_prob_serving=b.los_prob_serving)
    return b, rates_for_load(cov, radio, 0.5)(load)


@pytest.mark.parametrize("load_kind", ["zero", "random", "full"])
def test_larger_min_load_never_raises_a_rate(load_kind):
    rng = np.random.default_rng(11)
    n_sec = _scene()[0].n_sectors
    load = {"zero": np.zeros(n_sec), "full": np.ones(n_sec), "random": rng.uniform(0, 0.3, n_sec)}[load_kind]
    prev = None
    for m in (0.0, 0.02, 0.1, 0.3):
        b, (r_in, r_out) = _rates(m, load)
        # the coverage run itself (own loads 0.5) too
        cur = (r_in, r_out, b.rate_indoor_bps, b.rate_outdoor_bps)
        if prev is not None:
            for a, c in zip(prev, cur):
                assert np.all(c <= a + 1e-3), m
        prev = cur
    # an idle neighbour at min_load interferes (below full load): the SINR is no longer noise-limited
    if load_kind != "full":
        assert np.nanmean(prev[1]) < np.nanmean(_rates(0.0, load)[1][1])


def test_kernel_weights_interferers_by_activity():
    """min_load a at load 0 equals min_load 0 at a uniform load a (the same interference weights)."""
    sec, px, py, pid = _scene()
    cand = site_index(sec, 10).candidates(px, py)
    a = coverage_block(px, py, pid, cand, sec, dataclasses.replace(RADIO, min_load=0.1), np.zeros(sec.n_sectors))
    b = coverage_block(px, py, pid, cand, sec, RADIO, np.full(sec.n_sectors, 0.1))
    np.testing.assert_allclose(a.sinr_db, b.sinr_db, atol=1e-5)
    assert kernel.serving_los_probability is not None
    assert np.all((a.los_prob_serving >= 0) & (a.los_prob_serving <= 1))


def test_adaptive_rank_is_monotone_and_reaches_the_peak_rate():
    """Rank adaptation (ZF combining, TS 38.214 5.2.2.2 rate-maximising RI): monotone in SINR;
    4 Rx at a high SINR without ceiling gives the TS 38.306 peak (4 layers at CQI 15)."""
    kw = dict(scs_khz=30, dl_share=1.0, overhead=linkmodel.NR_OVERHEAD_FR1_DL, rank_model="adaptive")
    peak = linkfield.device_mix_rate_bps(np.float64(70.0), [(1.0, 273, 4)], **kw)
    assert float(peak) == pytest.approx(linkmodel.nr_peak_rate_bps(273, 30, 4, 8), rel=PEAK_RTOL)
    p = np.full(SINR_GRID_DB.shape, 0.3)
    rate = linkfield.device_mix_rate_bps(SINR_GRID_DB, [(0.7, 273, 4), (0.3, 546, 2)], sinr_max_db=28.0,
                                         los_prob=p, los_max_layers=2, **kw)
    assert np.all(np.diff(rate) >= 0.0)
    layers, _ = linkfield.adaptive_layer_se_bps_hz(np.array([0.0, 10.0, 20.0, 35.0]), 4, None, 28.0)
    np.testing.assert_array_equal(layers, [1, 2, 3, 4])  # rank rises with SINR, 2-3 in mid cell
    los_layers, _ = linkfield.adaptive_layer_se_bps_hz(np.array([35.0]), 4, 2, 28.0)
    assert los_layers[0] == 2


def test_adaptive_rank_fast_path_equals_the_direct_evaluation():
    """The CQI staircase with shifted thresholds equals SE(effective(SINR + gain)) evaluated directly."""
    rng = np.random.default_rng(4)
    sinr = np.concatenate([rng.uniform(-15, 60, 20000), [np.nan]]).astype(np.float32)
    for c in (28.0, 0.0):
        for n, lmax in ((4, None), (4, 2), (2, None)):
            layers, se = linkfield.adaptive_layer_se_bps_hz(sinr, n, lmax, c)
            top = n if lmax is None else lmax
            direct = np.stack([L * linkmodel.spectral_efficiency_bps_hz(
                linkfield.effective_sinr_db(sinr + np.float32(10 * np.log10((n - L + 1) / L)), c))
                for L in range(1, top + 1)])
            np.testing.assert_array_equal(se[:-1], direct[:, :-1].max(axis=0))
            assert np.isnan(se[-1]) and layers[-1] == 0


def _adversarial_sinr(thresholds, dtype, rng):
    """Random SINRs, every threshold and its neighbouring floats, extremes and NaN."""
    t = np.asarray(thresholds, dtype=dtype)
    near = [t, np.nextafter(t, dtype(-np.inf)), np.nextafter(t, dtype(np.inf)),
            np.nextafter(np.nextafter(t, dtype(np.inf)), dtype(np.inf))]
    extremes = np.array([-np.inf, np.inf, -1e30, 1e30, -200.0, 200.0, 0.0, -0.0, 1e9, np.nan], dtype=dtype)
    return np.concatenate([rng.uniform(-40, 90, 50_000).astype(dtype), *near, extremes])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_staircase_rank_is_the_binary_search(dtype):
    """linkfield._Stairs.rank (a bin table) counts the thresholds at or below each value as
    np.searchsorted(side="right") does, at every threshold and the floats next to it."""
    rng = np.random.default_rng(11)
    for c in (28.0, None):
        st = linkfield._adaptive_stairs([(0.5, 273, 4), (0.5, 106, 2)], c, dtype)
        assert st.ok
        u = np.unique(st.reps[:-1][1:])
        x = _adversarial_sinr(u[u < 1e6], dtype, rng)
        want = np.searchsorted(u, x, side="right").astype(np.int64)
        want[np.isnan(x)] = u.size + 1
        np.testing.assert_array_equal(st.rank(x), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tabulated_adaptive_rates_have_the_bits_of_the_direct_evaluation(dtype, monkeypatch):
    """device_mix_rate_bps looks rates up by the SINR's rank among the thresholds: the same bits as
    evaluating every rank, indoors (no LOS mix) and outdoors (LOS-limited rank mixed by Pr_LOS)."""
    rng = np.random.default_rng(12)
    kw = dict(scs_khz=30, dl_share=0.75, overhead=linkmodel.NR_OVERHEAD_FR1_DL, rank_model="adaptive")
    for classes in ([(1.0, 273, 4)], [(0.7, 273, 4), (0.3, 106, 2)]):
        for c in (28.0, None):
            st = linkfield._adaptive_stairs(classes, c, dtype)
            u = np.unique(st.reps[1:-1])
            sinr = _adversarial_sinr(u[u < 1e6], dtype, rng)
            p = rng.uniform(0, 1, sinr.size).astype(dtype)
            p[::7] = np.nan
            for los in (None, p):
                monkeypatch.setattr(linkfield, "_TABULATE_MIN", 1)
                fast = linkfield.device_mix_rate_bps(sinr, classes, sinr_max_db=c, los_prob=los, los_max_layers=2, **kw)
                monkeypatch.setattr(linkfield, "_TABULATE_MIN", 10 ** 12)
                direct = linkfield.device_mix_rate_bps(sinr, classes, sinr_max_db=c, los_prob=los, los_max_layers=2,
                                                       **kw)
                assert fast.dtype == direct.dtype == dtype
                np.testing.assert_array_equal(fast.view(np.uint8), direct.view(np.uint8))
