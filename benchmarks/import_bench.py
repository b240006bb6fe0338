"""How long ``autoprov import`` takes for a large site, on a fresh temporary SQLite database.

    .venv/bin/python benchmarks/import_bench.py                 # 100,000 phones with 1 line, then with 2
    .venv/bin/python benchmarks/import_bench.py --lines 2 --phones 100000
    .venv/bin/python benchmarks/import_bench.py --database-url postgresql://postgres@127.0.0.1/bench

Each scenario runs in a process of its own so that its peak RSS is its own. The time reported is
``import_file`` alone (reading, checking and inserting); writing the CSV is not counted.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.provisioning.csv_import import import_file
from autoprov.site import Site


def write_csv(path: Path, phones: int, lines: int) -> int:
    """A file of ``phones`` polycom_ip330 phones with ``lines`` extensions each; returns the row count."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("extension,secret,first_name,last_name,mailbox,mac,model,line,time_zone\r\n")
        for n in range(phones):
            mac = f"0004f2{n:06x}"
            for line in range(1, lines + 1):
                ext = 100000 + n * lines + line
                zone = "Europe/London" if line == 1 else ""
                model = "polycom_ip330" if line == 1 else ""
                last = f'"O\'Lastname ""{line}"""'  # quoted, as a spreadsheet writes it
                f.write(f"{ext},s{ext:x}x{n:x},Firstname{n},{last},{ext},{mac},{model},{line},{zone}\r\n")
                rows += 1
    return rows


def run(phones: int, lines: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="autoprov-bench-") as tmp:
        settings = Settings()
        settings.database.url = database_url or f"sqlite:///{tmp}/bench.db"
        settings.firmware.root = f"{tmp}/firmware"
        site = Site(settings, build_plugin_manager())
        site.init_database()
        csv_path = Path(tmp) / "phones.csv"
        rows = write_csv(csv_path, phones, lines)
        size_mb = csv_path.stat().st_size / 1e6
        start = time.perf_counter()
        result = import_file(site, csv_path)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        backend = settings.database.url.split(":", 1)[0]
        print(
            f"{backend}: {result.phones} phones x {lines} line(s) = {rows} rows ({size_mb:.1f} MB CSV): "
            f"{seconds:.2f} s, {rows / seconds:,.0f} rows/s, peak RSS {peak_mb:.0f} MB "
            f"({result.extensions} extensions, {result.lines} lines inserted)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=100_000)
    parser.add_argument("--lines", type=int, choices=(1, 2), help="lines per phone (default: both scenarios)")
    parser.add_argument("--database-url", help="an EMPTY database to use instead of a temporary SQLite file")
    args = parser.parse_args()
    if args.lines is not None:
        run(args.phones, args.lines, args.database_url)
        return
    for lines in (1, 2):
        command = [sys.executable, __file__, "--phones", str(args.phones), "--lines", str(lines)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
