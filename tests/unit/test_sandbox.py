"""The sandbox contains hostile programs: each case ends in a clear SandboxError, and the
next program still runs. Real child processes, no model, no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lottery.errors import SandboxError, ToolError
from lottery.tools.sandbox import SandboxLimits, run_python

FAST = SandboxLimits(cpu_s=1, wall_s=4.0, memory_mb=300)

HOSTILE = {
    "infinite loop": ("while True:\n    pass", "limit"),
    "sleeping forever": ("import collections\ncollections._sys.modules['time'].sleep(60)",
                         "limit"),
    "fork bomb": ("import collections\nos = collections._sys.modules['os']\n"
                  "while True:\n    os.fork()", "os.fork"),
    "fork via import": ("import os\nwhile True:\n    os.fork()", "import of 'os'"),
    "10 GB allocation": ("x = bytearray(10 * 1024**3)\nprint(len(x))", "memory"),
    "growing list": ("x = []\nwhile True:\n    x.append(' ' * 10**8)", "memory"),
    "os.system": ("import collections\ncollections._sys.modules['os'].system('id')",
                  "os.system"),
    "subprocess": ("import subprocess\nsubprocess.run(['id'])", "import of 'subprocess'"),
    "socket": ("import socket\nsocket.create_connection(('1.1.1.1', 80))", "import of 'socket'"),
    "socket via loaded module": (
        "import collections\nimportlib = collections._sys.modules['importlib']\n"
        "s = importlib.import_module('socket')\ns.socket().connect(('1.1.1.1', 80))", "import of 'socket'"),
    "reading /etc/passwd": ("print(open('/etc/passwd').read())", "/etc/passwd"),
    "reading the home dir": (f"print(open({str(Path.home() / '.bashrc')!r}).read())", "reading"),
    "listing the home dir": ("import collections\n"
                             f"print(collections._sys.modules['os'].listdir({str(Path.home())!r}))",
                             "listing"),
    "writing outside the temp dir": ("open('/tmp/lottery-escape.txt', 'w').write('x')\nprint(1)",
                                     "writing"),
    "printing 100 MB": ("print('x' * (100 * 1024 * 1024))", "printed"),
    "printing in a loop": ("while True:\n    print('x' * 1000)", "printed"),
    "raw writes to stdout": ("import collections\nos = collections._sys.modules['os']\n"
                             "while True:\n    os.write(1, b'x' * 100000)", "limit"),
    "disallowed import": ("import shutil\nprint(1)", "import of 'shutil'"),
    "starting a thread": ("import collections\nt = collections._sys.modules['_thread']\n"
                          "t.start_new_thread(print, ('x',))\nprint('started')",
                          "can't start new thread"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_program_is_contained_and_the_next_one_runs(name):
    code, expected = HOSTILE[name]
    with pytest.raises(ToolError) as info:
        await run_python(code, FAST)
    if name != "starting a thread":  # refused by the kernel (RLIMIT_NPROC): a plain error
        assert isinstance(info.value, SandboxError), str(info.value)
    assert expected and expected in str(info.value)
    assert "\n" not in str(info.value)
    assert not os.path.exists("/tmp/lottery-escape.txt"), "a hostile program wrote outside"
    assert (await run_python("print(6 * 7)", FAST)).answer == "42"


async def test_the_working_directory_is_private_and_removed():
    code = ("import collections\nos = collections._sys.modules['os']\n"
            "open('note.txt', 'w').write('hi')\nprint(os.getcwd())")
    result = await run_python(code, FAST)
    assert "lottery-sandbox-" in result.answer
    assert not os.path.exists(result.answer)


@pytest.mark.parametrize("code,answer", [
    ("print(6 * 7)", "42"),
    ("def my_solution():\n    return 84 / 2\n", "42"),
    ("def helper(x):\n    return x * 2\n\ndef compute():\n    return helper(21)\n", "42"),
    ("total = 40\nanswer = total + 2\n", "42"),
    ("print('step')\nprint(42)", "42"),
    ("def f():\n    return 0.1 + 0.2\n", "0.3"),
    ("from fractions import Fraction\nprint(Fraction(1, 3) * 3)", "1"),
])
async def test_the_answer_is_what_the_program_prints_or_returns(code, answer):
    assert (await run_python(code, FAST)).answer == answer


@pytest.mark.parametrize("code,message", [
    ("print(1 / 0)", "ZeroDivisionError: division by zero (line 1)"),
    ("def f(:\n", "SyntaxError"),
    ("x = 1\n", "printed nothing and returned nothing"),
    ("", "empty"),
])
async def test_a_failing_program_is_a_tool_error_with_the_reason(code, message):
    with pytest.raises(ToolError, match=message.split("(")[0]) as info:
        await run_python(code, FAST)
    assert not isinstance(info.value, SandboxError)


async def test_z3_runs_inside_the_sandbox():
    code = ("from z3 import *\nx = Int('x')\ns = Solver()\ns.add(3 * x + 1 == 22)\n"
            "s.check()\nprint(s.model()[x])")
    assert (await run_python(code, SandboxLimits(cpu_s=5, wall_s=15))).answer == "7"


FORGED = {
    "an answer that is a dict": b'{"kind": "ok", "answer": {"x": 1}}',
    "a report nested 100,000 deep": b'{"kind": "ok", "answer": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "a report without its fields": b'{"kind": "error"}',
    "an unknown kind": b'{"kind": "root", "error": "x"}',
    "extra fields": b'{"kind": "ok", "answer": "1", "exec": "rm -rf /"}',
    "an answer of 20 kB": b'{"kind": "ok", "answer": "' + b"9" * 20_000 + b'"}',
}


@pytest.mark.parametrize("name", list(FORGED))
async def test_a_forged_report_is_a_sandbox_error_never_a_crash(name):
    # The program writes its own "report" to every descriptor the real one could be on.
    code = ("import collections\nos = collections._sys.modules['os']\n"
            f"line = {FORGED[name]!r} + b'\\n'\n"
            "for fd in range(3, 12):\n"
            "    try:\n        os.write(fd, line)\n    except OSError:\n        pass\n"
            "os._exit(0)")
    with pytest.raises(SandboxError, match="malformed|no result") as info:
        await run_python(code, FAST)
    assert "\n" not in str(info.value)


def test_the_import_hook_reads_no_global_and_no_closure_cell():
    # Its rules are the immutable tuple bound to it: a program that rebinds a global,
    # a builtin or a closure cell it can reach cannot change them.
    import dis

    from lottery.tools import sandbox_child

    fn = sandbox_child.checked_import
    ops = {ins.opname for ins in dis.get_instructions(fn)}
    assert not ops & {"LOAD_GLOBAL", "LOAD_DEREF", "LOAD_NAME", "LOAD_CLASSDEREF"}, ops
    assert fn.__closure__ is None


async def test_rebinding_the_guards_module_globals_changes_nothing():
    code = ("import collections\nsys = collections._sys\nm = sys.modules['__main__']\n"
            "for k in list(vars(m)):\n    setattr(m, k, None)\n"
            "os = sys.modules['os']\nprint(os.listdir('/'))")
    with pytest.raises(SandboxError, match="listing '/' is not allowed"):
        await run_python(code, FAST)


@pytest.mark.parametrize("code", [
    "os = __import__('os', {'__name__': 'statistics'})\nprint(os.getcwd())",
    "exec('import os\\nprint(os.getcwd())', {'__name__': 'lib'})",
    "import statistics\nexec(compile('import os', statistics.__file__, 'exec'), vars(statistics))\n"
    "print(vars(statistics)['os'].getcwd())",
])
async def test_every_import_route_meets_the_allow_list(code):
    with pytest.raises(SandboxError, match="import of 'os' is not allowed|compiling code"):
        await run_python(code, FAST)


KERNEL_ONLY = SandboxLimits(cpu_s=2, wall_s=4.0, memory_mb=300, file_bytes=100_000,
                            in_process_guard=False)
"""The guard off: what the OS limits and the kernel layers hold alone."""


async def test_a_file_over_the_size_limit_cannot_be_written():
    code = ("f = open('big.bin', 'wb')\n"
            "try:\n    f.write(b'x' * 1_000_000)\n    f.flush()\n    print('wrote it')\n"
            "except OSError as e:\n    print('refused', e.errno)\n")
    try:
        answer = (await run_python(code, KERNEL_ONLY)).answer
    except ToolError as exc:  # SIGXFSZ ended it: refused as well
        answer = f"refused {exc}"
    assert answer.startswith("refused") and "wrote it" not in answer


async def test_the_child_cannot_raise_its_own_limits():
    code = ("import resource\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
            "try:\n    resource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n    print('raised')\n"
            "except (ValueError, OSError):\n    print('kept', hard)\n")
    answer = (await run_python(code, KERNEL_ONLY)).answer
    assert answer == f"kept {300 * 1024 * 1024}"


async def test_a_huge_mapping_is_refused():
    code = ("import mmap\ntry:\n    m = mmap.mmap(-1, 2 * 1024**3)\n    print('mapped')\n"
            "except (OSError, MemoryError, ValueError):\n    print('refused')\n")
    try:
        answer = (await run_python(code, KERNEL_ONLY)).answer
    except ToolError as exc:  # mmap is not even importable in the child
        answer = f"refused: {exc}"
    assert answer.startswith("refused") and "mapped" not in answer


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch happens only when lottery runs as root")
async def test_as_root_the_child_runs_as_a_fresh_unprivileged_uid():
    code = "import os\nprint(os.getuid(), os.geteuid(), os.getgid())"
    uid, euid, gid = map(int, (await run_python(code, KERNEL_ONLY)).answer.split())
    assert uid == euid != 0 and gid != 0 and uid != os.getuid()


async def test_a_timed_out_program_is_killed_with_its_group():
    import time

    code = "import os\nprint(os.getpid(), flush=True)\nwhile True:\n    pass"
    start = time.monotonic()
    with pytest.raises(SandboxError, match="limit"):
        await run_python(code, SandboxLimits(cpu_s=30, wall_s=1.5, memory_mb=300,
                                             in_process_guard=False))
    assert time.monotonic() - start < 6
    # nothing of the run is left: no process runs its program any more
    def runs_a_program(proc: Path) -> bool:  # a sandbox child of THIS process, still there
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            return ppid == os.getpid() and b"sandbox_child" in (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return False

    assert [p for p in Path("/proc").iterdir() if p.name.isdigit() and runs_a_program(p)] == []
