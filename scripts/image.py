"""The container image without a Docker engine: the Dockerfile's install steps (its COPY and `pip install` RUN
commands) run here, in DEST/venv, on a build context that holds only what the Dockerfile copies. tests/test_container.py
runs the image's commands in that venv; scripts/test.sh starts this build in the background at the very start, while
the suite's own environment installs on the other core, and the test reuses it (or builds its own).

    python scripts/image.py DEST        # DEST/venv and DEST/app; DEST/stamp once it has passed; its output in DEST.log
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def instructions(path:Path=ROOT / "Dockerfile") -> list[tuple[str, str]]:
    "The Dockerfile as (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."
    out, cur = [], ""
    for line in path.read_text().splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")): continue
        cur += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            op, _, args = cur.partition(" ")
            out.append((op.upper(), args.strip()))
            cur = ""
    return out


def values(op:str) -> list[str]:
    "The arguments of every `op` instruction of the Dockerfile."
    return [a for o, a in instructions() if o == op]


def copied() -> list[str]:
    "What the Dockerfile's COPY instructions take from the build context."
    return [s for args in values("COPY") for s in args.split()[:-1]]


def stamp() -> str:
    "A hash of everything the image's install depends on: the Dockerfile and what it copies."
    h = hashlib.sha256((ROOT / "Dockerfile").read_bytes())
    for src in copied():
        for f in sorted((ROOT / src).rglob("*.py")) if (ROOT / src).is_dir() else [ROOT / src]:
            h.update(str(f.relative_to(ROOT)).encode() + f.read_bytes())
    return h.hexdigest()


def env_for(dest:Path) -> dict:
    "The environment of the install and of the image's commands: DEST/venv first on PATH, pip's default index for torch."
    env = {**os.environ, "PATH": f"{dest / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}", "TORCH_INDEX": ""}
    env.pop("VIRTUAL_ENV", None)
    return env


def build(dest:Path, log=sys.stdout) -> Path:
    "The image's install steps in DEST; writes DEST/stamp when they pass, raises `RuntimeError` with the output if not."
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "app").mkdir(parents=True)
    for s in copied(): (shutil.copytree if (ROOT / s).is_dir() else shutil.copy)(ROOT / s, dest / "app" / s)
    subprocess.run([sys.executable, "-m", "venv", dest / "venv"], check=True)
    for cmd in values("RUN"):
        if "pip install" not in cmd: continue  # the user-creation step needs root and has nothing to test
        r = subprocess.run(["sh", "-c", cmd], cwd=dest / "app", env=env_for(dest), capture_output=True, text=True, timeout=1200)
        print(f"$ {cmd}\n{r.stdout[-2000:]}{r.stderr[-3000:]}", file=log, flush=True)
        if r.returncode: raise RuntimeError(f"{cmd} failed (exit {r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    (dest / "stamp").write_text(stamp())
    return dest


def marker(dest:Path) -> Path:
    "The file that holds the pid of a build into `dest` while it runs."
    return dest.parent / f"{dest.name}.building"


def ready(dest:Path, wait:float=1500) -> bool:
    """Whether DEST holds a passed build of the current Dockerfile and code, waiting up to `wait` s while a build into it
    (scripts/test.sh's, in the background) still runs."""
    deadline = time.time() + wait
    while marker(dest).is_file() and time.time() < deadline:
        try: os.kill(int(marker(dest).read_text()), 0)
        except (OSError, ValueError): break  # its process is gone
        time.sleep(2)
    return (dest / "stamp").is_file() and (dest / "stamp").read_text() == stamp()


def main(argv=None):
    dest = Path((argv or sys.argv[1:])[0]).resolve()
    if ready(dest, wait=0): return print(f"{dest}: up to date")
    dest.parent.mkdir(parents=True, exist_ok=True)
    marker(dest).write_text(str(os.getpid()))
    try:
        with (dest.parent / f"{dest.name}.log").open("w") as log: build(dest, log)
    except RuntimeError as e: sys.exit(str(e)[-3000:])
    finally: marker(dest).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
