"""Checks a research export's Parquet files against its CSV files.

Usage: check_parquet.py CSV_DIR PARQUET_DIR

Both exports must come from the same data: every table is read with
pyarrow, its schema compared with the manifest's, and every value compared
with the CSV's (floats to the CSV's six decimals, null as an empty field).
Prints one line per table and exits 1 on the first difference.
"""
import csv
import json
import sys

import pyarrow.parquet as pq

TYPES = {"int64": "int64", "float64": "double", "string": "string"}


def main(csv_dir, parquet_dir):
    manifest = json.load(open(f"{parquet_dir}/manifest.json"))
    csv_manifest = json.load(open(f"{csv_dir}/manifest.json"))
    if [t["rows"] for t in manifest["tables"]] != [t["rows"] for t in csv_manifest["tables"]]:
        sys.exit("row counts differ between the two manifests")
    for table in manifest["tables"]:
        parquet = pq.read_table(f"{parquet_dir}/{table['file']}")
        names = [c["name"] for c in table["columns"]]
        if parquet.schema.names != names:
            sys.exit(f"{table['name']}: columns {parquet.schema.names} != {names}")
        for column in table["columns"]:
            field = parquet.schema.field(column["name"])
            if str(field.type) != TYPES[column["type"]]:
                sys.exit(f"{table['name']}.{column['name']}: type {field.type} != {column['type']}")
            if field.nullable != column["nullable"]:
                sys.exit(f"{table['name']}.{column['name']}: nullable {field.nullable}")
        with open(f"{csv_dir}/{table['name']}.csv", newline="") as f:
            rows = list(csv.reader(f))
        if rows[0] != names:
            sys.exit(f"{table['name']}: CSV header {rows[0]} != {names}")
        rows = rows[1:]
        if len(rows) != parquet.num_rows or len(rows) != table["rows"]:
            sys.exit(f"{table['name']}: {len(rows)} CSV rows, {parquet.num_rows} Parquet rows")
        columns = parquet.to_pydict()
        for i, row in enumerate(rows):
            for j, column in enumerate(table["columns"]):
                value = columns[column["name"]][i]
                if value is None:
                    text = ""
                elif column["type"] == "float64":
                    text = f"{value:.6f}"
                else:
                    text = str(value)
                if text != row[j]:
                    sys.exit(f"{table['name']} row {i} {column['name']}: parquet {text!r} != csv {row[j]!r}")
        print(f"{table['name']}: {len(rows)} rows match")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
