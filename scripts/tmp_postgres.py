"""A throwaway PostgreSQL server on loopback, for the tests and the benchmarks of the PostgreSQL prediction log.

    python scripts/tmp_postgres.py          # start one, print its URL, stop it (and delete its files) on Ctrl-C
    python scripts/tmp_postgres.py --check  # are PostgreSQL's programs installed?

Uses the server of the Debian `postgresql` package (initdb, pg_ctl). PostgreSQL refuses to run as root, so as root the
cluster belongs to the `postgres` user and its commands run through `runuser`. Tuned for tests: no fsync.
"""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def pg_bin(name: str) -> str:
    "The path of the PostgreSQL program `name`: on PATH, else the newest /usr/lib/postgresql/*/bin."
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install postgresql (Debian), then rerun")
    return found


class TempPostgres:
    "A PostgreSQL cluster in a temporary folder, serving on a free loopback port; `url` names its `cora` database."
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="cora-gnn-pg-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://cora@127.0.0.1:{self.port}/cora"
        self._as = []
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            shutil.chown(self.dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args):
        subprocess.run([*self._as, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> "TempPostgres":
        data = self.dir / "data"
        self._run(pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "cora", "-E", "UTF8", "--no-sync")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=200"
        self._run(pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.dir / "server.log"), "-w", "start")
        self._run(pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "cora", "cora")
        return self

    def stop(self):
        "Stop the server and delete its files."
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run(pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self): return self.start()
    def __exit__(self, *_): self.stop()


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["--check"]:  # exit 0 when the server's programs are installed
        for name in ("initdb", "pg_ctl", "createdb"): print(pg_bin(name))
        sys.exit(0)
    with TempPostgres() as pg:
        print(pg.url, flush=True)
        try:
            while True: time.sleep(3600)
        except KeyboardInterrupt: pass
