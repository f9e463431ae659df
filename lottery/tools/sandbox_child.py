"""The sandbox's child process: confine itself, then run one model-written program.

Run by :mod:`lottery.tools.sandbox` as ``python -I -B sandbox_child.py CONFIG_JSON``; it
uses the standard library only and loads :mod:`lottery.tools.confine` by path. Never
imported. In order:

1. resource limits; as root, an empty network namespace;
2. the program's source is read and the modules it may import are imported (native
   libraries load now, before anything is locked);
3. as root, a fresh unused uid; then the kernel layers (:mod:`confine`): Landlock and
   the seccomp filter. In strict mode a missing required layer ends the run here, before
   the program runs, with ``kind: unavailable``;
4. the in-process guard: an audit hook and an import hook whose rules live in closures
   and immutable tuples that the program cannot reach;
5. the program runs; one JSON line on the saved stdout descriptor reports the result.
"""

from __future__ import annotations


def main() -> None:  # noqa: C901, PLR0915 - one linear boot sequence, kept in one closure
    import builtins
    import importlib
    import importlib.util
    import io
    import json
    import os
    import resource
    import sys
    import sysconfig
    import types

    config = json.loads(sys.argv[1])
    workdir, uid, cap = config["workdir"], config["uid"], config["output_chars"]
    allowed = frozenset(config["imports"])
    resource.setrlimit(resource.RLIMIT_CPU, (config["cpu_s"], config["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (config["memory"], config["memory"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (config["file_bytes"], config["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    layers = ["rlimits", "process_group", "clean_env"]
    if uid >= 0:
        import ctypes
        import ctypes.util
        try:  # root: an empty network namespace (needs CAP_SYS_ADMIN; Landlock/seccomp hold anyway)
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            if libc.unshare(0x40000000) == 0:
                layers.append("netns")
        except (OSError, AttributeError, TypeError):
            pass
    else:
        # Not root: this user already runs processes, so a limit of 0 refuses any fork.
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))

    result_fd = os.dup(1)

    def finish(payload: dict) -> None:
        os.write(result_fd, (json.dumps(payload, default=str) + "\n").encode())
        os._exit(0)

    with open(os.path.join(workdir, "program.py"), encoding="utf-8") as fh:
        source = fh.read()
    for mod in sorted(allowed):  # native libraries load now, before the locks
        if mod in ("z3", "sympy", "numpy") and mod not in source:
            continue
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
    confine_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "confine.py")
    spec = importlib.util.spec_from_file_location("lottery_sandbox_confine", confine_path)
    confine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(confine)

    paths = sysconfig.get_paths()
    raw_dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    python_dirs = {os.path.realpath(d) for d in raw_dirs}
    readable = (*sorted(python_dirs), "/usr/lib", "/usr/lib64", "/lib", "/lib64",
                "/usr/local/lib", "/etc/ld.so.cache")
    if uid >= 0:
        # Root: become a fresh, unused user. The kernel then guards private files,
        # and a fresh uid owns exactly this process, so no fork or thread can start.
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
        layers.append("uid")
    problems: list[str] = []
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
    if threads > 1:  # Landlock and seccomp bind the calling thread: refuse to leave one free
        problems.append(f"{threads} threads were running before the kernel layers")
    else:
        applied, missing = confine.restrict(workdir, readable)
        layers += applied
        problems += missing
    required = ("landlock_fs", "seccomp")
    if config["mode"] == "strict" and (problems or not all(r in layers for r in required)):
        finish({"kind": "unavailable", "layers": layers,
                "error": "the sandbox cannot confine programs here: " + "; ".join(problems)})

    home = os.path.realpath(workdir) + os.sep
    roots = tuple(sorted({d.rstrip(os.sep) + os.sep for d in raw_dirs | python_dirs}))
    out_parts: list[str] = []
    violations: list[str] = []
    program_files = ("program.py",)

    class OutputLimit(BaseException):
        pass

    class Capped(io.TextIOBase):
        def __init__(self) -> None:
            self.size = 0

        def writable(self) -> bool:
            return True

        def write(self, s: str) -> int:
            self.size += len(s)
            if self.size > cap:
                raise OutputLimit()
            out_parts.append(s)
            return len(s)

    guard, import_hook = _make_guard(home, roots, allowed, violations, program_files)

    sink = os.open(os.path.join(workdir, ".raw-output"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    out = Capped()
    sys.stdout = sys.stderr = out
    sys.stdin = io.StringIO("")
    sys.setrecursionlimit(2000)

    def fmt(value: object) -> str:
        if isinstance(value, bool) or value is None:
            return str(value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return str(value)
            r = round(value, 6)
            return str(int(r)) if r == int(r) else repr(r)
        if isinstance(value, (list, tuple)) and len(value) == 1:
            return fmt(value[0])
        return str(value)

    def printed() -> list[str]:
        return [ln.strip() for ln in "".join(out_parts).splitlines() if ln.strip()]

    def answer_of(ns: dict) -> str | None:
        if printed():
            return printed()[-1]
        funcs = [v for v in ns.values() if isinstance(v, types.FunctionType)
                 and v.__code__.co_filename == "program.py"
                 and v.__code__.co_argcount - len(v.__defaults__ or ()) == 0
                 and not v.__code__.co_kwonlyargcount]
        for fn in reversed(funcs):
            value = fn()
            if value is not None:
                return fmt(value)
            if printed():
                return printed()[-1]
        for name in ("answer", "result", "ans", "solution"):
            if name in ns and not callable(ns[name]):
                return fmt(ns[name])
        return None

    def failure(exc: BaseException) -> dict:
        if violations:
            return {"kind": "forbidden", "error": "forbidden: " + violations[0]}
        if isinstance(exc, OutputLimit) or (isinstance(exc, OSError) and exc.errno == 27):
            return {"kind": "output", "error": "the program printed or wrote more than the limit "
                    f"({cap} characters); print only the answer"}
        if isinstance(exc, MemoryError):
            return {"kind": "memory", "error": "the program ran out of memory (memory limit); "
                    "use less memory"}
        if (config["guard"] and isinstance(exc, ModuleNotFoundError)
                and (exc.name or "").split(".")[0] not in allowed):
            return {"kind": "forbidden", "error": "forbidden: import of "
                    f"{(exc.name or '').split('.')[0]!r} is not allowed"}
        if isinstance(exc, RecursionError):
            return {"kind": "recursion", "error": "the program recursed too deeply"}
        tb, line = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "program.py":
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f" (line {line})" if line else ""
        return {"kind": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}{where}"}

    ns = {"__name__": "__main__", "__builtins__": builtins}
    try:
        code = compile(source, "program.py", "exec")
    except SyntaxError as exc:
        finish({"kind": "error", "error": f"SyntaxError: {exc.msg} (line {exc.lineno})"})
    del source, confine, spec
    if config["guard"]:
        builtins.__import__ = import_hook
        sys.addaudithook(guard)
    del guard, import_hook  # nothing the program can reach refers to the audit hook
    try:
        exec(code, ns)  # noqa: S102 - the sandboxed program itself
        answer = answer_of(ns)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        finish(failure(exc))
    if violations:
        finish({"kind": "forbidden", "error": "forbidden: " + violations[0]})
    if answer is None:
        finish({"kind": "error", "error": "the program printed nothing and returned nothing; "
                "print the answer or return it from a function"})
    finish({"kind": "ok", "answer": answer[:1000], "stdout": "".join(out_parts)[-4000:],
            "layers": layers})


def _make_guard(home, roots, allowed, violations, program_files):  # noqa: ANN001, ANN202, C901
    """The audit hook and the import hook. Everything they use is bound here, as closure
    cells of functions the program never gets a reference to (the audit hook), or as an
    immutable tuple bound to a method (the import hook), so rebinding a module global,
    a builtin or an attribute the program can reach changes neither."""
    import builtins
    import os
    import sys
    import types

    realpath, join, fsdecode, sep = os.path.realpath, os.path.join, os.fsdecode, os.sep
    isinstance_, str_, int_, bytes_, any_, len_, open_ = isinstance, str, int, bytes, any, len, open
    permission_error, import_error, os_error = PermissionError, ImportError, OSError
    real_import, getframe, modules = builtins.__import__, sys._getframe, sys.modules
    o_write = os.O_WRONLY | os.O_RDWR | os.O_CREAT
    readable = (home, *roots)
    blocked = (
        "subprocess.", "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn",
        "os.spawn", "os.kill", "os.killpg", "os.chdir", "os.chmod", "os.chown", "os.link",
        "os.symlink", "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate",
        "os.putenv", "os.unsetenv", "os.setxattr", "os.removexattr", "os.chflags",
        "shutil.", "pty.", "socket.", "ctypes.dlopen", "ctypes.dlsym",
        "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr", "ctypes.addressof",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "code.__new__",
        "mmap.", "resource.", "sys._current_frames", "sys.remote_exec", "webbrowser.",
        "urllib.", "http.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.",
        "telnetlib.", "signal.", "sys.addaudithook", "sys.setprofile", "sys.settrace",
    )
    blocked_exact = ("ctypes.cdata",)
    protected_attrs = ("__code__", "__closure__", "__globals__", "__defaults__",
                       "__kwdefaults__", "__func__", "__self__")

    def deny(msg):  # noqa: ANN001, ANN202
        violations.append(msg)
        raise permission_error("sandbox: " + msg)

    def inside(path, where):  # noqa: ANN001, ANN202
        if isinstance_(path, int_):
            return True  # an already open descriptor (stdin/stdout/stderr)
        if isinstance_(path, bytes_):
            path = fsdecode(path)
        real = realpath(join(home, str_(path)))
        return any_((real + sep).startswith(r) for r in where)

    def guard(event, args):  # noqa: ANN001, ANN202
        if event.startswith(blocked) or event in blocked_exact:
            deny(event + " is not allowed")
        if event == "import":  # any import route (importlib too) of a module not loaded yet
            name = str_(args[0])
            if name.split(".")[0] not in allowed and name not in modules:
                deny(f"import of {name.split('.')[0]!r} is not allowed")
        elif event == "open":
            path, mode, flags = args
            writing = (mode is not None and any_(c in str_(mode) for c in "wax+")) or (
                isinstance_(flags, int_) and flags & o_write)
            if path is None:
                return
            if writing and not inside(path, (home,)):
                deny(f"writing {path!r} is not allowed (only the working directory)")
            if not writing and not inside(path, readable):
                deny(f"reading {path!r} is not allowed (only the working directory)")
        elif event in ("os.listdir", "os.scandir"):
            if args and args[0] is not None and not inside(args[0], readable):
                deny(f"listing {args[0]!r} is not allowed")
        elif event == "compile":
            # Code that claims to be an installed module's file must be that file.
            filename = args[1] if len_(args) > 1 else None
            if isinstance_(filename, (str_, bytes_)) and inside(filename, roots):
                try:
                    with open_(filename, "rb") as fh:
                        on_disk = fh.read()
                except os_error:
                    on_disk = None  # unreadable here: it cannot be shown to match
                text = args[0]
                if isinstance_(text, str_):
                    text = text.encode()
                if on_disk is None or (text is not None and text != on_disk):
                    deny(f"compiling code under the name {filename!r} is not allowed")
        elif event in ("object.__setattr__", "object.__delattr__") and (
                len_(args) > 1 and args[1] in protected_attrs):
            deny(f"changing {args[1]} is not allowed")

    rules = (allowed, real_import, getframe, modules, roots, program_files, import_error,
             violations.append, getattr, sorted)
    return guard, types.MethodType(checked_import, rules)


def checked_import(rules, name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002, ANN001, ANN201, PLR0913
    """``builtins.__import__`` in the sandbox: the import allow-list on every import path.

    Only the immediate importer counts: an installed module's own code, running in its
    own namespace, imports freely (the modules it needs were vetted when it was
    installed); anything else (the program, code it compiled, a namespace it made up,
    ``__import__`` called with other globals) gets the allow-list, loaded modules or not.
    This function reads no global and no closure cell: everything comes from ``rules``,
    an immutable tuple bound to it, so nothing the program can reach changes its rules.
    """
    allowed, real, frame_of, modules, roots, program_files, fail, note, get, order = rules
    top = name.partition(".")[0]
    if level == 0 and top not in allowed:
        frame = frame_of(1)
        module = modules.get(frame.f_globals.get("__name__", ""), None)
        filename = frame.f_code.co_filename
        genuine = (module is not None and get(module, "__dict__", None) is frame.f_globals
                   and filename not in program_files and get(module, "__file__", None) == filename
                   and filename.__class__ is "".__class__ and filename.startswith(roots))
        if not genuine:
            note(f"import of {top!r} is not allowed")
            raise fail(f"sandbox: import of {top!r} is not allowed "
                       f"(allowed: {', '.join(order(allowed))})")
    return real(name, globals, locals, fromlist, level)


if __name__ == "__main__":
    main()
