"""The sandbox a student's kernel runs in: bubblewrap namespaces, a user of its own, and resource limits.

`SandboxKernelManager` is a jupyter_client kernel manager whose kernel command is wrapped, from the outside in:

    bwrap ...  setpriv --reuid=U ...  prlimit --as --cpu --nproc --fsize ...  python -m ipykernel_launcher

- **bwrap** gives the kernel new network, PID, IPC and UTS namespaces and a file system of its own: the system
  (/usr, /etc, ...) and the Python it runs on (the interpreter, the venv, the course library) read-only, and
  nothing else of the machine. No gradebook, no solutions/, no hidden tests, no other student. The network
  namespace is empty (its own loopback only), so the kernel cannot reach anything, not even a server on the
  grader's loopback; it talks to the grader over ZeroMQ `ipc` sockets in a folder bound into the sandbox.
- **setpriv** drops root for a user id of the sandbox's own (never root, no capabilities, no new privileges).
  Linux does not apply the process limit to root, so this is what makes a fork bomb stop.
- **prlimit** sets the limits of `SandboxLimits`: address space (memory), CPU seconds, processes, file size,
  open files, no core dumps. Wall time and output size are the executor's (executor.py).

The kernel's only writable folder is its scratch folder (`/home/student`, its working directory, holding the
student's notebook and the files handed in with it), plus a private /tmp; both are deleted with the sandbox.
The PID namespace ends with the kernel: a process the student leaves behind dies with it (bwrap is its init).

bubblewrap is Debian's `bubblewrap` package (`apt-get install bubblewrap`); `problem()` says whether it works
here, `require()` raises with the install command when it does not.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import site
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import Dict, Unicode

INSTALL = "apt-get install -y bubblewrap"
SETPRIV, PRLIMIT = "/usr/bin/setpriv", "/usr/bin/prlimit"
HOME = "/home/student"
CACHE = ".cache/selfsup"  # the model cache in the scratch folder (SELFSUP_CACHE in the kernel)
# System folders bound read-only when the machine has them (symlinks, as in merged-/usr Debian, stay symlinks).
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# The only variables the kernel gets (the grader's environment may hold a gradebook password).
PASS_ENV = ("LANG", "LC_ALL", "TZ", "PYTHONHASHSEED")
BOX_PREFIX = "selfsup-sandbox-"  # then the grading process's pid: sweep() knows whose a folder was
UID_BASE = 200_000  # sandbox user ids start here (no such user on the machine: nothing else runs as them)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here; the message says how to fix it."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed kernel (each applies to every process in the sandbox).

    Attributes:
        memory_mb: address space of a process, in MiB (RLIMIT_AS); torch alone maps about 1.5 GiB.
        cpu_seconds: CPU time of a process (RLIMIT_CPU); the kernel gets SIGXCPU, then SIGKILL.
        processes: processes and threads of the sandbox's user (RLIMIT_NPROC).
        file_mb: size of one file written (RLIMIT_FSIZE).
        open_files: open file descriptors (RLIMIT_NOFILE).
        threads: what OMP/MKL/OpenBLAS/torch may use, so that thread pools fit under `processes`.
        output_kb: output kept per notebook (text of streams, results, errors); the rest is cut with a note.
    """

    memory_mb: int = 4096
    cpu_seconds: int = 600
    processes: int = 128
    file_mb: int = 512
    open_files: int = 1024
    threads: int = 2
    output_kb: int = 1024

    def __post_init__(self) -> None:
        if min(asdict(self).values()) <= 0:
            raise ValueError(f"sandbox limits must be positive (got {self})")

    def prlimit_args(self) -> list[str]:
        """The `prlimit` options (soft = hard, so the student cannot raise them)."""
        mb = 1024 * 1024
        return [
            f"--as={self.memory_mb * mb}",
            f"--cpu={self.cpu_seconds}",
            f"--nproc={self.processes}",
            f"--fsize={self.file_mb * mb}",
            f"--nofile={self.open_files}",
            "--core=0",
        ]


def bwrap() -> str | None:
    """The bubblewrap executable, or None."""
    return shutil.which("bwrap") or (Path("/usr/bin/bwrap").is_file() and "/usr/bin/bwrap") or None


@functools.cache
def problem() -> str | None:
    """None when sandboxed kernels can run here, else what is wrong and how to fix it."""
    exe = bwrap()
    if exe is None:
        return f"bubblewrap (bwrap) is not installed: install it with `{INSTALL}` (as root), or `make setup`"
    for tool in (SETPRIV, PRLIMIT):
        if not Path(tool).is_file():
            return f"{tool} is missing: install util-linux (`apt-get install -y util-linux`)"
    probe = [exe, *_system_binds(), "--unshare-net", "--unshare-pid", "--die-with-parent", "--", "/bin/true"]
    try:
        run = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap did not run: {e}"
    if run.returncode != 0:
        return (
            f"bubblewrap cannot create namespaces here ({run.stderr.strip() or run.returncode}); it needs root, or "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    if os.geteuid() != 0:
        return "the sandbox drops to a user id of its own, which needs root: run the grading as root"
    return None


def require() -> None:
    """Raise `SandboxUnavailable` (saying how to install bubblewrap) unless sandboxed kernels can run."""
    message = problem()
    if message is not None:
        raise SandboxUnavailable(
            f"cannot sandbox the students' kernels: {message}. To grade without a sandbox (students' code then "
            "runs as you, with your files and network), pass --unsandboxed."
        )


def _system_binds() -> list[str]:
    args = []
    for path in SYSTEM:
        p = Path(path)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), path]
        elif p.is_dir():
            args += ["--ro-bind", path, path]
    return args + ["--proc", "/proc", "--dev", "/dev"]


def python_folders() -> list[Path]:
    """Folders the kernel's Python needs: the interpreter's prefix, the venv, and editable installs' sources.

    Only what `.pth` files in site-packages name is added, never `sys.path` as a whole: run from the course
    folder, that would hold the working directory (solutions/ and all).
    """
    found = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    for site_dir in site.getsitepackages():
        for pth in Path(site_dir).glob("*.pth"):
            for line in pth.read_text(errors="replace").splitlines():
                folder = Path(line.strip())
                if line.strip() and not line.startswith(("import ", "#")) and folder.is_absolute() and folder.is_dir():
                    found.add(folder.resolve())
    # The outermost folders only; never the root or a top-level folder (/usr is bound anyway).
    kept: list[Path] = []
    for f in sorted(found, key=lambda p: len(p.parts)):
        if len(f.parts) > 2 and not any(f.is_relative_to(k) for k in kept):
            kept.append(f)
    return kept


def _ro_bind_with_parents(path: Path, made: set[Path]) -> list[str]:
    """Bind `path` read-only at the same place, creating its parents world-readable (the host's may be 0700)."""
    args = []
    for parent in reversed(path.parents[:-1]):
        if parent not in made and str(parent) not in SYSTEM:
            args += ["--perms", "0755", "--dir", str(parent)]
            made.add(parent)
    return args + ["--ro-bind", str(path), str(path)]


def kernel_command(kernel_cmd: list[str], box: Path, uid: int, limits: SandboxLimits) -> list[str]:
    """The full command that runs `kernel_cmd` sandboxed, with `box/` holding run/, home/ and tmp/."""
    exe = bwrap()
    if exe is None:
        require()
    made: set[Path] = set()
    args = [exe, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid", "--unshare-ipc"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox", *_system_binds()]
    args += ["--ro-bind", str(box / "passwd"), "/etc/passwd", "--ro-bind", str(box / "group"), "/etc/group"]
    # The private /tmp first: a bind over /tmp hides what is bound below it before, such as a course (and its
    # venv) checked out under /tmp, whose kernel then cannot start.
    args += ["--bind", str(box / "tmp"), "/tmp"]
    for folder in python_folders():
        if not any(folder.is_relative_to(s) for s in SYSTEM if Path(s).is_dir() and not Path(s).is_symlink()):
            args += _ro_bind_with_parents(folder, made)
    args += ["--perms", "0755", "--dir", "/home", "--bind", str(box / "home"), HOME]
    args += [*_ro_bind_with_parents(box / "run", made)[:-3], "--bind", str(box / "run"), str(box / "run")]
    args += ["--chdir", HOME, "--clearenv"]
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        HOME=HOME,
        USER="student",
        TMPDIR="/tmp",
        IPYTHONDIR="/tmp/.ipython",
        MPLCONFIGDIR="/tmp/.matplotlib",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONDONTWRITEBYTECODE="1",
        SELFSUP_CACHE=f"{HOME}/{CACHE}",
        **{v: str(limits.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    )
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    drop = [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs"]
    drop += ["--bounding-set=-all", "--inh-caps=-all"]
    return [*args, "--", *drop, PRLIMIT, *limits.prlimit_args(), "--", *kernel_cmd]


def make_box(uid: int, files_from: Path | None, notebook: Path | None) -> Path:
    """A fresh sandbox folder: run/ (sockets), home/ (scratch: the student's files), tmp/; owned by `uid`."""
    # Not under /tmp: the sandbox's /tmp is its own, and run/ must have the same path inside and out.
    where = os.environ.get("SELFSUP_SANDBOX_DIR") or ("/var/tmp" if Path("/var/tmp").is_dir() else None)
    sweep(Path(where or tempfile.gettempdir()))
    box = Path(tempfile.mkdtemp(prefix=f"{BOX_PREFIX}{os.getpid()}-", dir=where))
    for name in ("run", "home", "tmp"):
        (box / name).mkdir()
    if files_from is not None and files_from.is_dir():
        for item in files_from.iterdir():  # files handed in next to the notebook (data the notebook reads)
            if item.is_file() and item.suffix != ".ipynb":
                shutil.copy2(item, box / "home" / item.name)
    if notebook is not None and notebook.is_file():
        shutil.copy2(notebook, box / "home" / notebook.name)
    _share_model_cache(box / "home" / CACHE, uid)
    (box / "passwd").write_text(f"root:x:0:0::/root:/bin/false\nstudent:x:{uid}:{uid}::{HOME}:/bin/sh\n")
    (box / "group").write_text(f"root:x:0:\nstudent:x:{uid}:\n")
    os.chmod(box, 0o755)
    for path in (box / "run", box / "home", box / "tmp", *(box / "home").iterdir(), *(box / "home" / CACHE).parents):
        if path.is_relative_to(box / "home") or path.parent == box:
            os.chown(path, uid, uid)
    os.chown(box / "home" / CACHE, uid, uid)
    return box


def sweep(folder: Path) -> None:
    """Remove the sandbox folders of grading processes that are gone (killed before they could clean up)."""
    for box in folder.glob(f"{BOX_PREFIX}*-*"):
        pid = box.name.removeprefix(BOX_PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            remove_box(box)


def host_model_cache() -> Path:
    """The grader's selfsup model cache (experiments/cache.py's rule, without importing torch)."""
    if os.environ.get("SELFSUP_CACHE"):
        return Path(os.environ["SELFSUP_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "selfsup"


def _share_model_cache(dest: Path, uid: int) -> None:
    """Give the kernel the grader's cached models (exercises load them, and would train them again otherwise).

    A file anyone may read is hard-linked (root's, read-only to the kernel); any other is copied for the
    kernel's user. Whatever the kernel adds or deletes stays in its scratch: no student changes the cache.
    """
    dest.mkdir(parents=True)
    source = host_model_cache()
    if not source.is_dir():
        return
    for item in source.iterdir():
        if not item.is_file() or item.name.endswith((".lock", ".tmp")):
            continue
        target = dest / item.name
        try:
            if not item.stat().st_mode & 0o004:
                raise PermissionError  # not readable by the kernel's user: copy it
            os.link(item, target)
        except OSError:
            shutil.copyfile(item, target)
            os.chown(target, uid, uid)


def remove_box(box: Path) -> None:
    """Delete a sandbox folder (whatever the student left in it)."""
    shutil.rmtree(box, ignore_errors=True)


_uids = itertools.count()


def _next_uid() -> int:
    """A user id no other sandbox on this machine has now: from the process id and a counter in the process."""
    return UID_BASE + (os.getpid() % 10_000) * 100 + next(_uids) % 100


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs in the sandbox, over ipc sockets in the sandbox's run/ folder.

    Configured like any traitlets class (`SandboxKernelManager.limits`, `.notebook`); the executor sets it.
    """

    limits = Dict({}, help="SandboxLimits fields; the defaults for those not given").tag(config=True)
    notebook = Unicode("", help="the student's notebook, copied into the scratch folder").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(**kwargs)
        self._box: Path | None = None
        self._uid = _next_uid()

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple:  # noqa: ANN401
        if self._box is None:
            files = Path(kw["cwd"]) if kw.get("cwd") else None
            self._box = make_box(self._uid, files, Path(self.notebook) if self.notebook else None)
        # Interrupt by a control message: a signal to bwrap's process group would not reach the kernel.
        self.kernel_spec.interrupt_mode = "message"
        self.transport = "ipc"
        self.ip = str(self._box / "run" / "kernel")
        self.connection_file = str(self._box / "run" / "kernel.json")
        kw["cwd"] = str(self._box)
        return await super()._async_pre_start_kernel(**kw)

    def write_connection_file(self, **kwargs: Any) -> tuple:  # noqa: ANN401
        """Write it as usual, then let the sandbox's user read it (only the sandbox sees run/)."""
        out = super().write_connection_file(**kwargs)
        os.chown(self.connection_file, self._uid, self._uid)
        return out

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The kernel's own command, wrapped in bwrap, setpriv and prlimit."""
        cmd = super().format_kernel_cmd(extra_arguments)
        return kernel_command(cmd, self._box, self._uid, SandboxLimits(**self.limits))

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:  # noqa: ANN401
        kw["stdout"] = subprocess.DEVNULL  # ipykernel's banner; what the student prints goes to the notebook
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._box is not None:
            remove_box(self._box)
            self._box = None
