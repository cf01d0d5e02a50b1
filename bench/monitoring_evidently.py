"""Evidently's DataDriftPreset with PSI on two CSV files, for `npm run bench -- monitoring`.

Usage: python3 monitoring_evidently.py reference.csv current.csv cat1,cat2,...
Prints one JSON object: {"version", "seconds", "psi": {column: value}}. The time covers the
report's computation only (not reading the CSVs). Works with Evidently 0.4–0.6 (legacy API) and
0.7+ (evidently.Report / evidently.presets).
"""
import json
import sys
import time

import evidently
import pandas as pd

reference_file, current_file, categorical = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
reference = pd.read_csv(reference_file, dtype={name: str for name in categorical})
current = pd.read_csv(current_file, dtype={name: str for name in categorical})
numerical = [name for name in reference.columns if name not in categorical]
psi = {}

try:  # Evidently 0.7+
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset(method="psi")]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - started
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        column = config.get("column")
        if column is not None and isinstance(metric.get("value"), (int, float)):
            psi[column] = float(metric["value"])
except ImportError:  # Evidently 0.4–0.6
    from evidently import ColumnMapping
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report

    mapping = ColumnMapping(numerical_features=numerical, categorical_features=categorical)
    started = time.perf_counter()
    report = Report(metrics=[DataDriftPreset(stattest="psi")])
    report.run(reference_data=reference, current_data=current, column_mapping=mapping)
    result = report.as_dict()
    seconds = time.perf_counter() - started
    for metric in result["metrics"]:
        columns = metric.get("result", {}).get("drift_by_columns")
        if columns:
            for name, column in columns.items():
                psi[name] = float(column["drift_score"])

print(json.dumps({"version": evidently.__version__, "seconds": seconds, "psi": psi}))
