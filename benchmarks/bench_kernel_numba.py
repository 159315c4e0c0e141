"""The numpy coverage kernel against a compiled (numba) twin of the same math, on real tiles; prints a table.

    pip install -e '.[numba]'            # numba is needed by this benchmark only
    .venv/bin/python benchmarks/bench_kernel_numba.py [--resolution-m 25] [--tiles 3] [--reps 5]

Why: at 25 m the coverage kernel is most of a whole-Shanghai run's CPU, and the run is over its time target
on 2 cores (README, "Big grids"). The architecture keeps the kernel pure numpy; this measures what a compiled
kernel would gain, so that the choice is made on a number.

What is timed, single-threaded, as CPU time (``time.process_time``, the minimum of ``--reps`` interleaved
rounds; another process on the machine changes wall time, less so CPU time), on ``--tiles`` tiles of 65,536
land pixels of configs/shanghai-2021.toml (starts spread over the land), for the group ``ctcu-n78`` (one
layer) and the co-sited group ``cmcc-n41 + cmcc-n28`` (their carrier-independent terms shared, as the
product shares them):

* numpy, whole: :func:`sim.kernel.coverage_blocks` with ``top_m = 8``, as a coverage task runs it;
* numpy, pairs: the same call less its per-pixel finish (``kernel._finish``: RSRP/SINR in dB, the O2I draws,
  rates; and the serving link's LOS probability) - what the numba twin computes;
* numba: the twin below. Per pixel and candidate site (K = 32): distance, the path-gain, LOS and zenith
  tables (node + fraction x slope), the LOS state from the site's LOS field, the shadow-fading field and its
  sigma (RMa beyond the breakpoint included), the vertical pattern, the bearing; per pair (3 sectors) the
  horizontal pattern and ``exp``; per pixel the serving sector (first of equal maxima), the load-weighted
  interference (float64, candidate order), the top-8 interferers and the residual. It covers the branches
  the Shanghai configs take (tables, sampled consistent LOS, shadow fading, one tilt and vertical beamwidth per
  site; one EIRP, beamwidth and load per layer) and refuses others.

Agreement is printed: the serving sector and the top-8 sets must match, the powers within 1e-3 dB (numba's
``exp``/``log``/``atan2`` are the C library's, numpy's its own SIMD ones: they differ in the last bits).

Measured 2026-12-01 on this project's 2-core machine (numba 0.68.1, numpy 2.4.6, three 25 m tiles, three
runs): numpy pairs 5.1-5.7 us per pixel-layer for ctcu-n78 and 3.6-4.1 for the co-sited pair; numba 3.9-4.4
and 2.5-3.0: **1.25-1.5x**. Agreement: serving sector and top-8 equal on 100 % of pixels, powers within
6e-5 dB. The twin's own breakdown: the per-value ``exp``, ``log`` and ``atan2`` calls (no SVML in the PyPI
llvmlite: they do not vectorise) and the two field reads are most of its time; numpy's kernel already runs
those as SIMD loops over contiguous arrays.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from functools import partial
from pathlib import Path
from unittest import mock

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

try:
    import numba
    from numba import njit
except ImportError:   # pragma: no cover - a benchmark's own dependency
    sys.exit("bench_kernel_numba.py: numba is not installed; install it with: pip install -e '.[numba]'")

from sim import coverage, kernel, pairpower, shadowing
from sim.app.run import layer_inputs, read_inputs
from sim.app.stages import StageTimer
from sim.config import load_scenario, with_overrides

F32 = np.float32
C = F32(math.log(10.0) / 10.0)
RAD2DEG = np.degrees(F32(1.0))
LNMIN = F32(pairpower.TABLE_LN_D2_MIN)
INVSTEP = F32(1.0 / pairpower.TABLE_STEP)
XMAX = F32(pairpower.TABLE_N - 1.001)          # pairpower's last usable node
QUARTER = F32(0.25)
NINETY = F32(90.0)
F360 = F32(360.0)
SHIFT = shadowing.LOS_SHIFT_CELLS
MASK = shadowing.N_CELLS - 1
LOGN = shadowing.N_CELLS.bit_length() - 1
CHUNK_PX = 128
GROUPS = (("ctcu-n78",), ("cmcc-n41", "cmcc-n28"))


@njit(cache=False, nogil=True)
def _pair_powers(px, py, cand, c0, nc, g, t, P):
    """Phase 1 for pixels ``c0:c0+nc``, site slot by site slot: the powers of every pair into ``P[L, K*S, nc]``.
    ``g``: the sites' arrays (shared by the layers); ``t``: the layers' own, stacked on axis 0."""
    sx, sy, ox, oy, cpm_state, combo_off, zlos, theta_tab, z32, cpm_state3, nsec, state_off = g
    gain, sig3, dbp2, tilt, c_v, sla, a_max_c, c_h, az, far = t
    n, k, s = cand.shape
    L = gain.shape[0]
    for j in range(k):
        for ii in range(nc):
            i = c0 + ii
            lead = max(cand[i, j, 0], 0)
            dx = np.float32(px[i] - sx[lead])
            dy = np.float32(py[i] - sy[lead])
            cpm = cpm_state[lead]                   # the LOS-state field (TR 38.901 7.6.3.3)
            ix = (np.int32(dx * cpm + ox[lead]) + SHIFT) & MASK
            iy = (np.int32(dy * cpm + oy[lead]) + SHIFT) & MASK
            draw = z32[(iy << LOGN) | ix]
            d2 = dx * dx + dy * dy
            x = min((np.log(max(d2, QUARTER)) - LNMIN) * INVSTEP, XMAX)
            kf = np.floor(x)
            x = x - kf
            kk = np.int32(kf) + combo_off[lead]
            il = np.int64(draw < zlos[kk, 0] + x * zlos[kk, 1])
            kst = kk + il * state_off
            cp = cpm_state3[il * nsec + lead]       # the shadow-fading field at the state's distance
            sf = z32[((np.int32(dy * cp + oy[lead]) & MASK) << LOGN) | (np.int32(dx * cp + ox[lead]) & MASK)]
            theta = theta_tab[kk, 0] + x * theta_tab[kk, 1]
            brg = np.arctan2(dx, dy) * RAD2DEG
            for lay in range(L):
                lng = gain[lay, kst, 0] + x * gain[lay, kst, 1]
                st = il
                if far:
                    st += il & np.int64(d2 > dbp2[lay, lead])
                lng = lng - np.float32(sf * sig3[lay, st * nsec + lead])
                y = theta - NINETY - tilt[lay, lead]
                av = min(y * y * c_v[lay], sla[lay]) * C
                for q in range(s):
                    sec = cand[i, j, q]
                    a = abs(brg - az[lay, max(sec, 0)])
                    a = min(a, F360 - a)
                    a = min(a * a * c_h[lay] + av, a_max_c[lay])
                    P[lay, j * s + q, ii] = np.exp(lng - a) if sec >= 0 else np.float32(0.0)


@njit(cache=False, nogil=True)
def _reduce(cand, c0, nc, P, load, load64, s_out, i_out, best_out, top_sec, top_mw, resid):
    """Phase 2 per pixel: the float64 sum in candidate order, the serving pair and the next ``m`` by insertion."""
    n, k, s = cand.shape
    L, ks = P.shape[0], P.shape[1]
    m = top_sec.shape[2]
    mm = m + 1
    tv = np.empty(mm, np.float32)
    tr = np.empty(mm, np.int64)
    acc = np.zeros(8, np.float64)
    for lay in range(L):
        for ii in range(nc):
            i = c0 + ii
            tot = 0.0
            cnt = 0
            for row in range(ks):
                p = P[lay, row, ii]
                tot += np.float64(p)
                if cnt < mm:
                    pos = cnt
                    cnt += 1
                elif p > tv[mm - 1]:
                    pos = mm - 1
                else:
                    continue
                while pos > 0 and p > tv[pos - 1]:
                    tv[pos] = tv[pos - 1]
                    tr[pos] = tr[pos - 1]
                    pos -= 1
                tv[pos] = p
                tr[pos] = row
            sig = tv[0]
            b = cand[i, tr[0] // s, tr[0] % s]
            tt = max((tot - np.float64(sig)) * load[lay], 0.0)
            s_out[lay, i] = sig
            i_out[lay, i] = tt
            best_out[lay, i] = b if sig > 0.0 else -1
            acc[:] = 0.0
            for q in range(m):
                sec_q = -1
                mw = np.float32(0.0)
                if q + 1 < cnt and tv[q + 1] > 0.0:
                    mw = tv[q + 1]
                    sec_q = cand[i, tr[q + 1] // s, tr[q + 1] % s]
                top_sec[lay, i, q] = sec_q
                top_mw[lay, i, q] = mw
                acc[q & 7] += load64[lay, max(sec_q, 0)] * np.float64(mw)
            # numpy's sum of 8 terms along a row: ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7))
            ssum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
            resid[lay, i] = max(tt - ssum, 0.0)


@njit(cache=False, nogil=True)
def numba_kernel(px, py, cand, g, t, load, load64, s_out, i_out, best_out, top_sec, top_mw, resid):
    """The twin: chunks of :data:`CHUNK_PX` pixels, phase 1 then phase 2."""
    n, k, s = cand.shape
    P = np.empty((t[0].shape[0], k * s, CHUNK_PX), np.float32)
    for c0 in range(0, n, CHUNK_PX):
        nc = min(CHUNK_PX, n - c0)
        _pair_powers(px, py, cand, c0, nc, g, t, P)
        _reduce(cand, c0, nc, P, load, load64, s_out, i_out, best_out, top_sec, top_mw, resid)


def pack(layers, seed):
    """The layers' kernel constants (:class:`sim.pairpower.PreparedLayer`) as the twin's plain arrays."""
    first = layers[0]
    sh0 = first.shadow_terms(seed)
    rec = first.site_record(seed)
    f = rec[:, 2:].view(np.float32)
    nsec = first.x_m.size

    def per_sector(v, dtype=np.float32):
        return np.ascontiguousarray(np.broadcast_to(np.asarray(v), (nsec,)), dtype=dtype)

    def pairs(name, lay=first):
        return np.ascontiguousarray(lay.packed[name].view(np.float32).reshape(-1, 2))

    g = (np.ascontiguousarray(rec[:, 0]), np.ascontiguousarray(rec[:, 1]), per_sector(f[:, 0]), per_sector(f[:, 1]),
         per_sector(f[:, 2]), per_sector(first.combo_off, np.int32), pairs("z_los"), pairs("theta"), sh0["z32"],
         sh0["cpm_state3"].astype(np.float32), nsec, np.int64(first.state_off))
    cols = {k: [] for k in ("gain", "sig3", "dbp2", "tilt", "c_v", "sla", "a_max_c", "c_h", "az", "load", "load64")}
    far = False
    for lay in layers:
        ok = (lay.use_tables and lay.los_field and lay.shadowed and lay.v_by_site and not lay.v_per_site
              and all(np.ndim(v) == 0 for v in (lay.eirp_c, lay.c_h, lay.c_v, lay.load)))
        if not ok:
            sys.exit("bench_kernel_numba.py: the twin covers tables, sampled consistent LOS, shadow fading, one "
                     "tilt per site and one EIRP/beamwidth/load per layer; this layer differs")
        sh = lay.shadow_terms(seed)
        far = far or bool(sh["far"])
        for name, v in (("gain", pairs("gain_state", lay)), ("sig3", sh["sig_state3"].astype(np.float32)),
                        ("dbp2", per_sector(sh["d_bp2"])), ("tilt", per_sector(lay.tilt)), ("c_v", F32(lay.c_v)),
                        ("sla", F32(lay.sla)), ("a_max_c", F32(lay.a_max_c)), ("c_h", F32(lay.c_h)),
                        ("az", lay.az.astype(np.float32)), ("load", float(lay.load)), ("load64", lay.load64)):
            cols[name].append(v)
    st = {k: np.ascontiguousarray(np.stack(v)) for k, v in cols.items()}
    t = tuple(st[k] for k in ("gain", "sig3", "dbp2", "tilt", "c_v", "sla", "a_max_c", "c_h", "az")) + (far,)
    return g, t, st["load"].astype(np.float64), st["load64"]


def run_numba(x, y, cand, packed, top_m):
    g, t, load, load64 = packed
    n, L = x.shape[0], load.shape[0]
    m = min(top_m, cand.shape[1] * cand.shape[2] - 1)
    if m != 8:   # _reduce adds the residual's terms as numpy adds a row of 8
        sys.exit(f"bench_kernel_numba.py: the twin keeps the top 8 interferers, this scenario {m}")
    outs = (np.empty((L, n)), np.empty((L, n)), np.empty((L, n), np.int32), np.empty((L, n, m), np.int32),
            np.empty((L, n, m), np.float32), np.empty((L, n)))
    numba_kernel(x, y, cand, g, t, load, load64, *outs)
    return outs


def numpy_pairs(x, y, flat, cand, layers, seed, top_m):
    """:func:`sim.kernel.coverage_blocks` less its per-pixel finish: ``(s_mw, i_mw, best, top)`` per layer."""
    with mock.patch.object(kernel, "_finish", lambda s_mw, i_mw, best, lay, radio, top, *a: (s_mw, i_mw, best, top)), \
            mock.patch.object(kernel, "serving_los_probability", lambda *a: None):
        return kernel.coverage_blocks(x, y, flat, cand, layers, seed, top_m=top_m)


def _db(a):
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(a)


def agreement(ref, nb, lay) -> dict:
    s_np, i_np, b_np, (ts_np, tm_np, r_np) = ref
    s_nb, i_nb, b_nb, ts_nb, tm_nb, r_nb = (o[lay] for o in nb)
    ok = b_np >= 0
    pos = ok & (i_np > 0)
    d_sig = np.abs(_db(s_np[ok]) - _db(s_nb[ok]))
    d_int = np.abs(_db(i_np[pos]) - _db(i_nb[pos]))
    used = ts_np >= 0
    d_top = np.abs(_db(tm_np[used]) - _db(tm_nb[used])) if used.any() else np.zeros(1)
    return {"serving equal": float((b_np == b_nb).mean()),
            "top-8 equal": float(np.all(ts_np == ts_nb, axis=1).mean()),
            "max dB (signal, interference, top-8)": max(float(d_sig.max()), float(d_int.max()), float(d_top.max()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "shanghai-2021.toml"))
    ap.add_argument("--resolution-m", type=float, default=25.0)
    ap.add_argument("--tiles", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    sc = with_overrides(load_scenario(Path(args.config)), resolution_m=args.resolution_m)
    inp = read_inputs(sc, StageTimer())
    shared = layer_inputs(sc, inp.rasters, inp.sectors)
    r = inp.rasters
    n_tile = 65536
    starts = [int((r.n_land - n_tile) * (i + 0.5) / args.tiles) for i in range(args.tiles)]
    print(f"{Path(args.config).name} at {args.resolution_m:g} m: {args.tiles} tiles of {n_tile:,} land pixels; "
          f"numba {numba.__version__}, numpy {np.__version__}; CPU s, min of {args.reps} rounds")
    groups = [tuple(k) for k in coverage.layer_groups(shared) if tuple(k) in GROUPS]
    print(f"{'group':<22} {'numpy whole':>12} {'numpy pairs':>12} {'numba':>8} {'pairs/numba':>12}   "
          f"(us CPU per pixel-layer)  agreement")
    compiled = False
    for keys in groups:
        first = shared[keys[0]]
        layers = [shared[k]["prepared"] for k in keys]
        seed, top_m = first["seed"], first["top_m"]
        packed = pack(layers, seed)
        tot = np.zeros(3)
        worst: dict = {}
        n_px = 0
        for a in starts:
            flat = r.land_flat[a:a + n_tile]
            x, y = r.grid.centres_m(flat)
            cand = np.ascontiguousarray(first["index"].tile_candidates(r.grid, flat, first["tile_px"]))
            if not compiled:
                c0 = time.process_time()
                run_numba(x[:16], y[:16], cand[:16], packed, top_m)
                print(f"  (numba compile: {time.process_time() - c0:.1f} s CPU, once per process)")
                compiled = True
            fns = (partial(kernel.coverage_blocks, x, y, flat, cand, layers, seed, top_m=top_m),
                   partial(numpy_pairs, x, y, flat, cand, layers, seed, top_m),
                   partial(run_numba, x, y, cand, packed, top_m))
            best = [math.inf] * 3
            res = [None] * 3
            for _ in range(args.reps):        # interleaved rounds
                for i, fn in enumerate(fns):
                    c0 = time.process_time()
                    res[i] = fn()
                    best[i] = min(best[i], time.process_time() - c0)
            tot += best
            n_px += x.size
            for li in range(len(keys)):
                for name, v in agreement(res[1][li], res[2], li).items():
                    worst[name] = max(worst.get(name, v), v) if name.startswith("max") else min(worst.get(name, v), v)
        us = tot / n_px / len(keys) * 1e6
        agree = ", ".join(f"{k} {v:.3g}" for k, v in worst.items())
        print(f"{' + '.join(keys):<22} {us[0]:>12.2f} {us[1]:>12.2f} {us[2]:>8.2f} {us[1] / us[2]:>12.2f}   {agree}")


if __name__ == "__main__":
    main()
