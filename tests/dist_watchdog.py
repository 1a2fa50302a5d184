#!/usr/bin/python3
"""dist_watchdog.py - the pipeline watchdog on stories260K: two worker groups (g2: 2 ranks,
g1: 1 rank; both merged, so a requeued job gives the same text), worker.watchdog_ms = 2000.

Under load (8 greedy generations at once), rank 1 of g2 is stopped (SIGSTOP, and left
stopped): g2's head keeps heartbeating, but its pipeline stalls. Within the watchdog the head
logs the stall with its job ids, says goodbye (the router requeues its jobs at once) and
aborts the group (mpirun exits non-zero, taking the stopped rank with it). Every request is
answered exactly once, byte-identical to `t2 run`, the requeued ones by g1; no answer is lost
or duplicated. Then g2 is started again (as its launcher would) and serves.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dist_util import Deployment, Checks  # noqa: E402
from dist_faults import PROMPTS, check_answers  # noqa: E402

WATCHDOG_MS = 2000


def rank_pid(d, group, rank):
    """The pid of a rank of a group started by d (found by its command line and MPI rank)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if not argv[0].endswith(b"t2-worker") or group.encode() not in argv or \
                    d.cfg.encode() not in argv:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
                return int(pid)
        except OSError:
            continue
    return None


def main():
    check = Checks("dist_watchdog")
    d = Deployment("dist_watchdog", watchdog_s=200)
    ok = False
    try:
        d.make_files()
        d.write_config([("g2", 2, "merged"), ("g1", 1, "merged")], worker_log="debug",
                       extra_worker=f"watchdog_ms = {WATCHDOG_MS};")
        d.start_router()
        d.start_group("g2")
        d.start_group("g1")
        check(d.wait_ready(["g2", "g1"]), "groups ready")
        n_new = 300
        args = ["-t", "0", "-n", str(n_new), "--parallel", "8", "--timeout-ms", "90000",
                "--service", "generate"]
        for p in PROMPTS:
            args += ["-p", p]
        p = d.submit_bg(*args)
        check(d.wait_log("g2", "in slot", timeout=20), "group g2 took no job")
        time.sleep(0.2)
        victim = rank_pid(d, "g2", 1)
        if not check(victim is not None, "rank 1 of g2 not found"):
            raise RuntimeError("no rank 1")
        os.kill(victim, signal.SIGSTOP)
        t0 = time.time()
        # a second batch after the stop: on an idle machine the first (8 answers in ~0.2 s) may
        # be over before the stop, and g2, still heartbeating with free slots, takes new jobs
        p2 = d.submit_bg(*args)
        stalled = d.wait_log("g2", "pipeline stalled", timeout=30)
        t_detect = time.time() - t0
        check(stalled, "g2 did not report its stalled pipeline")
        print(f"stall of rank 1 detected after {t_detect:.1f} s (worker.watchdog_ms {WATCHDOG_MS})")
        check(t_detect < WATCHDOG_MS / 1000 + 5, f"detected only after {t_detect:.1f} s")
        with open(d.path("g2.log")) as f:
            line = next((l for l in f if "pipeline stalled" in l), "")
        ids = re.findall(r"(\d+)/(\d+)", line.split("jobs (job/request)")[-1])
        print(f"   g2 logged {len(ids)} job(s): {line.strip()[-160:]}")
        check(len(ids) > 0, "the stall names no job")
        mpirun = d.procs["g2"]
        try:
            rc = mpirun.wait(30)
        except Exception:  # noqa: BLE001
            rc = None
        check(rc not in (None, 0), f"g2's mpirun exit code {rc} after the stall (want non-zero)")
        del d.procs["g2"]
        state = "gone"
        for _ in range(50):  # mpirun kills it: gone, or a zombie of init's
            try:
                with open(f"/proc/{victim}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                state = "gone"
            if state in ("gone", "Z"):
                break
            time.sleep(0.1)
        check(state in ("gone", "Z"), f"the stopped rank is still there (state {state}) after "
              "the group aborted")
        rc, out, err = d.collect(p, timeout=120)
        print(f"   {len(out)} answers {time.time() - t0:.1f} s after the stop")
        check_answers(check, d, "rank stopped", out, n_new, PROMPTS, rc, err)
        rc, out, err = d.collect(p2, timeout=120)
        check_answers(check, d, "submitted after the stop", out, n_new, PROMPTS, rc, err)
        with open(d.path("g1.log")) as f:
            requeued = len(re.findall(r"attempt [2-9]", f.read()))
        print(f"   {requeued} jobs were requeued to group g1")
        check(requeued >= len(ids), f"{requeued} requeued to g1, g2 held {len(ids)}")
        d.start_group("g2")  # what systemd (Restart=on-failure) or a supervisor does
        check(d.wait_log("g2", "serving", timeout=30, count=2), "g2 restarted")
        time.sleep(0.3)
        rc, out, err = d.submit("-t", "0", "-n", "20", "--parallel", "8", "--service", "generate",
                                *PROMPTS)
        check_answers(check, d, "after the restart", out, 20, PROMPTS, rc, err)
        for name in ("g2", "g1", "router"):
            rc = d.stop(name, signal.SIGTERM)
            check(rc == 0, f"{name}: exit code {rc} after SIGTERM")
        ok = check.failed == 0
    except Exception as e:  # noqa: BLE001
        check(False, f"exception: {type(e).__name__}: {e}")
    finally:
        d.cleanup(ok and check.failed == 0)
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
