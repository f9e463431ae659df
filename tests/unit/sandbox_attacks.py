"""The hostile-program harness: run every attack through the sandbox, print what came back.

Run as ``python -m tests.unit.sandbox_attacks TARGETS_JSON`` by
``test_sandbox_attacks.py``, under the user kind being tested (root, root without
CAP_SYS_ADMIN, an ordinary user through ``setpriv``). This process is the sandbox's
parent: it holds the secret in its environment and must still be alive at the end.
Each attack runs twice: with the in-process guard, and without it (the kernel layers
alone). The test judges by effects, not by these messages.
"""

from __future__ import annotations

import asyncio
import json
import sys

from lottery.errors import ToolError
from lottery.tools.sandbox import SandboxLimits, run_python


def attacks(t: dict) -> dict[str, str]:
    """Attack programs against the targets the test prepared (paths, ports, names)."""
    leave = (f"for d in ('/dev/shm', '/tmp', {t['outside_dir']!r}):\n"
             f"    try:\n        open(d + '/{t['token']}-left', 'w').write('x')\n"
             "    except OSError as e:\n        print(e)\n")
    return {
        "read a private key": f"print(open({t['secret_file']!r}).read())",
        "read the parent's environment": (
            "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())"),
        "list the home directory": f"import os\nprint(os.listdir({t['home']!r}))",
        "overwrite the database": (
            f"open({t['database']!r}, 'w').write('owned')\nprint('written')"),
        "delete the database": f"import os\nos.remove({t['database']!r})\nprint('deleted')",
        "rename the database": (
            f"import os\nos.rename({t['database']!r}, {t['database']!r} + '.x')\nprint('moved')"),
        "connect to a local listener": (
            "import socket\ns = socket.create_connection(('127.0.0.1', "
            f"{t['port']}), timeout=2)\ns.sendall(b'{t['token']}')\nprint('sent')"),
        "send a UDP datagram": (
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"s.sendto(b'{t['token']}', ('127.0.0.1', {t['port']}))\nprint('sent')"),
        "reach an abstract unix socket": (
            "import socket\ns = socket.socket(socket.AF_UNIX)\n"
            f"s.connect('\\0{t['abstract']}')\ns.sendall(b'{t['token']}')\nprint('sent')"),
        "kill the parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(1)",
        "kill the parent's group": (
            "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\nprint(1)"),
        "libc through ctypes": (
            "import ctypes, os\nlibc = ctypes.CDLL(None)\n"
            "print(libc.kill(os.getppid(), 9), libc.getuid())"),
        "run a shell": (
            "import subprocess\nsubprocess.run(['/bin/sh', '-c', "
            f"'echo x > {t['outside_dir']}/{t['token']}-shell'])\nprint('ran')"),
        "exec a program": (
            "import os\nos.execv('/bin/sh', ['/bin/sh', '-c', "
            f"'echo x > {t['outside_dir']}/{t['token']}-exec'])"),
        "fork": ("import os\npid = os.fork()\nif pid == 0:\n    os._exit(7)\n"
                 f"print('{t['token']}-forked', os.waitpid(pid, 0))"),
        "leave files behind": leave + "print('done')",
        "switch the guard off": (
            "import collections\nm = collections._sys.modules['__main__']\n"
            "for k in list(vars(m)):\n    setattr(m, k, None)\n"
            "b = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)\n"
            "b['__import__'] = b['__import__'].__self__[1]\n"
            f"import os\nprint(os.listdir({t['home']!r}))\nprint(open({t['secret_file']!r}).read())"),
        "import os with other globals": (
            f"os = __import__('os', {{'__name__': 'x'}})\nprint(os.listdir({t['home']!r}))"),
        "exec with another __name__": (
            f"exec(\"import os\\nprint(os.listdir({t['home']!r}))\", {{'__name__': 'lib'}})"),
    }


async def main(targets: dict) -> None:
    benign = await run_python("print(6 * 7)", SandboxLimits(wall_s=8.0))
    print(json.dumps({"layers": list(benign.layers), "answer": benign.answer}), flush=True)
    for name, code in attacks(targets).items():
        for guard in (True, False):
            limits = SandboxLimits(cpu_s=2, wall_s=8.0, memory_mb=400, in_process_guard=guard)
            try:
                result = await run_python(code, limits)
                row = {"attack": name, "guard": guard, "ran": True, "text": result.answer
                       + "\n" + result.stdout, "layers": list(result.layers)}
            except ToolError as exc:
                row = {"attack": name, "guard": guard, "ran": False, "text": str(exc),
                       "error": type(exc).__name__}
            print(json.dumps(row), flush=True)
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
