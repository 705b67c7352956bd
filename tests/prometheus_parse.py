#!/usr/bin/env python3
"""Parses Prometheus text exposition from stdin with the Python client's parser (prometheus_client)
and prints every sample as one JSON object per line, for tests/metrics.rs.

A format error makes the parser raise, so this exits non-zero with the parser's message."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(json.dumps({
            "family": family.name,
            "type": family.type,
            "name": sample.name,
            "labels": sample.labels,
            "value": sample.value,
        }))
