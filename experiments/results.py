"""Run the comparison experiments with small budgets and write experiments/RESULTS.md.

    python experiments/results.py [--quick] [--only vecmath ...]

Each section holds the command that produced it, its output (tables as Markdown) and one
sentence, computed from the RESULT line, on where we beat the paper or the baselines and where
not. ``--quick`` shrinks the budgets further (for a smoke run). ``--only KEY ...`` (speed, libm, vecmath,
accuracy, paper-ops) runs those experiments alone and replaces just their sections of the existing file, each
with the machine line of its own run.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@functools.lru_cache(maxsize=None)
def machine() -> str:
    """CPU model and core count (lscpu), OS, compiler, load at the first call (asked once per run)."""
    model, cpus = platform.processor() or "unknown CPU", str(os.cpu_count())
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        c = re.search(r"^CPU\(s\):\s*(\d+)", out, re.M)
        model, cpus = (m.group(1).strip() if m else model), (c.group(1) if c else cpus)
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        cc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        cc = "gcc not found"
    try:
        load = "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = ""
    return f"{model}, {cpus} CPUs; {platform.system()} {platform.release()}; {cc}; {load} at start"


def result(out: str) -> dict[str, float]:
    vals = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            for kv in line.split()[1:]:
                k, v = kv.split("=")
                vals[k] = float(v.split("/")[0])  # "k/n" counts are read as k
    return vals


def split(out: str) -> str:
    """Markdown tables kept as they are; other lines in code blocks."""
    blocks, cur, mode = [], [], None
    for line in out.rstrip().splitlines():
        m = "table" if line.startswith("|") else "text"
        if m != mode and cur:
            blocks.append((mode, cur))
            cur = []
        mode = m
        cur.append(line)
    if cur:
        blocks.append((mode, cur))
    parts = []
    for m, lines in blocks:
        parts.append("\n".join(lines) if m == "table" else "```\n" + "\n".join(lines) + "\n```")
    return "\n\n".join(parts)


def table_rows(out: str) -> list[dict[str, str]]:
    """Rows of the first Markdown table in ``out``, as column -> cell text."""
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    if len(lines) < 3:
        return []
    cols = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for ln in lines[2:]:
        if ln.startswith("|---"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) != len(cols):
            break
        rows.append(dict(zip(cols, cells)))
    return rows


def fma_pipe_ops(op_mix: str) -> int:
    """fma + mul count of an "op mix" cell such as "5 fma, 2 add" (the ops that share the FMA pipes)."""
    return sum(int(n) for n, op in re.findall(r"(\d+) (\w+)", op_mix) if op in ("fma", "mul"))


def speed_sentence(out: str) -> str:
    r = result(out)
    x, u = r.get("exp2_speed_ratio_vs_best_baseline"), r.get("exp2_max_ulp")
    if x is None or math.isnan(x):
        return "The run did not produce a RESULT line."
    rows = table_rows(out)
    m = re.search(r"fastest evolved kernel: (.+), ratio", out)
    ev = next((row for row in rows if m and row.get("candidate") == m.group(1)), None)
    base = next((row for row in rows if row.get("candidate", "").startswith("minimax")
                 and row.get("ratio vs best baseline") == "1"), None)
    lo, hi = x, x
    if ev and re.fullmatch(r"[\d.]+-[\d.]+", ev.get("ratio range", "")):
        lo, hi = (float(v) for v in ev["ratio range"].split("-"))
    # kernels of the same instructions differ by up to ~5-10% between functions and runs here (code
    # placement; see pysearch.calibrate.GCC_ALIGN), so only the margin counts as faster
    verdict = ("faster than" if x >= 1.10 and lo > 1 else
               "ahead in every round, but by less than the 1.10x that counts as faster than" if x > 1 and lo > 1 else
               "slower than" if x < 0.95 and hi < 1 else "as fast as (a tie: within the +-5% run-to-run spread)")
    s = (f"The fastest evolved exp2 kernel on [0, 1) ({u:.4f} ULP, verified on every float32) runs at {x:.3f}x "
         f"(median of the rounds; range {lo:.3f}-{hi:.3f}) the speed of the best <= 1 ULP minimax baseline of our "
         f"set, i.e. {verdict} it.")
    if ev and base:
        fe, fb = fma_pipe_ops(ev["op mix"]), fma_pipe_ops(base["op mix"])
        s += f" Ours is {ev['candidate']} ({ev['op mix']}), the baseline {base['candidate']} ({base['op mix']})."
        if "AMD" in machine():
            s += (" On AMD Zen cores fma and mul share two pipes and add/sub have two of their own, so the fma+mul "
                  "count bounds a vectorised loop's speed")
        else:
            s += " fma+mul count"
        s += (f": {fe} against {fb}" + (", ours has fewer." if fe < fb else
                                        ", so a tie is the most the op mix allows." if fe == fb else ", ours has more."))
        fewer = [row for row in rows if row.get("candidate", "").startswith("evolved")
                 and fma_pipe_ops(row.get("op mix", "")) < fb]
        if not fewer:
            s += f" No evolved <= 1 ULP kernel in the library has fewer than {fb} fma+mul."
    for row in rows:  # hand-made library kernels are timed too; say when one beats the baseline
        if row.get("candidate", "").startswith("library, not evolved"):
            try:
                rx = float(row["ratio vs best baseline"])
            except (KeyError, ValueError):
                continue
            s += (f" The hand-derived {row['candidate'][len('library, not evolved'):].strip(' ()')} "
                  f"({row['op mix']}, {row['max ULP']} ULP) runs at {rx:.3f}x.")
    verdicts = re.findall(r"^  (\w+): ((?:faster|not faster|no evolved|no <= 1 ULP|not run)[^\n]*)$", out, re.M)
    k = r.get("targets_faster")
    if verdicts:
        s += (f" Over the issue's five targets{f' ({k:g} faster by >= 1.10x with every round > 1)' if k is not None else ''}: "
              + "; ".join(f"{t}: {v}" for t, v in verdicts) + ".")
    return s + (" The paper's float32 speed-ups are not public in checkable form, so there is no paper number "
                "to stand beside.")


def libm_sentence(out: str) -> str:
    r = result(out)
    u, x = r.get("exp2_full_range_max_ulp"), r.get("exp2_speed_ratio_vs_glibc")
    if u is None:
        return "The run did not produce a RESULT line."
    return (f"Full-range exp2 from the library is accurate to {u:.4f} ULP over every float32 (glibc exp2f: ~0.5 ULP) "
            f"and runs at {x:.3f}x glibc's speed (our exported loop vectorises; glibc's is a scalar call per "
            "element): " + ("faster than glibc, less accurate (still <= 1 ULP)." if x > 1 else
                            "glibc wins on both accuracy and speed here."))


def vecmath_sentence(out: str) -> str:
    r = result(out)
    x, u, k = r.get("vecmath_min_speedup_vs_sleef_u10"), r.get("vecmath_max_ulp"), r.get("vecmath_functions")
    if x is None:
        return "The run did not produce a RESULT line (no SLEEF: `apt-get install libsleef-dev`)."
    low = re.search(r"slowest relative to the fastest SLEEF u10: (\w+) \(([\w-]+) inputs\) at [\d.]+x (.+)", out)
    s = (f"On this CPU the library's {int(k)} full-range kernels (max {u:.4f} ULP, verified on every float32) "
         f"run at least {x:.3f}x the fastest SLEEF u10 variant (median of the rounds, worst function and input set"
         + (f": {low.group(1)}, {low.group(2)}, against {low.group(3)}" if low else "") + "): "
         + ("the 1.2x goal is met." if x >= 1.2 else "faster than SLEEF, short of the 1.2x goal." if x > 1.05 else
            "not faster than SLEEF."))
    row = r"^\| (\w+) \| [\w-]+ \| AVX2 intrinsics \| SLEEF \S+ \| ([\d.]+) \|"
    avx2 = [(f, float(v)) for f, v in re.findall(row, out, re.M)]
    if avx2:
        lo, hi = min(v for _, v in avx2), max(v for _, v in avx2)
        # same-round ratios of equal kernels spread about +-5% on this shared machine: within that, a tie
        ties = sorted({f for f, v in avx2 if v <= 1.05})
        s += (f" The AVX2 build of the same export (what an AVX2-only CPU runs) reaches {lo:.3f}-{hi:.3f}x SLEEF's "
              "AVX2 u10: " + ("faster for every function." if lo > 1.05 else
                              f"faster, except {', '.join(ties)} (at most 1.05x: a tie)." if lo >= 0.95 else
                              f"not faster for {', '.join(ties)}."))
    rust = re.findall(r"^\| (\w+) \| ([\w-]+) \| Rust export \| (.+?) \| ([\d.]+) \|", out, re.M)
    if rust:
        fastest: dict[tuple[str, str], float] = {}  # the fastest SLEEF variant gives the lowest ratio
        for f, kind, vs, v in rust:
            if vs.startswith("SLEEF"):
                fastest[(f, kind)] = min(fastest.get((f, kind), math.inf), float(v))
        vs_c = [float(v) for _, _, vs, v in rust if vs == "ours exported C"]
        if fastest and vs_c:
            s += (f" The Rust export (`pysearch export --library ... --lang rust`, its `NAME_slice` loop vectorised by "
                  f"LLVM with -C target-cpu=native) runs at {min(fastest.values()):.3f}-{max(fastest.values()):.3f}x "
                  f"the fastest SLEEF u10 variant and {min(vs_c):.3f}-{max(vs_c):.3f}x the exported C with intrinsics.")
    lib = [(f, float(v)) for f, v in
           re.findall(r"^\| (\w+) \| [\w-]+ \| pysearch.library \| (?:numpy|scipy.special) \w+ float32 \| ([\d.]+) \|",
                      out, re.M)]
    if lib:
        slow = sorted({f for f, v in lib if v < 1.0})
        s += (f" The numpy-facing call `pysearch.library.<f>(x)` (the JIT) runs at {min(v for _, v in lib):.3f}-"
              f"{max(v for _, v in lib):.3f}x numpy's float32 ufuncs (scipy.special's for erf and sigmoid): "
              + (f"slower for {', '.join(slow)}." if slow else "faster for every function."))
    return s


def accuracy_sentence(out: str) -> str:
    r = result(out)
    e, m = r.get("exp2_real_error_at_10_ops"), r.get("minimax_poly_at_10_ops")
    if e is None:
        return "The run did not produce a RESULT line."
    nb = int(r.get("n_budgets", 11))
    at = int(r.get("budgets_at_or_below_poly_fma", 0))
    exact = int(r.get("budgets_exact_at_or_below_poly_fma", 0))
    f64 = int(r.get("budgets_at_or_below_poly_fma_float64", 0))
    ps, pse = r.get("paper_structure_error", math.nan), r.get("paper_structure_exact_error", math.nan)
    return (f"At 10 ops the evolved program has max relative error {e:.2e} (constants as stored in float64; "
            f"{r.get('exp2_exact_constants_error_at_10_ops', math.nan):.2e} with exact constants): "
            f"{'below' if e < 1e-10 else 'above'} the 1e-10 bar, "
            f"{'below' if e <= 5.4e-15 else 'short of'} the paper's 5.4e-15, and "
            f"{'below' if e <= m else 'above'} the degree-10 Horner-fma minimax polynomial ({m:.2e}). "
            f"Counting fma as one op, the evolved programs are at or below polynomial minimax at {at} of {nb} "
            f"budgets with their stored float64 constants, at {exact} of {nb} with exact constants, and at {f64} "
            f"of {nb} against minimax with float64 coefficients (the fair comparison for stored programs); where "
            "the stored column is above minimax (the largest budgets), float64 constants are the limit, as the "
            "table notes show. The paper's 10-op structure with our constants reaches "
            f"{ps:.2e} ({pse:.2e} exact). We match or beat {int(r.get('paper_points_matched', 0))} of "
            f"{int(r.get('n_paper_points', 4))} of the paper's small-op points (2, 3, 5, 10 ops); our search budget "
            "is minutes on 2 cores, against the paper's many-process days.")


def _section(title: str, cmd: list[str], sentence) -> list[str]:
    """Run one experiment and return its RESULTS.md section (heading, command, output, verdict)."""
    print(f"running: python {' '.join(cmd)}", flush=True)
    t0 = time.time()
    p = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
    out = p.stdout + (f"\n[stderr]\n{p.stderr[-2000:]}" if p.returncode else "")
    md = [f"## {title}", "", f"Command: `python {' '.join(cmd)}` ({time.time() - t0:.0f} s wall, exit {p.returncode})",
          "", split(out), "", f"**Verdict.** {sentence(out)}", ""]
    if "accuracy_vs_ops" in cmd[0] and "--paper-ops" not in cmd:
        md += ["![accuracy vs ops](accuracy_vs_ops.png)", ""]
    return md


def replace_sections(text: str, new: dict[str, list[str]], titles: list[str]) -> str:
    """``text`` with the section headed ``## title`` replaced by ``new[title]`` for each title in ``new``: a
    section ends where the next experiment's heading (one of ``titles``), or else the next level-2 heading, starts."""
    for title, md in new.items():
        head = f"## {title}\n"
        start = text.find(head)
        if start < 0:
            raise SystemExit(f"results.py: no section {title!r} in the existing file to replace")
        ends = [i for t in titles if t != title and (i := text.find(f"\n## {t}\n", start)) > 0]
        if not ends:
            i = text.find("\n## ", start + len(head))
            ends = [i] if i > 0 else [len(text)]
        text = text[:start] + "\n".join(md) + text[min(ends):]
    return text


def paper_ops_sentence(out: str) -> str:
    """The --paper-ops verdict: 10 ops against the paper's 5.4e-15, budgets 4..12 against mul+add minimax."""
    r = result(out)
    e, k = r.get("paper_ops_error_at_10_ops"), r.get("paper_ops_budgets_beating_minimax")
    if e is None or k is None:
        return "The run did not produce a RESULT line."
    n, paper, m = int(r.get("n_budgets_from_4", 9)), r.get("paper_error_at_10_ops", 5.4e-15), \
        r.get("minimax_poly_muladd_at_10_ops", math.nan)
    ratio = e / paper
    gap = (f"{ratio:.0f}x the paper's {paper:.1e} (short of it)" if e > paper
           else f"at or below the paper's {paper:.1e}")
    return (f"In the paper's op set (add, sub, mul, div; cost = ops that depend on x), searched from scratch, the "
            f"best evolved program with at most 10 ops has max relative error {e:.2e}: {gap}, and "
            f"{'below' if e < m else 'not below'} the degree-5 mul+add minimax polynomial ({m:.2e}). Evolved is "
            f"below the mul+add minimax polynomial at {int(k)} of the {n} budgets from 4 to 12 ops "
            f"({'the goal of all of them is met' if int(k) == n else 'the goal is all of them'}). The paper's "
            "programs came from many-process runs over days; ours from the budget in the command, on 2 shared cores.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--only", nargs="+", choices=["speed", "libm", "vecmath", "accuracy", "paper-ops"], default=None,
                    help="run these experiments alone and replace only their sections of the existing --out file")
    args = ap.parse_args(argv)
    q = args.quick
    runs = {
        "speed": ("float32 <= 1 ULP kernels: measured speed (issue 5, experiment 2)",
                  ["experiments/float32_speed.py", "--front",
                   *sorted(str(f.relative_to(ROOT)) for f in (HERE / "fronts").glob("*.json")),
                   *(["--repeat", "5", "--rounds", "3"] if q else [])], speed_sentence),
        "libm": ("Full-range functions vs glibc and numpy (experiment 3)",
                 ["experiments/full_range_vs_libm.py", "--stride", "1024" if q else "256", "--repeat",
                  "11" if q else "101"], libm_sentence),
        "vecmath": ("Full-range float32 vector math vs SLEEF u10 (issue 14)",
                    ["experiments/vecmath_vs_sleef.py", "--stride", "1024" if q else "256",
                     *(["--rounds", "3", "--repeat", "5"] if q else [])], vecmath_sentence),
        "accuracy": ("Real-number accuracy vs operation count, 2^x on [0, 1] (experiment 1)",
                     ["experiments/accuracy_vs_ops.py", *(["--children", "40", "--seconds", "60", "--paper-starts", "10"]
                                                         if q else [])], accuracy_sentence),
        "paper-ops": ("Real-number accuracy vs operation count in the paper's op set, from scratch (issue 13)",
                      ["experiments/accuracy_vs_ops.py", "--paper-ops", "--budget", "60s" if q else "1h"],
                      paper_ops_sentence),
    }
    if args.only:
        text = Path(args.out).read_text()
        mach = machine()  # before the runs: the load at start
        new = {}
        for key in args.only:
            title, cmd, sentence = runs[key]
            md = _section(title, cmd, sentence)
            new[title] = md[:1] + ["", f"Machine (this section's run): {mach}."] + md[1:]
        text = replace_sections(text, new, [t for t, _, _ in runs.values()])
    else:
        md = ["# Experiment results (generated by `python experiments/results.py`)", "",
              f"Machine: {machine()}.", "",
              "Times are thread CPU time, best of the repeats; on a shared, loaded machine absolute ns/element are "
              "noisy, ratios measured in the same run are what to read.", ""]
        # one after another: a search running beside the timings would share the caches and memory bandwidth
        for title, cmd, sentence in runs.values():
            md += _section(title, cmd, sentence)
        text = "\n".join(md)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
