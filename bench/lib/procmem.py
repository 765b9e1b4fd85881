"""Resident memory of a process, or of a process and all below it (Postfix is many processes)."""
import os


def status_kib(pid, field):
    """A field of /proc/PID/status in KiB, or 0 when the process has gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree(root):
    """ROOT and every process below it."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # The name in parentheses may hold spaces: the parent comes after its ')'.
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.update(children)
        frontier.extend(children)
    return found


def pss_kib(pid):
    """Proportional set size: each shared page split among the processes that map it."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def resident_kib(root, whole_tree):
    """VmRSS of ROOT alone; for a tree the sum of Pss, since Postfix's hundred smtpd processes
    share their libraries and a sum of VmRSS would count those pages a hundred times."""
    if whole_tree:
        return sum(pss_kib(pid) for pid in tree(root))
    return status_kib(root, "VmRSS")
