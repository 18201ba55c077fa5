"""`openmrr report`: the charts a person would rather see than read, as PNGs and one HTML page.

The page embeds the PNGs (base64), so it is one self-contained file that opens offline.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from openmrr.built_warehouse import open_built

MOVEMENT_COLOURS = {
    "new_biz": "#2e7d32",
    "expansion": "#66bb6a",
    "reactivation": "#26a69a",
    "contraction": "#ffa726",
    "churn": "#e53935",
}


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    path: Path


# what the report reads
REPORT_TABLES = (("analytics", "metrics_monthly"), ("analytics", "mrr_activities"))


def _frames(warehouse: Path) -> dict[str, pd.DataFrame]:
    con = open_built(warehouse, REPORT_TABLES)
    try:
        queries = {
            "monthly": "select * from analytics.metrics_monthly order by month",
            "movers": """
                select coalesce(customer_name, customer_external_id) as customer, sum(mrr_movement) as change
                from analytics.mrr_activities
                where date >= (select max(month) from analytics.metrics_monthly) - interval 2 month
                group by 1 order by abs(sum(mrr_movement)) desc, 1 limit 10""",
            "currency": "select any_value(account_currency) as currency from analytics.mrr_activities",
        }
        return {name: con.execute(sql).df() for name, sql in queries.items()}
    finally:
        con.close()


def _numbers(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Decimal columns as floats, for plotting only (the tables keep exact decimals)."""
    converted = frame.copy()
    for column in columns:
        converted[column] = pd.to_numeric(converted[column], errors="coerce").astype(float)
    return converted


def render_charts(warehouse: Path, out_dir: Path) -> tuple[list[Chart], dict[str, str]]:
    """Write the PNG charts; return them and headline figures.

    Labels are data (customer names, the currency): matplotlib would read `$...$` in them as mathtext,
    drawing `$x^2$` as a formula and failing on `$^$`. No chart of ours uses mathtext, so it is off for
    every text drawn here (the Dagster asset's charts are these too)."""
    import matplotlib

    matplotlib.use("Agg")
    with matplotlib.rc_context({"text.parse_math": False}):
        return _draw_charts(warehouse, out_dir)


def _draw_charts(warehouse: Path, out_dir: Path) -> tuple[list[Chart], dict[str, str]]:
    """The charts and headline figures of `render_charts`, drawn with the caller's matplotlib settings."""
    import matplotlib.pyplot as plt

    frames = _frames(warehouse)
    monthly = _numbers(frames["monthly"], "mrr", "arr", "fx_impact", "net_mrr_movement", "customer_churn_rate",
                       "gross_mrr_churn_rate", *(f"{kind}_mrr" for kind in MOVEMENT_COLOURS))
    currency = frames["currency"]["currency"].iloc[0] or ""
    out_dir.mkdir(parents=True, exist_ok=True)
    months = pd.to_datetime(monthly["month"])
    charts: list[Chart] = []

    def save(figure, name: str, title: str) -> None:
        figure.suptitle(title, fontsize=13, fontweight="bold")
        figure.tight_layout()
        path = out_dir / f"{name}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        charts.append(Chart(name, title, path))

    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot(months, monthly["mrr"], color="#1565c0", linewidth=2.5, label="MRR")
    axis.fill_between(months, monthly["mrr"], color="#1565c0", alpha=0.1)
    axis.set_ylabel(f"MRR ({currency})")
    right = axis.twinx()
    right.plot(months, monthly["arr"], color="#6a1b9a", linestyle="--", label="ARR")
    right.set_ylabel(f"ARR ({currency})")
    axis.grid(alpha=0.3)
    save(figure, "mrr_arr", "MRR and ARR")

    figure, axis = plt.subplots(figsize=(9, 4.5))
    positive = negative = pd.Series(0.0, index=monthly.index)
    for kind, colour in MOVEMENT_COLOURS.items():
        values = monthly[f"{kind}_mrr"].fillna(0.0)
        base = positive if kind in ("new_biz", "expansion", "reactivation") else negative
        axis.bar(months, values, width=20, bottom=base, color=colour, label=kind)
        if kind in ("new_biz", "expansion", "reactivation"):
            positive = positive + values
        else:
            negative = negative + values
    axis.plot(months, monthly["net_mrr_movement"], color="black", marker="o", linewidth=1.5, label="net")
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_ylabel(currency)
    axis.legend(ncol=3, fontsize=8)
    axis.grid(alpha=0.3, axis="y")
    save(figure, "movements", "MRR movements by month")

    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot(months, monthly["customers"], color="#00838f", linewidth=2.5, label="customers")
    axis.set_ylabel("customers")
    right = axis.twinx()
    right.bar(months, monthly["customer_churn_rate"].fillna(0.0) * 100, width=10, color="#e53935", alpha=0.5,
              label="customer churn %")
    right.plot(months, monthly["gross_mrr_churn_rate"].fillna(0.0) * 100, color="#ef6c00", label="gross MRR churn %")
    right.set_ylabel("churn rate (%)")
    right.legend(loc="upper left", fontsize=8)
    axis.grid(alpha=0.3)
    save(figure, "customers_churn", "Customers and churn rates")

    movers = _numbers(frames["movers"], "change")
    figure, axis = plt.subplots(figsize=(9, 4))
    colours = ["#2e7d32" if change >= 0 else "#e53935" for change in movers["change"]]
    axis.barh(movers["customer"].astype(str)[::-1], movers["change"][::-1], color=colours[::-1])
    axis.set_xlabel(f"MRR change, last three months ({currency})")
    axis.grid(alpha=0.3, axis="x")
    save(figure, "top_movers", "Top movers")

    figure, axis = plt.subplots(figsize=(9, 3.5))
    fx = monthly["fx_impact"].fillna(0.0)
    axis.bar(months, fx, width=20, color=["#5c6bc0" if value >= 0 else "#8d6e63" for value in fx])
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_ylabel(currency)
    axis.grid(alpha=0.3, axis="y")
    save(figure, "fx_impact", "FX impact on MRR by month")

    last = frames["monthly"].iloc[-1] if len(frames["monthly"]) else None
    headline = {}
    if last is not None:
        headline = {
            "Month": f"{pd.Timestamp(last['month']):%B %Y}",
            "MRR": f"{last['mrr']:,.2f} {currency}",
            "ARR": f"{last['arr']:,.2f} {currency}",
            "Customers": f"{last['customers']:,}",
            "ARPA": "-" if pd.isna(last["arpa"]) else f"{last['arpa']:,.2f} {currency}",
            "Net MRR movement": f"{last['net_mrr_movement']:,.2f} {currency}",
        }
    return charts, headline


def write_report(warehouse: Path, out_dir: Path) -> Path:
    """PNG charts plus index.html embedding them; returns the HTML path."""
    charts, headline = render_charts(warehouse, out_dir)
    figures = "\n".join(
        f'<figure id="{chart.name}"><img alt="{html.escape(chart.title)}" '
        f'src="data:image/png;base64,{base64.b64encode(chart.path.read_bytes()).decode()}">'
        f"</figure>"
        for chart in charts
    )
    cards = "".join(f"<div class=card><span>{html.escape(k)}</span><b>{html.escape(v)}</b></div>"
                    for k, v in headline.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OpenMRR report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; }}
.cards {{ display: flex; flex-wrap: wrap; gap: .75rem; margin-bottom: 1.5rem; }}
.card {{ border: 1px solid #ddd; border-radius: 8px; padding: .6rem 1rem; min-width: 140px; }}
.card span {{ display: block; font-size: .8rem; color: #666; }} .card b {{ font-size: 1.15rem; }}
figure {{ margin: 0 0 1.5rem; }} img {{ width: 100%; border: 1px solid #eee; border-radius: 6px; }}
figcaption {{ color: #666; font-size: .85rem; }}
</style></head>
<body><h1>OpenMRR report</h1><div class="cards">{cards}</div>
{figures}
<p style="color:#888;font-size:.8rem">Generated from {html.escape(str(warehouse))}.</p>
</body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
