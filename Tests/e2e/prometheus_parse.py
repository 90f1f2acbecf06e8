#!/usr/bin/env python3
"""Reads a Prometheus text exposition on stdin with the official Python client's parser
(prometheus_client) and prints its samples as JSON: {"name{label=\"v\",...}": value}, labels
sorted. Exits 1 with a one-line reason when the parser refuses the text, or when it parses but
breaks the format's rules that the parser lets through: a metric family given twice (its lines
not grouped), a histogram whose buckets decrease, lack +Inf, or whose +Inf bucket is not its
count, or a family with no HELP line (with --require-help)."""
import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as error:  # said on stdout, which the tests show
    print(f"prometheus_client is not installed (scripts/install-deps.sh --test installs it): {error}")
    sys.exit(1)


def main():
    text = sys.stdin.read()
    require_help = "--require-help" in sys.argv
    samples = {}
    seen = set()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser's own refusal
        print(f"refused by prometheus_client: {error}")
        return 1
    for family in families:
        if family.name in seen:
            print(f"family {family.name} given twice")
            return 1
        seen.add(family.name)
        if require_help and family.documentation in ("", None):
            print(f"family {family.name} has no HELP line")
            return 1
        if family.type == "histogram":
            buckets = [(float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")]
            counts = [s.value for s in family.samples if s.name.endswith("_count")]
            if not buckets or buckets[-1][0] != float("inf"):
                print(f"histogram {family.name} has no +Inf bucket")
                return 1
            if [b for b, _ in buckets] != sorted(b for b, _ in buckets):
                print(f"histogram {family.name}: buckets out of order")
                return 1
            if any(later < earlier for (_, earlier), (_, later) in zip(buckets, buckets[1:])):
                print(f"histogram {family.name}: a bucket counts less than the one below it")
                return 1
            if counts != [buckets[-1][1]]:
                print(f"histogram {family.name}: _count {counts} is not the +Inf bucket {buckets[-1][1]}")
                return 1
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[s.name + ("{" + labels + "}" if labels else "")] = s.value
    print(json.dumps(samples, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
