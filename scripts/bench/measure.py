#!/usr/bin/env python3
"""Runs one load generator (wrk or pgbench) and measures, from /proc, the CPU it cost.

usage: measure.py --db NAME [--server-pid PID] [--warmup SECS] --out RESULT.json -- COMMAND...

COMMAND's output goes to RESULT.json's sibling RESULT.log. While it runs, every 0.1 s:
  - the server: utime+stime of --server-pid (all its threads), and its RSS;
  - PostgreSQL: utime+stime of every postgres process serving database NAME (backends
    and autovacuum workers, found by their process title) plus the server-wide WAL
    writer, checkpointer and background writer. A backend that exits (pgbench's, at
    the end) counts with its last sample, so up to 0.1 s of it can be missed;
  - the whole machine (/proc/stat), to show how busy the other users kept it.
The load generator's own CPU comes from its rusage (or /proc). With --warmup, the
first SECS are left out (pgbench opens new connections whose caches start cold, while
the server's pool is warm): the figures cover a window from then to the last sample
before the generator exits, written as window_start/window_end (Unix time) so that
report.py counts only the transactions that ended inside it (pgbench's -l log).
Written as JSON (seconds, KiB):
  wall_s, server_cpu_s, pg_cpu_s, client_cpu_s, machine_busy_s, server_rss_kb_max,
  server_hwm_kb.
"""

import argparse
import json
import os
import subprocess
import time

TICK = os.sysconf("SC_CLK_TCK")
AUX = ("walwriter", "checkpointer", "background writer")


def proc_cpu(pid):
    """utime+stime of a process in seconds, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def comm(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace")


def title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def machine_busy():
    """Seconds of CPU the whole machine spent busy (every core)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / TICK


def rss_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Postgres:
    """CPU of the postgres processes that serve one database."""

    def __init__(self, db):
        self.db = f" {db} "
        self.first = {}  # pid -> cpu when first seen (0 for a process born during the run)
        self.last = {}
        self.ignored = set()
        self.started = False

    def sample(self):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid in self.ignored:
                continue
            if pid not in self.first:
                if comm(pid) != "postgres":
                    self.ignored.add(pid)
                    continue
                t = title(pid)
                if self.db not in t + " " and not any(a in t for a in AUX):
                    # not (yet) one of ours: a backend shows its database once started
                    if "idle" in t or "active" in t or "autovacuum" in t or "launcher" in t:
                        self.ignored.add(pid)
                    continue
            cpu = proc_cpu(pid)
            if cpu is None:
                continue
            if pid not in self.first:
                self.first[pid] = cpu if not self.started else 0.0
            self.last[pid] = cpu
        self.started = True

    def rebase(self):
        """From now on: CPU since this moment (processes born later count from 0)."""
        for pid in self.last:
            self.first[pid] = self.last[pid]

    def total(self):
        return sum(self.last[p] - self.first[p] for p in self.last)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--warmup", type=float, default=0.0,
                    help="seconds left out at the start (pgbench: new connections, cold caches)")
    ap.add_argument("--out", required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command

    pg = Postgres(a.db)
    pg.sample()
    rss_max = 0
    child = None

    def snapshot():
        return {
            "epoch": time.time(),
            "pg": pg.total(),
            "server": proc_cpu(a.server_pid) if a.server_pid else None,
            "busy": machine_busy(),
            "client": proc_cpu(child.pid) if child else 0.0,
        }

    start = snapshot()
    t0 = time.monotonic()
    last = None
    with open(os.path.splitext(a.out)[0] + ".log", "w") as log:
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        while True:
            time.sleep(0.1)
            pg.sample()
            if a.server_pid:
                rss_max = max(rss_max, rss_kb(a.server_pid, "VmRSS") or 0)
            if a.warmup and start.get("warm") is None and time.monotonic() - t0 >= a.warmup:
                pg.rebase()
                start = snapshot()
                start["warm"] = True
            done, status, usage = os.wait4(child.pid, os.WNOHANG)
            if done:
                break
            last = snapshot()  # the child still runs: its backends are all alive
    pg.sample()
    windowed = bool(a.warmup and last and start.get("warm"))
    if windowed:
        # a window that ends at the last sample taken while the generator still ran
        # (its backends exit with it); report.py counts the transactions inside it
        end = last
    else:
        end = snapshot()
        end["client"] = usage.ru_utime + usage.ru_stime
    result = {
        "command": " ".join(cmd),
        "exit": os.waitstatus_to_exitcode(status),
        "window_start": start["epoch"] if windowed else None,
        "window_end": end["epoch"] if windowed else None,
        "wall_s": end["epoch"] - start["epoch"],
        "pg_cpu_s": end["pg"] - start["pg"],
        "pg_processes": len(pg.last),
        "client_cpu_s": end["client"] - start["client"],
        "machine_busy_s": end["busy"] - start["busy"],
    }
    if a.server_pid:
        result["server_cpu_s"] = end["server"] - start["server"]
        result["server_rss_kb_max"] = rss_max
        result["server_hwm_kb"] = rss_kb(a.server_pid, "VmHWM")
    with open(a.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
