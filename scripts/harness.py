"""What the tests and the benchmarks share to run the project as its users do: a free loopback port, a server started in
a process group of its own and waited for until it answers, and stopped without leaving a process behind (JSON files
are written with `cora_gnn.files.write_json`). tests/conftest.py and the benchmarks put scripts/ on `sys.path` to import
it, as they do tmp_postgres.py.

    from harness import serve
    with serve("--checkpoint", "runs/gcn/checkpoint.pt") as s: print(s.get("/info").json())
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

EXE = Path(sys.executable).parent / "cora-gnn"  # the console script of the environment running this


def free_port() -> int:
    "A TCP port free on loopback now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    "`argv` in a process group of its own, ready when constructed: `url + ready` answered 200. `stop` ends the group."
    def __init__(self, argv:list, url:str, env:dict|None=None, cwd=None, ready:str="/ready", timeout:float=90,
                 poll:float=0.1, output=subprocess.PIPE):
        self.url, self.argv = url, [str(a) for a in argv]
        self.proc = subprocess.Popen(self.argv, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        deadline, name = time.time() + timeout, Path(self.argv[0]).name
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({self.proc.returncode}) before it was ready: {self.output()}")
            try:
                if httpx.get(url + ready, timeout=1).status_code == 200: return
            except httpx.TransportError: pass
            if time.time() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"{name} did not answer {url}{ready} within {timeout} s: {self.output()}")
            time.sleep(poll)

    def output(self) -> str:
        "The last 3,000 characters the stopped process printed ('' where its output was not kept)."
        if self.proc.stdout is None or self.proc.poll() is None: return ""
        return self.proc.stdout.read()[-3000:]

    def get(self, path:str, **kw) -> httpx.Response: return httpx.get(self.url + path, timeout=30, **kw)
    def post(self, path:str, **kw) -> httpx.Response: return httpx.post(self.url + path, timeout=30, **kw)

    def stop(self, sig:int=signal.SIGTERM, timeout:float=30) -> int:
        "Send `sig` to the server, wait (SIGKILL after `timeout`), end whatever of its group is left; its exit status."
        if self.proc.poll() is None:
            self.proc.send_signal(sig)  # the server alone: it stops its own workers, as under a process manager
            try: self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try: os.killpg(self.proc.pid, signal.SIGKILL)  # workers a killed server left behind
        except ProcessLookupError: pass
        return self.proc.returncode

    def __enter__(self): return self
    def __exit__(self, *exc): self.stop()


def serve(*args, env:dict|None=None, cwd=None, port:int|None=None, **kw) -> Server:
    "`cora-gnn serve ARGS` on a free loopback port (or `port`), logging warnings only."
    port = port or free_port()
    argv = [EXE, "serve", "--port", port, "--log-level", "warning", *args]
    s = Server(argv, f"http://127.0.0.1:{port}", env=env, cwd=cwd, **kw)
    s.port = port
    return s
