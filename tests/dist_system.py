#!/usr/bin/python3
"""dist_system.py - the whole system on stories260K: t2-router, t2-dispatcher and two worker
groups (group m2: 2 MPI ranks, merged mixtures; group f1: 1 rank, factored mixtures), with SVD
factors, random experts and task profiles made here.

Checks:
  - 32 requests in flight at once from 8 concurrent `t2 submit --parallel 4` clients with
    different adaptations (none, three mixtures, a per-expert and a per-matrix profile, pass 1
    by prompt and by classifier expert) and greedy sampling: every answer names its mixture
    (and pass-1 label) and is byte-identical to `t2 run` with that mixture, applied merged or
    factored (whichever group served it; both are accepted, and the run says how often they
    differ); per-matrix mixtures are checked against the other group layouts' answers;
  - the classify service answers with a label; a generate request sent straight to a worker
    group gives the same text as through the dispatcher;
  - bad input gets an error with a code and every process keeps serving: a prompt longer
    than the context (ERANGE), an unknown expert and profile (ENOTFOUND), negative and huge
    max tokens (refused), max tokens beyond the context (clamped, finish=length);
  - SIGTERM stops every process with exit code 0 (worker groups: all ranks).
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dist_util import Deployment, Checks, T2_ENOTFOUND, T2_ERANGE  # noqa: E402

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park", "A big red ball",
           "One day, a girl named Sue", "The sun was shining", "Tim had a toy car",
           "There was a cat", "Mom said", "The bird flew", "Ben wanted to play",
           "It was a rainy day"]
N_NEW = 40


def main():
    check = Checks("dist_system")
    d = Deployment("dist_system", watchdog_s=300)
    ok = False
    try:
        d.make_files()
        d.write_config([("m2", 2, "merged"), ("f1", 1, "factored", "threads = 2;")])
        d.start_router()
        d.start_group("m2")
        d.start_group("f1")
        d.start_dispatcher()
        check(d.wait_ready(["m2", "f1", "dispatcher"]), "processes ready")

        # ---- many adaptations at once ----
        adapts = ["none", "mix:rand1=0.7,rand2=0.5", "mix:rand2=1", "mix:rand3=0.4,rand1=0.2",
                  "profile:p1", "profile:pm", "prompt", "classifier"]
        procs = []
        for i, a in enumerate(adapts):
            ps = [PROMPTS[(i + k) % len(PROMPTS)] for k in range(4)]
            args = ["-t", "0", "-n", str(N_NEW), "--parallel", "4", "--adapt", a]
            for p in ps:
                args += ["-p", p]
            procs.append((a, ps, d.submit_bg(*args)))
        answers = []
        for a, ps, p in procs:
            rc, out, err = d.collect(p)
            check(rc == 0, f"t2 submit --adapt {a}: exit {rc}: {err.strip()}")
            check(len(out) == len(ps), f"--adapt {a}: {len(out)} answers for {len(ps)} prompts")
            for o in out:
                answers.append((a, o))
        check(len(answers) == 32, f"{len(answers)} answers of 32")
        differ = 0
        per_matrix = {}
        for a, o in answers:
            if not check(o["error"] is None, f"{a}: error {o['error']}"):
                continue
            mix = o["mixture"]
            if a == "none":
                check(mix == [], f"none: mixture {mix}")
            elif a.startswith("mix:"):
                want = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in a[4:].split(",")}
                got = {e["expert"]: e["alpha"] for e in mix}
                check(set(got) == set(want) and all(abs(got[k] - want[k]) < 1e-6 for k in want),
                      f"{a}: result mixture {mix}")
            elif a == "profile:p1":
                check([e["expert"] for e in mix] == ["rand1", "rand2"], f"p1: mixture {mix}")
                check(o["label"] == "p1", f"p1: label {o['label']}")
            elif a == "profile:pm":
                check([e["expert"] for e in mix] == ["rand2", "rand3"] and
                      all(len(e.get("matrix_alpha", [])) == 15 for e in mix), f"pm: mixture {mix}")
            elif a in ("prompt", "classifier"):
                check(o["label"] in ("code", "math", "reasoning", "other"), f"{a}: label {o['label']}")
                check(o["pass1_ms"] is not None and o["pass1_ms"] >= 0, f"{a}: pass1_ms")
                if o["label"] == "other":  # the test config maps other -> rand3
                    check([e["expert"] for e in mix] == ["rand3"], f"{a}: mixture {mix}")
            check(o["pass2_ms"] is not None, f"{a}: pass2_ms")
            check(o["stream_ok"], f"{a}: the streamed chunks differ from the result text")
            check(o["finish"] in ("stop", "length"), f"{a}: finish {o['finish']}")
            if a == "profile:pm":
                per_matrix.setdefault(o["prompt"], set()).add(o["text"])
                continue
            m = Deployment.mix_arg(mix)
            merged = d.reference(o["prompt"], N_NEW, o["prompt_tokens"], m, "merged")
            factored = d.reference(o["prompt"], N_NEW, o["prompt_tokens"], m, "factored") if m else merged
            differ += merged != factored
            check(o["text"] in (merged, factored),
                  f"{a} {o['prompt']!r}: {o['text']!r} is neither t2 run's merged {merged!r} nor "
                  f"factored {factored!r}")
        print(f"{len(answers)} answers checked against t2 run; merged and factored differ for "
              f"{differ} of them")

        # ---- prompts of several chunks (128 + 1, 128 + 72) ----
        long_prompts = [d.prompt_of(129), d.prompt_of(200)]
        rc, out, err = d.submit("-t", "0", "-n", "30", "--parallel", "2", "--adapt",
                                "mix:rand1=0.5,rand3=0.5", *long_prompts)
        check(rc == 0 and len(out) == 2, f"long prompts: {err}")
        for o in out:
            m = Deployment.mix_arg(o["mixture"])
            want = [d.reference(o["prompt"], 30, o["prompt_tokens"], m, a) for a in ("merged", "factored")]
            check(o["text"] in want, f"long prompt of {o['prompt_tokens']} tokens: {o['text']!r} "
                  f"differs from t2 run {want}")
        check(sorted(o["prompt_tokens"] for o in out) == [129, 200],
              f"long prompts: {[o['prompt_tokens'] for o in out]} tokens")

        # ---- per-matrix mixtures: one answer per prompt, whatever served it ----
        rc, out, err = d.submit("-t", "0", "-n", str(N_NEW), "--adapt", "profile:pm", "--parallel",
                                "4", *PROMPTS[:4])
        check(rc == 0, f"profile:pm again: {err}")
        for o in out:
            seen = per_matrix.get(o["prompt"])
            if seen:
                check(o["text"] in seen or len(seen) == 1, f"pm {o['prompt']!r}: answers differ")

        # ---- the worker services directly ----
        rc, out, err = d.submit("-n", "16", PROMPTS[0], service="classify")
        check(rc == 0 and out and out[0]["label"] in ("code", "math", "reasoning", "other"),
              f"classify service: {out} {err}")
        rc, out, err = d.submit("-t", "0", "-n", str(N_NEW), "--adapt", "mix:rand2=1", PROMPTS[1],
                                service="generate")
        if check(rc == 0 and len(out) == 1, f"generate service: {err}"):
            m = Deployment.mix_arg(out[0]["mixture"])
            check(out[0]["text"] in (d.reference(PROMPTS[1], N_NEW, out[0]["prompt_tokens"], m, "merged"),
                                     d.reference(PROMPTS[1], N_NEW, out[0]["prompt_tokens"], m, "factored")),
                  "generate service: text differs from t2 run")
        rc, out, err = d.submit("-t", "0", "--adapt", "prompt", PROMPTS[0], service="generate")
        check(rc != 0 and out and out[0]["error"]["code"] == -4,
              f"pass-1 adaptation sent straight to a worker: {out}")

        # ---- bad input: an error with a code, and everything keeps serving ----
        long_prompt = " ".join(["the dog ran to the big tree and"] * 120)
        rc, out, err = d.submit("-t", "0", long_prompt)
        check(rc != 0 and out and out[0]["error"]["code"] == T2_ERANGE,
              f"oversized prompt: {out and out[0]['error']}")
        # a prompt no tokenization could fit is refused before it is tokenized
        huge_path = os.path.join(d.dir, "huge.txt")
        with open(huge_path, "w") as f:
            f.write("the dog ran to the big tree and " * 60000 + "\n")  # about 2 MB, one line
        rc, out, err = d.submit("-t", "0", "-f", huge_path)
        check(rc != 0 and out and out[0]["error"]["code"] == T2_ERANGE
              and "refused before tokenizing" in out[0]["error"]["message"],
              f"huge prompt: {out and out[0]['error']}")
        # the errors name the expert or profile, never a path on the server
        rc, out, err = d.submit("--adapt", "mix:nosuch=1", PROMPTS[0])
        check(rc != 0 and out and out[0]["error"]["code"] == T2_ENOTFOUND
              and "'nosuch' not found" in out[0]["error"]["message"]
              and "/" not in out[0]["error"]["message"],
              f"unknown expert: {out and out[0]['error']}")
        rc, out, err = d.submit("--adapt", "profile:nosuch", PROMPTS[0])
        check(rc != 0 and out and out[0]["error"]["code"] == T2_ENOTFOUND
              and "'nosuch' not found" in out[0]["error"]["message"]
              and "/" not in out[0]["error"]["message"],
              f"unknown profile: {out and out[0]['error']}")
        for n in ("-5", "5000000"):
            rc, out, err = d.submit("-n", n, PROMPTS[0])
            check(rc != 0 and out and out[0]["error"] and out[0]["error"]["code"] < 0,
                  f"-n {n}: {out}")
        rc, out, err = d.submit("-t", "0", "-n", "100000", PROMPTS[0])
        if check(rc == 0 and out and out[0]["error"] is None, f"-n 100000: {out} {err}"):
            o = out[0]
            check(o["finish"] in ("length", "stop"), f"-n 100000: finish {o['finish']}")
            if o["finish"] == "length":
                check(o["prompt_tokens"] + o["completion_tokens"] == 512 + 1,
                      f"-n 100000: clamped to the context: {o['prompt_tokens']}+{o['completion_tokens']}")
            ref = d.reference(PROMPTS[0], 512, o["prompt_tokens"], None)
            check(o["text"] == ref, "-n 100000: text differs from t2 run -n 512")
        for name in ("router", "m2", "f1", "dispatcher"):
            check(d.procs[name].poll() is None, f"{name} still running after bad input")
        rc, out, err = d.submit("-t", "0", "-n", "8", "--adapt", "mix:rand1=1", PROMPTS[2])
        check(rc == 0 and out and out[0]["error"] is None, f"still serving: {err}")

        # ---- clean shutdown ----
        for name in ("dispatcher", "m2", "f1", "router"):
            rc = d.stop(name, signal.SIGTERM)
            check(rc == 0, f"{name}: exit code {rc} after SIGTERM")
        import re
        for g in ("m2", "f1"):
            with open(d.path(g + ".log")) as f:
                m = re.search(r"stopping: jobs (\d+), done (\d+).*\(([\d.]+) sequences each\)", f.read())
            if check(m is not None, f"{g}: no final statistics in its log"):
                print(f"group {g}: {m.group(1)} jobs, {m.group(3)} sequences per decode step")
                check(int(m.group(2)) > 0, f"group {g} served no job")
                check(float(m.group(3)) > 1.0, f"group {g} never batched sequences")
        ok = check.failed == 0
    except Exception as e:  # noqa: BLE001
        check(False, f"exception: {type(e).__name__}: {e}")
    finally:
        d.cleanup(ok and check.failed == 0)
    return check.done()


if __name__ == "__main__":
    sys.exit(main())
