"""Kernel layers that confine a process without root: Landlock and a seccomp filter.

This module uses the standard library only (``ctypes``), because the sandbox's child
process loads it by path before it runs a program, with no ``lottery`` package on its
path. The parent imports it to report what the kernel offers (``lottery tools doctor``).

- **Landlock** (Linux 5.13+, no privilege needed): the process may read only the
  directories it is given (the interpreter and its libraries), may read and write only
  its working directory, may not bind or connect TCP sockets (Landlock ABI 4+), and may
  not signal or reach abstract unix sockets outside itself (ABI 6+).
- **seccomp** (a BPF filter, no privilege needed after ``PR_SET_NO_NEW_PRIVS``): no
  socket but a unix socket pair, no new process, thread or program (fork, clone,
  execve), no ptrace or access to other processes' memory, no signal or resource
  change for another process, no namespaces, mounts, kernel keys, BPF, io_uring or
  perf events.

Both are one-way: once applied, nothing the process does can lift them, and every
process it could start inherits them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from typing import Any

__all__ = ["LANDLOCK_SCOPE_ABI", "LANDLOCK_NET_ABI", "landlock_abi", "probe",
           "restrict", "seccomp_filter", "errno_filter", "install_filter"]

# -- Landlock (include/uapi/linux/landlock.h); its syscall numbers are the same on every arch.
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_FILE_RIGHTS = {1: 0b111, 3: 0b111 | 1 << 14, 5: 0b111 | 1 << 14 | 1 << 15}
"""Rights that apply to a regular file (execute, write, read; truncate from ABI 3,
device ioctl from ABI 5): the only ones a rule on a single file may name."""
_FS_ALL = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
"""Every file-system right each ABI version knows (refer: 2, truncate: 3, ioctl_dev: 5)."""
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
LANDLOCK_NET_ABI = 4
"""First Landlock ABI that can deny TCP bind and connect."""
LANDLOCK_SCOPE_ABI = 6
"""First Landlock ABI that scopes signals and abstract unix sockets to the sandbox."""

_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _PR_GET_SECCOMP = 38, 22, 21
_SECCOMP_MODE_FILTER = 2
_O_PATH = getattr(os, "O_PATH", 0o10000000)

# -- seccomp: syscall numbers per architecture (asm/unistd_64.h, asm-generic/unistd.h).
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000
_NR = {
    #                    x86_64 aarch64
    "socket": (41, 198), "socketpair": (53, 199), "ptrace": (101, 117),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "execve": (59, 221), "execveat": (322, 281), "fork": (57, None), "vfork": (58, None),
    "clone": (56, 220), "clone3": (435, 435), "unshare": (272, 97), "setns": (308, 268),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "reboot": (169, 142),
    "swapon": (167, 224), "swapoff": (168, 225), "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424), "pidfd_getfd": (438, 438), "kcmp": (312, 272),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "mknod": (133, None),
    "mknodat": (259, 33), "acct": (163, 89), "quotactl": (179, 60), "personality": (135, 92),
    "sched_setaffinity": (203, 122), "setpriority": (141, 140), "ioprio_set": (251, 30),
    "sched_setscheduler": (144, 119), "sched_setparam": (142, 118),
    "sched_setattr": (314, 274), "migrate_pages": (256, 238), "move_pages": (279, 239),
    "process_madvise": (440, 440), "process_mrelease": (448, 448),
    # allowed only for the process itself (the first argument is its pid, or 0 for prlimit64)
    "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138), "rt_tgsigqueueinfo": (297, 240), "prlimit64": (302, 261),
    "landlock_create_ruleset": (444, 444), "landlock_add_rule": (445, 445),
    "landlock_restrict_self": (446, 446),
}
_DENIED = tuple(n for n in _NR if n not in
                {"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "prlimit64",
                 "socketpair"} and not n.startswith("landlock"))
_SELF_ONLY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
_AF_UNIX = 1

# classic BPF opcodes (linux/filter.h, linux/seccomp.h)
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_KILL_PROCESS, _RET_ALLOW = 0x80000000, 0x7FFF0000
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (or it is switched off)."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _seccomp_problem() -> str | None:
    if platform.machine() not in _AUDIT_ARCH:
        return f"no seccomp filter for the {platform.machine()} architecture"
    libc = _libc()
    if libc.prctl(_PR_GET_SECCOMP, 0, 0, 0, 0) < 0:
        return f"the kernel has no seccomp ({os.strerror(ctypes.get_errno())})"
    return None


def probe() -> dict[str, Any]:
    """Which layers this kernel offers to an unprivileged process (nothing is applied):
    ``landlock_abi`` (0 = none), ``landlock``, ``landlock_net``, ``landlock_scope``,
    ``seccomp``, ``arch`` and ``problems`` (why a layer is missing)."""
    abi = landlock_abi()
    problems = []
    if not abi:
        problems.append("the kernel has no Landlock (Linux 5.13+ with landlock in the lsm= list)")
    seccomp_problem = _seccomp_problem()
    if seccomp_problem:
        problems.append(seccomp_problem)
    return dict(landlock_abi=abi, landlock=abi >= 1, landlock_net=abi >= LANDLOCK_NET_ABI,
                  landlock_scope=abi >= LANDLOCK_SCOPE_ABI, seccomp=seccomp_problem is None,
                  arch=platform.machine(), problems=problems)


def restrict(workdir: str, readable: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Confine the calling process for good: Landlock, then the seccomp filter.

    ``readable`` paths (directories or files) stay readable; ``workdir`` is the only place
    it may write. Returns ``(applied, problems)``: the layers now in force and why any
    other is missing. The caller decides whether a missing layer is acceptable.
    """
    applied: list[str] = []
    problems: list[str] = []
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return applied, [f"prctl(NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}"]
    applied.append("no_new_privs")
    try:
        applied += _landlock(libc, workdir, readable)
    except OSError as exc:
        problems.append(f"Landlock: {exc}")
    try:
        install_filter(seccomp_filter(os.getpid()))
        applied.append("seccomp")
    except OSError as exc:
        problems.append(f"seccomp: {exc}")
    return applied, problems


def _landlock(libc: ctypes.CDLL, workdir: str, readable: list[str] | tuple[str, ...]) -> list[str]:
    abi = landlock_abi()
    if not abi:
        raise OSError(errno.ENOSYS, "the kernel has no Landlock")
    fs_all = _FS_ALL[max(k for k in _FS_ALL if k <= abi)]
    file_rights = _FS_FILE_RIGHTS[max(k for k in _FS_FILE_RIGHTS if k <= abi)]
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= LANDLOCK_NET_ABI else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= LANDLOCK_SCOPE_ABI else 0
    if abi >= LANDLOCK_SCOPE_ABI:
        attr = struct.pack("=QQQ", fs_all, net, scoped)
    elif abi >= LANDLOCK_NET_ABI:
        attr = struct.pack("=QQ", fs_all, net)
    else:
        attr = struct.pack("=Q", fs_all)
    buf = ctypes.create_string_buffer(attr, len(attr))
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), buf, ctypes.c_size_t(len(attr)),
                      ctypes.c_uint32(0))
    if fd < 0:
        raise _errno_error("landlock_create_ruleset")
    try:
        read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        for path in dict.fromkeys([*readable]):
            _allow(libc, fd, path, read, file_rights)
        _allow(libc, fd, workdir, fs_all, file_rights)
        if libc.syscall(ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd),
                        ctypes.c_uint32(0)) != 0:
            raise _errno_error("landlock_restrict_self")
    finally:
        os.close(fd)
    layers = ["landlock_fs"]
    if net:
        layers.append("landlock_net")
    if scoped:
        layers.append("landlock_scope")
    return layers


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int, file_rights: int) -> None:
    try:
        target = os.open(path, _O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist needs no rule
    try:
        if not os.path.isdir(path):
            rights &= file_rights
        rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, target), 12)
        if libc.syscall(ctypes.c_long(_SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                        ctypes.c_int(_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0)) != 0:
            raise _errno_error(f"landlock_add_rule({path})")
    finally:
        os.close(target)


def _errno_error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what} failed: {os.strerror(code)}")


def seccomp_filter(pid: int, *, arch: str | None = None,
                   deny: tuple[str, ...] = _DENIED, errno_value: int = errno.EPERM) -> bytes:
    """The BPF program (``struct sock_filter[]`` as bytes) of the sandbox's seccomp layer.

    Syscalls of another architecture ABI kill the process; ``deny`` fail with
    ``errno_value``; signals and ``prlimit64`` work only on the process itself (``pid``);
    ``socketpair`` only for AF_UNIX; everything else is allowed.
    """
    arch, nr, prog = _prologue(arch)
    fail = 0x00050000 | errno_value
    for name in deny:
        if name in nr:
            prog += [(_JEQ_K, 0, 1, nr[name]), (_RET_K, 0, 0, fail)]
    # A syscall allowed for one first-argument value: nr != N -> skip these 5 instructions.
    checks = [(nr[n], pid) for n in _SELF_ONLY if n in nr]
    checks += [(nr["socketpair"], _AF_UNIX)]
    for number, value in checks:
        prog += [
            (_JEQ_K, 0, 4, number),
            (_LD_W_ABS, 0, 0, _OFF_ARG0),
            (_JEQ_K, 0, 1, value & 0xFFFFFFFF),
            (_RET_K, 0, 0, _RET_ALLOW),
            (_RET_K, 0, 0, fail),
        ]
    # prlimit64: pid 0 (itself) or its own pid; anything else fails.
    prog += [
        (_JEQ_K, 0, 5, nr["prlimit64"]),
        (_LD_W_ABS, 0, 0, _OFF_ARG0),
        (_JEQ_K, 2, 0, 0),
        (_JEQ_K, 1, 0, pid & 0xFFFFFFFF),
        (_RET_K, 0, 0, fail),
        (_RET_K, 0, 0, _RET_ALLOW),
    ]
    prog.append((_RET_K, 0, 0, _RET_ALLOW))
    return _assemble(prog)


def errno_filter(names: tuple[str, ...], errno_value: int, *, arch: str | None = None) -> bytes:
    """A BPF program that fails only the syscalls ``names`` with ``errno_value`` (e.g.
    ENOSYS for the ``landlock_*`` calls: how a kernel without Landlock looks)."""
    arch, nr, prog = _prologue(arch)
    for name in names:
        prog += [(_JEQ_K, 0, 1, nr[name]), (_RET_K, 0, 0, 0x00050000 | errno_value)]
    prog.append((_RET_K, 0, 0, _RET_ALLOW))
    return _assemble(prog)


def _prologue(arch: str | None) -> tuple[str, dict[str, int], list[tuple[int, int, int, int]]]:
    """Check the architecture (another ABI's syscall numbers kill), then load the number."""
    arch = arch or platform.machine()
    if arch not in _AUDIT_ARCH:
        raise OSError(errno.ENOSYS, f"no seccomp filter for the {arch} architecture")
    col = 0 if arch == "x86_64" else 1
    nr = {name: nums[col] for name, nums in _NR.items() if nums[col] is not None}
    prog = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ_K, 1, 0, _AUDIT_ARCH[arch]),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if arch == "x86_64":  # the x32 ABI's numbers would slip past every rule
        prog += [(_JGE_K, 0, 1, _X32_SYSCALL_BIT), (_RET_K, 0, 0, _RET_KILL_PROCESS)]
    return arch, nr, prog


def _assemble(prog: list[tuple[int, int, int, int]]) -> bytes:
    if len(prog) > 4096:
        raise OSError(errno.E2BIG, "the seccomp program is too long")
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install_filter(program: bytes) -> None:
    """Install a seccomp BPF ``program`` on the calling thread for good (sets
    ``PR_SET_NO_NEW_PRIVS`` first, which an unprivileged filter needs)."""
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _errno_error("prctl(NO_NEW_PRIVS)")
    fprog = _SockFprog(len(program) // 8, program)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise _errno_error("prctl(SET_SECCOMP)")
