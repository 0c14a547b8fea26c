"""The study paper's tests as one family: every distinct difference its tables call, with Holm's correction over all
of them at once beside each table's own."""

from __future__ import annotations

from convladder.analysis.statistics import holm_family


def paper_family(context: dict) -> dict | None:
    """Every distinct difference the study paper tests (the questions, Table 5; the longer budgets, Table 6; the
    questions under Adam, Table 7; E's variants, Table 10; plain fp32 against bfloat16, Section 4.3), with Holm's
    correction over all of them at once, beside each table's own: how many differences the tables call, and which
    keep an adjusted p below 0.05 when the whole paper is one family (`kept`, `lost`: dicts of label, recipe, low,
    high, epoch, verdict, source and p, the p-value adjusted over the whole paper),
    and the sources whose tests are counted, in order (questions, longer, robustness,
    variants, precision). A comparison two tables share
    (Table 6's first budget is Table 5's runs) counts once. None when the paper tests nothing."""
    tests: dict[tuple, tuple[dict, object]] = {}  # (recipe, low, high, epoch) -> (what it is, its comparison)

    def add(source: str, recipe: str, low: str, high: str, epoch: int | None, label: str, comparison) -> None:
        tests.setdefault((recipe, low, high, epoch), (dict(label=label, recipe=recipe, low=low, high=high, epoch=epoch,
                                                           verdict=comparison.verdict, source=source), comparison))

    for s in context["conclusions"]["steps"]:
        epoch = s["at_epoch"] or s["epochs_low"]
        add("questions", "sgd", s["low"], s["high"], epoch, f"{s['high']} against {s['low']} after {epoch} epochs", s["c"])
    for v in (context.get("longer") or {}).get("verdicts", []):
        add("longer", "sgd", v["low"], v["high"], v["budget"], f"{v['high']} against {v['low']} after {v['budget']} epochs",
            v["c"])
    for r in (context.get("robustness") or {}).get("rows", []):
        if r.adam is not None:
            add("robustness", "adam", r.low, r.high, None, f"{r.high} against {r.low} under Adam", r.adam.comparison)
    for v in (context.get("ladder_diagnosis") or {}).get("variants", []):
        if v.get("c") is not None:
            add("variants", "variant", "E", v["name"], None, f"{v['name']} against E", v["c"])
    for r in (context.get("probes") or {}).get("precision", []):  # Section 4.3: plain fp32 against bfloat16
        add("precision", "precision", r["model"], f"{r['model']} in fp32", None, f"{r['model']} in fp32 against bfloat16",
            r["c"])
    # a comparison with fewer seeds a side than a verdict needs calls nothing, and is left out of the family
    adjusted = holm_family([c for _, c in tests.values()])
    tested = [(what, c, p) for (what, c), p in zip(tests.values(), adjusted) if p is not None]
    if not tested:
        return None
    called = [(dict(what, p=p), p) for what, c, p in tested if c.verdict != "inconclusive"]
    lost = [what for what, p in called if p >= 0.05]
    return dict(tests=len(tested), called=len(called), kept=[what for what, p in called if p < 0.05], lost=lost,
                # (recipe, low, high, epoch) of each lost one: what the tables' marks and the prose look up
                lost_keys=[(w["recipe"], w["low"], w["high"], w["epoch"]) for w in lost],
                sources=list(dict.fromkeys(what["source"] for what, _, _ in tested)))  # where the counted tests are
