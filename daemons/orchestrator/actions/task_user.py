"""Who a task's process runs as: an unprivileged user when the platform runs as root.

As root, a task (a `shell` command) would read every credential and key under
PRVNG_HOME and could rewrite the platform itself; it runs as `PRVNG_TASK_USER`
(default `nobody`) instead, with that user's gid and no supplementary groups. Its
working directory is the workflow's workspace, given to that user; the rest of
PRVNG_HOME stays 0700 root. A platform not running as root has nothing to drop: tasks
run as the platform's user, as before.

The workspace's absolute path lies inside PRVNG_HOME, which the task user cannot
traverse, so a task as that user reaches its files by relative paths (its working
directory is the workspace, entered before the switch).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from daemons.common.settings import Settings
from registry.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class TaskUser:
    name: str
    uid: int
    gid: int
    home: str

    def env(self) -> dict[str, str]:
        """The identity variables a process of this user expects."""
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    def own(self, workspace: Path) -> None:
        """Give the workspace (not what lies above it) to this user, 0700."""
        fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if (st.st_uid, st.st_gid) != (self.uid, self.gid):
                os.fchown(fd, self.uid, self.gid)
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)


def task_user(settings: Settings) -> TaskUser | None:
    """The user tasks run as, or None when the platform is not root (nothing to drop).

    Raises `InvalidInput` when `PRVNG_TASK_USER` names no user, or a privileged one."""
    if os.geteuid() != 0:
        return None
    name = settings.task_user
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise InvalidInput(
            f"PRVNG_TASK_USER={name!r} is not a user on this machine; the platform runs as "
            "root, so tasks must run as an unprivileged user: create it (e.g. `useradd "
            f"--system --no-create-home {name}`) or set PRVNG_TASK_USER to an existing one",
            details={"task_user": name},
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise InvalidInput(
            f"PRVNG_TASK_USER={name!r} has uid/gid 0: tasks would run as root and read every "
            "credential; name an unprivileged user (default: nobody)",
            details={"task_user": name, "uid": entry.pw_uid, "gid": entry.pw_gid},
        )
    return TaskUser(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
