"""Hostile programs are contained for every kind of user, judged by their effects.

The harness (``sandbox_attacks.py``) runs each attack through the real sandbox as the
sandbox's parent process, under three user kinds: root, root without CAP_SYS_ADMIN
(Docker's default) and an ordinary user (``setpriv`` to nobody). Each attack runs with
the in-process guard and without it, so the kernel layers are shown to hold alone. The
test then looks at the world: no secret came back, the database is untouched, no
listener was reached, the parent lived, nothing was left behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from lottery.tools import confine

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

pytestmark = pytest.mark.skipif(
    confine.probe()["problems"] != [], reason="this kernel lacks Landlock or seccomp "
    "(test_sandbox_unavailable.py covers the refusal)")


HARNESS = ["-B", "-m", "tests.unit.sandbox_attacks"]


@functools.cache
def _legs() -> dict[str, list[str]]:
    """Each user kind: the command line that starts the harness as that user."""
    python = [sys.executable, *HARNESS]
    if os.geteuid() != 0:
        return {"ordinary user": python}
    setpriv = shutil.which("setpriv")
    legs = {"root": python}
    if setpriv:
        nobody = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all", "--"]
        legs["root without CAP_SYS_ADMIN"] = [
            setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--", *python]
        legs["ordinary user"] = nobody + _python_of(nobody)
    return legs


def _python_of(nobody: list[str]) -> list[str]:
    """This interpreter and its packages as an ordinary user can start them. A venv whose
    base interpreter lives under /root (pyenv) cannot be executed by another user, so
    the same Python version from /usr/bin is used with this venv's site-packages."""
    probe = subprocess.run([*nobody, "/bin/sh", "-c", 'exec "$0" -c pass', sys.executable],
                           capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, *HARNESS]
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    site = sysconfig.get_paths()["purelib"]
    boot = ("import runpy, site, sys; site.addsitedir(sys.argv.pop(1)); sys.path.insert(0, '.'); "
            "runpy.run_module('tests.unit.sandbox_attacks', run_name='__main__')")
    return [system, "-B", "-c", boot, site]


@pytest.fixture
def world():
    with _world() as made:
        yield made


@contextlib.contextmanager
def _world() -> Iterator[tuple[dict, tuple[socket.socket, ...]]]:
    """Targets an ordinary user could reach under plain file permissions, so that only
    the sandbox stands between the program and them."""
    token = "lottery-attack-" + secrets.token_hex(6)
    base = Path(os.path.realpath(os.environ.get("TMPDIR", "/tmp"))) / f"world-{token}"
    home, outside, tmp = base / "home", base / "outside", base / "tmp"
    for d in (base, home, home / ".ssh", outside, tmp):
        d.mkdir(parents=True)
        d.chmod(0o777 if d in (base, outside, tmp) else 0o755)
    secret = home / ".ssh" / "id_ed25519"
    secret.write_text(f"-----BEGIN OPENSSH PRIVATE KEY----- {token}-key\n")
    secret.chmod(0o644)
    (home / f"{token}-listing").write_text("x")
    database = base / "lottery.db"
    database.write_text("precious")
    database.chmod(0o666)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    udp.setblocking(False)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + token)
    abstract.listen(8)
    abstract.setblocking(False)
    targets = {"token": token, "home": str(home), "secret_file": str(secret),
               "outside_dir": str(outside), "database": str(database), "port": port,
               "abstract": token, "tmp": str(tmp)}
    try:
        yield targets, (tcp, udp, abstract)
    finally:
        for s in (tcp, udp, abstract):
            s.close()
        shutil.rmtree(base, ignore_errors=True)
        for d in ("/dev/shm", "/tmp"):
            for left in Path(d).glob(f"{token}*"):
                left.unlink(missing_ok=True)


def _reached(sockets: tuple[socket.socket, ...]) -> list[str]:
    tcp, udp, abstract = sockets
    reached = []
    for name, sock in (("tcp", tcp), ("abstract unix", abstract)):
        try:
            conn, _ = sock.accept()
            conn.close()
            reached.append(name)
        except BlockingIOError:
            pass
    try:
        udp.recvfrom(100)
        reached.append("udp")
    except BlockingIOError:
        pass
    return reached


def _attack(leg: str, targets: dict) -> tuple[subprocess.CompletedProcess, list[dict]]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": targets["home"],
           "TMPDIR": targets["tmp"], "LOTTERY_SANDBOX": "strict",
           "LOTTERY_ATTACK_SECRET": f"{targets['token']}-env"}
    proc = subprocess.run([*_legs()[leg], json.dumps(targets)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    return proc, [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]


@pytest.mark.parametrize("leg", list(_legs()))
def test_hostile_programs_change_nothing_outside_the_sandbox(leg, world):
    targets, sockets = world
    token = targets["token"]
    proc, rows = _attack(leg, targets)

    # the parent lived through every attack and finished
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert rows and rows[-1] == {"done": True}, proc.stderr[-2000:]
    layers = set(rows[0]["layers"])
    assert rows[0]["answer"] == "42"
    assert {"landlock_fs", "seccomp", "rlimits"} <= layers, layers
    if leg.startswith("root"):
        assert "uid" in layers
    attacks = rows[1:-1]
    assert len(attacks) == 2 * 19
    for row in attacks:
        text = row["text"]
        what = f"{row['attack']} (guard {'on' if row['guard'] else 'off'}): {text[:300]}"
        assert f"{token}-key" not in text, "a secret was read: " + what
        assert f"{token}-env" not in text, "the parent's environment was read: " + what
        assert f"{token}-listing" not in text, "the home directory was listed: " + what
        assert f"{token}-forked" not in text, "a process was forked: " + what
    # no file outside the temp dir changed
    assert Path(targets["database"]).read_text() == "precious"
    assert not Path(targets["database"] + ".x").exists()
    # no listener reached
    assert _reached(sockets) == []
    # nothing left behind, anywhere the program could have written
    left = [p for d in ("/dev/shm", "/tmp", targets["outside_dir"]) for p in Path(d).glob(f"{token}*")]
    assert left == []
    assert list(Path(targets["tmp"]).iterdir()) == []


def _table() -> str:
    """The docs' table: every attack, what stopped it, per user kind (run this module)."""
    lines = []
    results: dict[str, dict[tuple[str, bool], str]] = {}
    layers: dict[str, list[str]] = {}
    for leg in _legs():
        with _world() as (targets, _):
            proc, rows = _attack(leg, targets)
        assert rows and rows[-1] == {"done": True}, proc.stderr[-1000:]
        layers[leg] = rows[0]["layers"]
        results[leg] = {(r["attack"], r["guard"]): "ran, no effect" if r["ran"] else
                        (r["text"].split(":")[0][:60] if r["guard"] else r["text"][:60])
                        for r in rows[1:-1]}
    legs = list(results)
    attacks = list(dict.fromkeys(a for a, _ in next(iter(results.values()))))
    lines.append("| attack | " + " | ".join(f"{leg}: guard on / kernel only" for leg in legs) + " |")
    lines.append("|---" * (len(legs) + 1) + "|")
    for attack in attacks:
        cells = [f"{results[leg][(attack, True)]} / {results[leg][(attack, False)]}"
                 for leg in legs]
        lines.append(f"| {attack} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines.append("")
    for leg in legs:
        lines.append(f"- {leg}: layers {', '.join(layers[leg])}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table())
