#!/usr/bin/env python3
"""Parse Portcullis' `/metrics` answer with the Prometheus project's own Python client.

usage: check_prometheus.py METRICS_TEXT_FILE

The text is parsed by `prometheus_client.parser.text_string_to_metric_families` (PyPI
`prometheus-client`), which raises on anything that is not valid text exposition format.
Checked on top: every family has a TYPE, histogram buckets are cumulative and end with
`+Inf` equal to `_count`, no sample is duplicated. Prints, as JSON, every sample as
{"name", "labels", "value"} so the caller can assert on values.

Exits non-zero with every problem listed.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    problems = []
    out = []
    seen = set()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own error is the finding
        print(f"not valid Prometheus text: {e}", file=sys.stderr)
        return 1
    for fam in families:
        if fam.type == "unknown":
            problems.append(f"{fam.name}: no TYPE")
        buckets = {}
        counts = {}
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                problems.append(f"duplicate sample {key}")
            seen.add(key)
            out.append({"name": s.name, "labels": s.labels, "value": s.value})
            if fam.type == "histogram":
                series = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                if s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    buckets.setdefault(series, []).append((le, s.value))
                elif s.name.endswith("_count"):
                    counts[series] = s.value
        for series, bs in buckets.items():
            bs.sort()
            values = [v for _, v in bs]
            if values != sorted(values):
                problems.append(f"{fam.name}{series}: buckets not cumulative")
            if not bs or not math.isinf(bs[-1][0]):
                problems.append(f"{fam.name}{series}: no +Inf bucket")
            elif bs[-1][1] != counts.get(series):
                problems.append(f"{fam.name}{series}: +Inf bucket != _count")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
