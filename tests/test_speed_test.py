"""The speed-test indicator arithmetic (sim.indicators), on hand values."""

import math

import numpy as np
import pytest

from sim.errors import InputError
from sim.indicators import mixture_mean, speed_test_indicators, weighted_quantiles


def test_weighted_quantiles_by_hand():
    # values 10, 20, 30, 40 with weights 1, 1, 1, 1: cumulative 1, 2, 3, 4 of 4
    # q 0.1 -> 0.4 -> first value (10); q 0.5 -> 2 -> 20 (inverted CDF); q 0.9 -> 3.6 -> 40
    np.testing.assert_array_equal(weighted_quantiles([30, 10, 40, 20], [1, 1, 1, 1]), [10, 20, 40])
    # weight 7 on 100 pulls the median there: cumulative 1, 2, 9 of 9, median at 4.5 -> 100
    np.testing.assert_array_equal(weighted_quantiles([1, 2, 100], [1, 1, 7], [0.5]), [100])
    # NaN values and zero weights are left out
    np.testing.assert_array_equal(weighted_quantiles([np.nan, 5, 7], [3, 0, 1], [0.5]), [7])
    assert np.isnan(weighted_quantiles([np.nan], [1.0], [0.5])).all()
    with pytest.raises(InputError, match="weights"):
        weighted_quantiles([1, 2], [1, -1])


def test_speed_test_indicators_by_hand():
    # two districts, two networks (weights: residents x mobile share 0.6 / 0.4), rates in bit/s
    d = np.array([0, 0, 1])
    pop = np.array([100.0, 300.0, 50.0])
    net_a = np.array([100e6, 200e6, np.nan])       # network a does not serve pixel 2
    net_b = np.array([50e6, 400e6, 80e6])
    by_d, city = speed_test_indicators([net_a, net_b], [0.6 * pop, 0.4 * pop], d, 2)
    # district 0: tests (100, w60), (200, w180), (50, w40), (400, w120); total weight 400
    mean0 = (100 * 60 + 200 * 180 + 50 * 40 + 400 * 120) / 400.0
    assert by_d["mean"][0] == pytest.approx(mean0)
    # sorted: 50 (40), 100 (60 -> 100), 200 (180 -> 280), 400 (120 -> 400): p10 = 50 (40 >= 40),
    # p50 = 200 (280 >= 200), p90 = 400 (400 >= 360)
    assert (by_d["p10"][0], by_d["p50"][0], by_d["p90"][0]) == (50, 200, 400)
    # district 1: only network b tests, 80 Mbit/s
    assert by_d["mean"][1] == pytest.approx(80) and by_d["p50"][1] == 80
    # citywide: district 0's tests plus (80, w20); total 420; cumulative 40, 60, 120, 300, 420:
    # p10 at 42 -> 80, p50 at 210 -> 200, p90 at 378 -> 400
    assert city["mean"] == pytest.approx((mean0 * 400 + 80 * 20) / 420)
    assert city["p10"] == 80 and city["p50"] == 200 and city["p90"] == 400


def test_speed_test_with_no_test_in_a_district():
    by_d, city = speed_test_indicators([np.array([np.nan, 10e6])], [np.array([1.0, 1.0])], np.array([0, 1]), 2)
    assert math.isnan(by_d["mean"][0]) and math.isnan(by_d["p50"][0])
    assert by_d["mean"][1] == pytest.approx(10) and city["p90"] == pytest.approx(10)


def test_mixture_mean_skips_networks_without_service():
    out = mixture_mean([np.array([100.0, np.nan, np.nan]), np.array([50.0, 20.0, np.nan])], [0.75, 0.25])
    np.testing.assert_allclose(out[:2], [87.5, 20.0])
    assert np.isnan(out[2]) and out.dtype == np.float32
