"""Charts that are not maps: the site-planning curve."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.errors import InputError

from .frame import FAIL_COLOUR, PASS_COLOUR

__all__ = [
    "plan_curve_figure",
]

def plan_curve_figure(sites_added, covered_share, target_share: float, title: str = "Site planning") -> Figure:
    """Covered population share against the number of sites added (``gigacity plan``).

    Parameters
    ----------
    sites_added : array [n] of int
        0, 1, 2, ... sites added.
    covered_share : array [n]
        Covered share of the population after that many additions, in [0, 1].
    target_share : float
        The target, drawn as a dashed line.
    title : str
        Title with the scenario and layer.
    """
    x = np.asarray(sites_added, dtype=np.float64)
    y = 100.0 * np.asarray(covered_share, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise InputError("plan_curve_figure", "covered_share",
                         f"expected two 1-D arrays of one non-zero length, got {x.shape} and {y.shape}")
    fig = Figure(figsize=(7.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.11, 0.12, 0.85, 0.78))
    ax.plot(x, y, color="#2c7fb8", linewidth=1.6, marker="o" if x.size <= 40 else None, markersize=3,
            label="covered population")
    ax.axhline(100.0 * float(target_share), color=FAIL_COLOUR, linestyle="--", linewidth=1.0,
               label=f"target {100.0 * float(target_share):.2f} %")
    hit = np.flatnonzero(y >= 100.0 * float(target_share) - 1e-9)
    if hit.size:
        ax.axvline(x[hit[0]], color=PASS_COLOUR, linestyle=":", linewidth=1.0,
                   label=f"reached with {int(x[hit[0]]):,} sites")
    ax.set_xlabel("sites added")
    ax.set_ylabel("population covered indoors (%)")
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_xlim(0, max(float(x.max()), 1.0))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig
