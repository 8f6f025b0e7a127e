"""Exact oracles and independent rule checks for the matching engine's tests and benchmark.

Subcommands (each prints one JSON object on stdout):
  networkx --graph EDGES          max_weight_matching(maxcardinality=True): K = 1 optimum
  highs --graph EDGES --k K       exact b-matching as a 0/1 integer program solved by HiGHS
  check-rules --users USERS --suggestions OUT --run-date D [--history H] [--k K]
              [--min-overlap-minutes 60] [--history-days 14]
                                  re-checks every hard rule of DESIGN 3.1 from the input records,
                                  with Python's zoneinfo, independently of the Rust code
EDGES lines are {"a":ID,"b":ID,"score":S}; ids may be strings or numbers.
"""

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo


SCALE = 1_000_000


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def read_graph(path):
    return [(e["a"], e["b"], int(round(e["score"] * SCALE))) for e in read_jsonl(path)]


def cmd_networkx(args):
    import networkx as nx

    edges = read_graph(args.graph)
    g = nx.Graph()
    g.add_weighted_edges_from(edges)
    t = time.perf_counter()
    m = nx.max_weight_matching(g, maxcardinality=True)
    seconds = time.perf_counter() - t
    total = sum(g[a][b]["weight"] for a, b in m)
    print(json.dumps({"pairs": len(m), "total": total / SCALE, "seconds": round(seconds, 3),
                      "edges": len(edges), "nodes": g.number_of_nodes()}))


def cmd_highs(args):
    import highspy
    import numpy as np

    edges = read_graph(args.graph)
    nodes = sorted({x for a, b, _ in edges for x in (a, b)}, key=str)
    index = {v: i for i, v in enumerate(nodes)}
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    inf = highspy.kHighsInf
    m = len(edges)
    lp = highspy.HighsLp()
    lp.num_col_ = m
    lp.num_row_ = len(nodes)
    lp.col_cost_ = np.array([w for _, _, w in edges], dtype=np.double)
    lp.col_lower_ = np.zeros(m)
    lp.col_upper_ = np.ones(m)
    lp.row_lower_ = np.full(len(nodes), -inf)
    lp.row_upper_ = np.full(len(nodes), float(args.k))
    # Column-wise matrix: edge e has a 1 in the rows of its two ends.
    starts, rows = [0], []
    for a, b, _ in edges:
        rows.extend(sorted((index[a], index[b])))
        starts.append(len(rows))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(rows, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(len(rows))
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.integrality_ = [highspy.HighsVarType.kInteger] * m
    h.passModel(lp)
    t = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - t
    x = h.getSolution().col_value
    chosen = [i for i in range(m) if x[i] > 0.5]
    total = sum(edges[i][2] for i in chosen)
    print(json.dumps({"pairs": len(chosen), "total": total / SCALE, "seconds": round(seconds, 3),
                      "status": h.modelStatusToString(h.getModelStatus()), "edges": m}))


DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def minutes(text):
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def age_on(birth, day):
    b = dt.date.fromisoformat(birth)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def utc_intervals(user, run_date):
    """The user's slots as [start, end) UTC datetimes for the week holding run_date (local dates)."""
    tz = ZoneInfo(user["timezone"])
    monday = run_date - dt.timedelta(days=run_date.weekday())
    out = []
    for s in user["availability"]:
        day = monday + dt.timedelta(days=DAYS.index(s["day"][:3].lower()))
        start, end = minutes(s["start"]), minutes(s["end"])
        length = end - start if end > start else 1440 - start + end
        local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=start)
        # Wall-clock arithmetic for the end, then both to UTC (fold=0: first occurrence).
        start_utc = local.replace(tzinfo=tz).astimezone(dt.timezone.utc)
        end_utc = (local + dt.timedelta(minutes=length)).replace(tzinfo=tz).astimezone(dt.timezone.utc)
        out.append((start_utc, end_utc))
    return out


def overlap_minutes(a, b, run_date):
    """Minutes both are free, on the cyclic UTC week (Sunday night wraps into Monday)."""
    monday = dt.datetime.combine(run_date - dt.timedelta(days=run_date.weekday()), dt.time(),
                                 tzinfo=dt.timezone.utc)
    week = 7 * 1440

    def minute_set(user):
        got = set()
        for s, e in utc_intervals(user, run_date):
            lo = int((s - monday).total_seconds() // 60)
            hi = int((e - monday).total_seconds() // 60)
            got.update(m % week for m in range(lo, hi))
        return got

    return len(minute_set(a) & minute_set(b))


def cmd_check_rules(args):
    run_date = dt.date.fromisoformat(args.run_date)
    users = {}
    for line in open(args.users, encoding="utf-8"):
        try:
            u = json.loads(line)
            users[u["user_id"]] = u
        except (ValueError, KeyError, TypeError):
            continue
    recent = set()
    if args.history:
        for h in read_jsonl(args.history):
            age = (run_date - dt.date.fromisoformat(h["date"])).days
            if 1 <= age <= args.history_days:
                recent.add(frozenset((h["a"], h["b"])))
    violations = Counter()
    degree = Counter()
    examples = []
    seen = set()
    for s in read_jsonl(args.suggestions):
        a, b = users.get(s["a"]), users.get(s["b"])
        degree[s["a"]] += 1
        degree[s["b"]] += 1
        broken = []
        key = frozenset((s["a"], s["b"]))
        if key in seen or s["a"] == s["b"]:
            broken.append("duplicate_pair")
        seen.add(key)
        if a is None or b is None:
            broken.append("unknown_user")
        else:
            if not (a["active"] and b["active"]):
                broken.append("inactive")
            if a["region"] != b["region"]:
                broken.append("region")
            if b["user_id"] in a.get("blocked", []) or a["user_id"] in b.get("blocked", []):
                broken.append("blocked")
            for x, y in ((a, b), (b, a)):
                want = x["seeking"].get("genders")
                if want is not None and y["gender"] not in want:
                    broken.append("gender")
                age = age_on(y["birth_date"], run_date)
                lo, hi = x["seeking"].get("age_min"), x["seeking"].get("age_max")
                if (lo is not None and age < lo) or (hi is not None and age > hi):
                    broken.append("age")
            if not set(a["languages"]) & set(b["languages"]):
                broken.append("language")
            if overlap_minutes(a, b, run_date) < args.min_overlap_minutes:
                broken.append("overlap")
            if key in recent:
                broken.append("history")
        for r in broken:
            violations[r] += 1
        if broken and len(examples) < 5:
            examples.append({"a": s["a"], "b": s["b"], "broken": broken})
    over_k = sum(1 for d in degree.values() if d > args.k)
    print(json.dumps({"checked": len(seen), "violations": dict(violations), "over_k": over_k,
                      "examples": examples}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("networkx")
    n.add_argument("--graph", required=True)
    h = sub.add_parser("highs")
    h.add_argument("--graph", required=True)
    h.add_argument("--k", type=int, default=3)
    c = sub.add_parser("check-rules")
    c.add_argument("--users", required=True)
    c.add_argument("--suggestions", required=True)
    c.add_argument("--run-date", required=True)
    c.add_argument("--history")
    c.add_argument("--k", type=int, default=3)
    c.add_argument("--min-overlap-minutes", type=int, default=60)
    c.add_argument("--history-days", type=int, default=14)
    args = p.parse_args()
    {"networkx": cmd_networkx, "highs": cmd_highs, "check-rules": cmd_check_rules}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
