#!/usr/bin/python3
"""bench/run.py: rectify against PyTorch and Darknet on this machine, batch 1.

One command (see bench/README.md):

    bench/run.py                  # every net, 1 and 2 threads (< 10 min)
    bench/run.py --quick          # lenet5 and cifar-vgg, short budgets
    bench/run.py --nets vgg16 --threads 2 --seconds 5

It builds what it needs (ninja -C build: bench/peak, bench/bench_rectify,
tools/rectify; darknet_bench with cc against Debian's libdarknet), measures
the machine's FMA peak and memory bandwidth (bench/peak), then for every net:
writes He weights with `rectify init` into a temporary folder (and the same
weights as a Darknet .weights file), one shared random input, and runs, one
after the other (never in parallel):
  torch    bench/torch_bench.py with /usr/bin/python3, one process for all
           thread counts (best of its variants at each)
  rectify  build/bench/bench_rectify, one process per thread count; for
           T > 1 one more, whose runs alternate between 1 thread and T
           (--speedup: the speed-up measured in one process, at least
           SPEEDUP_PAIRS pairs whatever the time budget)
  darknet  darknet_bench (single-threaded: only in the 1-thread rows)
Each engine: warm-up, then timed runs until at least --repeats runs (Darknet:
3) and --seconds seconds are done. Outputs are compared with PyTorch eager's.
Each measurement also records how busy the rest of the machine was.

Prints the tables and writes everything to bench/results/latest.json.
"""
import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

SPEEDUP_PAIRS = 30  # alternated one-thread / T-thread pairs, at least (bench_rectify --speedup)
STATS_COST_PAIRS = 30  # alternated statistics off / on pairs, at least (bench_rectify --stats-cost)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

NETS = {  # name: model folder (graph only), relative to the repo
    "lenet5": "bench/nets/lenet5",
    "cifar-vgg": "bench/nets/cifar-vgg",
    "alexnet": "models/alexnet",
    "vgg11": "models/vgg11",
    "vgg16": "models/vgg16",
}
QUICK_NETS = ["lenet5", "cifar-vgg"]
# issue 4: rectify's median at most this times the best other engine's
GOALS = {"lenet5": 0.5, "alexnet": 0.5, "cifar-vgg": 0.75, "vgg11": 0.75, "vgg16": 0.75}
TORCH_PYTHON = "/usr/bin/python3"
DARKNET_DIR = "/usr/lib/darknet"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- measuring one process, and how busy the rest of the machine was ----

def _cpu_jiffies():
    """(busy, steal) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return user + nice + system + irq + softirq + steal, steal


def wait_quiet(limit_s, threshold=0.10):
    """Waits, up to limit_s seconds, for a second in which other processes
    use less than `threshold` of the machine. Returns the seconds waited."""
    if limit_s <= 0:
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count() or 1
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        b0, _ = _cpu_jiffies()
        time.sleep(1.0)
        b1, _ = _cpu_jiffies()
        if (b1 - b0) / hz / ncpu < threshold:
            break
    return round(time.monotonic() - t0, 1)


def run_json(cmd, what, timeout=1800, env=None, quiet_wait=0.0):
    """Runs cmd, parses its stdout as JSON. Returns (doc or None, info) where
    info has the wall time and 'other_load': the share of the machine's CPU
    time (all cores) used by anything but this process while it ran."""
    waited = wait_quiet(quiet_wait)
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count() or 1
    b0, s0 = _cpu_jiffies()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, {"error": f"{what}: timed out after {timeout} s"}
    wall = time.monotonic() - t0
    b1, s1 = _cpu_jiffies()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    other = max(0.0, (b1 - b0) / hz - own)
    info = {"wall_s": round(wall, 3), "cpu_s": round(own, 3),
            "other_load": round(min(1.0, other / (wall * ncpu)), 3) if wall > 0 else 0.0,
            "steal_s": round((s1 - s0) / hz, 3), "waited_quiet_s": waited}
    if p.returncode != 0:
        tail = (p.stderr or "").strip().splitlines()[-5:]
        info["error"] = f"{what}: exit {p.returncode}: " + " | ".join(tail)
        return None, info
    try:
        return json.loads(p.stdout), info
    except json.JSONDecodeError as e:
        info["error"] = f"{what}: output is not JSON ({e})"
        return None, info


# ---- building ----

build_failed = False


def build(build_dir, want_darknet, no_build, allow_install):
    global build_failed
    rectify = os.path.join(build_dir, "tools", "rectify")
    bench = os.path.join(build_dir, "bench", "bench_rectify")
    peak = os.path.join(build_dir, "bench", "peak")
    if not no_build:
        if not os.path.exists(os.path.join(build_dir, "build.ninja")):
            log(f"[build] meson setup {build_dir}")
            subprocess.run(["meson", "setup", build_dir], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
        log(f"[build] ninja -C {build_dir} bench/peak bench/bench_rectify tools/rectify")
        p = subprocess.run(["ninja", "-C", build_dir, "bench/peak", "bench/bench_rectify",
                            "tools/rectify"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            build_failed = True
            log("[build] FAILED (the engine may be mid-edit):\n" + p.stdout[-3000:])
            if not all(os.path.exists(e) for e in (rectify, bench, peak)):
                sys.exit("[build] failed and no earlier binaries to use")
            log("[build] going on with the binaries already in " + build_dir)
    for exe in (rectify, bench, peak):
        if not os.path.exists(exe):
            sys.exit(f"{exe} is missing: build first (ninja -C {build_dir})")
    darknet = None
    darknet_why = None
    if want_darknet:
        darknet, darknet_why = build_darknet(build_dir, allow_install)
    return rectify, bench, peak, darknet, darknet_why


def build_darknet(build_dir, allow_install):
    lib = os.path.join(DARKNET_DIR, "libdarknet.so")
    hdr = os.path.join(DARKNET_DIR, "include", "darknet.h")
    if not (os.path.exists(lib) and os.path.exists(hdr)) and allow_install \
            and os.geteuid() == 0 and shutil.which("apt-get"):
        log("[darknet] not installed: apt-get install -y darknet")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "darknet"]
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not (os.path.exists(lib) and os.path.exists(hdr)):
        return None, ("Debian package darknet not installed (apt-get install darknet); "
                      "Darknet skipped")
    src = os.path.join(HERE, "darknet_bench.c")
    out_dir = os.path.join(build_dir, "bench")
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, "darknet_bench")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        cc = os.environ.get("CC", "cc")
        cmd = [cc, "-O2", "-std=gnu11", src, "-I", os.path.join(DARKNET_DIR, "include"),
               "-L", DARKNET_DIR, "-ldarknet", f"-Wl,-rpath,{DARKNET_DIR}", "-o", exe]
        log("[build] " + " ".join(cmd))
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            return None, "darknet_bench did not compile: " + p.stdout[-500:]
    return exe, None


def git_commit():
    try:
        c = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "engine"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True).stdout.strip()
        return c, bool(dirty)
    except OSError:
        return "unknown", False


def engine_diff_sha1():
    """sha1 of `git diff HEAD -- engine`: tells apart runs of different
    uncommitted engines on the same commit."""
    import hashlib
    try:
        d = subprocess.run(["git", "diff", "HEAD", "--", "engine"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        return hashlib.sha1(d).hexdigest()[:12] if d else None
    except OSError:
        return None


# ---- comparing outputs ----

def read_f32(path):
    import numpy as np
    return np.fromfile(path, dtype=np.float32) if os.path.exists(path) else None


def rel_diff(a, b):
    """max |a - b| / max |b|: b is the reference (PyTorch eager)."""
    import numpy as np
    if a is None or b is None or a.shape != b.shape:
        return None
    scale = float(np.max(np.abs(b))) or 1.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) / scale)


def compare(prefix, ref_prefix):
    out = {}
    for kind in ("logits", "out"):
        d = rel_diff(read_f32(f"{prefix}.{kind}.f32"), read_f32(f"{ref_prefix}.{kind}.f32"))
        if d is not None:
            out[kind] = d
    return out


# ---- formatting ----

def fmt_ms(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def table(headers, rows, align=None):
    cols = len(headers)
    w = [len(h) for h in headers]
    for r in rows:
        for i in range(cols):
            w[i] = max(w[i], len(str(r[i])))
    align = align or ["l"] + ["r"] * (cols - 1)

    def line(vals):
        cells = []
        for i, v in enumerate(vals):
            s = str(v)
            cells.append(s.ljust(w[i]) if align[i] == "l" else s.rjust(w[i]))
        return "| " + " | ".join(cells) + " |"
    sep = "|" + "|".join(("-" * (w[i] + 1) + ":") if align[i] == "r" else ("-" * (w[i] + 2))
                         for i in range(cols)) + "|"
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def main_table(results, machine):
    rows = []
    for r in results:
        T = r["threads"]
        peak = machine.get(str(T), {}).get("peak_gflops")
        flop = 2.0 * r["macs"]
        eng = r["engines"]
        others = [e for k, e in eng.items()
                  if k != "rectify" and isinstance(e, dict) and e.get("median_ms")]
        best_other = min(others, key=lambda e: e["median_ms"]) if others else None
        for name in ("rectify", "torch", "darknet"):
            e = eng.get(name)
            if e is None:
                continue
            label = name
            if name == "torch" and e.get("best"):
                label = f"torch ({e['best']})"
            if not e.get("median_ms"):
                rows.append([r["net"], T, label, "failed", "", "", "", "", "", "", ""])
                continue
            med = e["median_ms"]
            gf = flop / (med * 1e-3) / 1e9
            ratio = ""
            if name == "rectify" and best_other:
                x = med / best_other["median_ms"]
                goal = GOALS.get(r["net"])
                ratio = f"{x:.2f}x" + (f" ({'ok' if x <= goal else 'goal'} {goal})" if goal else "")
            diff = e.get("diff_vs_torch", {}).get("logits", e.get("diff_vs_torch", {}).get("out"))
            rows.append([r["net"], T, label, fmt_ms(med),
                         f"{fmt_ms(e['min_ms'])}-{fmt_ms(e['max_ms'])}", fmt_ms(e.get("median_cpu_ms")),
                         ratio,
                         f"{gf:.1f}", f"{100 * gf / peak:.1f}%" if peak else "-",
                         f"{diff:.1e}" if diff is not None else "",
                         f"{100 * e.get('other_load', 0):.0f}%"])
    return table(["net", "T", "engine", "median ms", "min-max ms", "CPU ms", "rectify / best other",
                  "GFLOP/s", "% peak", "diff", "other load"], rows,
                 ["l", "r", "l", "r", "r", "r", "l", "r", "r", "r", "r"])


def torch_table(results):
    variants = []
    for r in results:
        for v in r["engines"].get("torch", {}).get("variants", {}):
            if v not in variants:
                variants.append(v)
    rows = []
    for r in results:
        t = r["engines"].get("torch")
        if not t:
            continue
        row = [r["net"], r["threads"]]
        for v in variants:
            e = t.get("variants", {}).get(v, {})
            row.append(fmt_ms(e.get("median_ms")) if "median_ms" in e else "error")
        row.append(t.get("best", "-"))
        rows.append(row)
    return table(["net", "T"] + [f"{v} ms" for v in variants] + ["best"], rows)


def rectify_table(results):
    rows = []
    t1 = {r["net"]: r["engines"]["rectify"]["median_ms"] for r in results
          if r["threads"] == 1 and r["engines"].get("rectify", {}).get("median_ms")}
    for r in results:
        e = r["engines"].get("rectify")
        if not e or not e.get("median_ms"):
            continue
        speedup = f"{t1[r['net']] / e['median_ms']:.2f}x" if r["net"] in t1 else "-"
        u = e.get("speedup") or {}
        alternated = (f"{u['ratio']:.2f}x ({u['median_one_ms']:.3g} / {u['median_many_ms']:.3g} ms, "
                      f"{u['pairs']} pairs)" if u.get("ratio") else "-")
        wb = e.get("weight_file_bytes") or e.get("weight_bytes") or 0
        rss = e.get("peak_rss_bytes", 0)
        p = e.get("packed") or {}
        rows.append([r["net"], r["threads"], fmt_ms(e.get("load_ms")), fmt_ms(e.get("first_run_ms")),
                     fmt_ms(p.get("load_ms")), fmt_ms(p.get("first_run_ms")),
                     fmt_ms(e["median_ms"]), speedup, alternated, e.get("runs"), f"{rss / 2**20:.1f}",
                     f"{wb / 2**20:.1f}", f"{rss / wb:.2f}" if wb else "-",
                     fmt_ms(e.get("layer_sum_ms"))])
    return table(["net", "T", "load ms", "first run ms", "packed: load ms", "packed: first run ms",
                  "median ms", "speed-up vs T=1", "speed-up, T=1 and T alternated", "runs", "peak RSS MiB",
                  "weights MiB", "RSS / weights", "sum of layers ms"], rows)


def dense_rows_read(layers, i):
    """The share of a dense layer's weight rows its kernel reads: those of
    the non-zero inputs (its input is the layer before it in these nets)."""
    prev = layers[i - 1] if i > 0 else None
    if not prev or not prev.get("elements"):
        return 1.0
    return 1.0 - prev["zeros"] / prev["elements"]


def layer_table(results, machine, net="vgg16"):
    per_t = [(r["threads"], r["engines"]["rectify"]) for r in results
             if r["net"] == net and r["engines"].get("rectify", {}).get("layers")]
    if not per_t:
        return None
    layers = per_t[0][1]["layers"]
    headers = ["layer", "op", "MMACs"]
    for T, _ in per_t:
        headers += [f"T={T} ms", f"T={T} GFLOP/s", f"T={T} % peak|bw"]
    rows = []
    totals = {T: 0.0 for T, _ in per_t}
    for i, L in enumerate(layers):
        row = [L["name"], L["op"], f"{L['macs'] / 1e6:.0f}" if L["macs"] else ""]
        for T, e in per_t:
            ms = e["layers"][i]["median_ms"]
            totals[T] += ms
            m = machine.get(str(T), {})
            if L["macs"] and ms > 0:
                gf = 2.0 * L["macs"] / (ms * 1e-3) / 1e9
                if L["op"] == "dense":
                    # the weight rows of the input's non-zeros: what the kernel reads
                    gbs = 4.0 * L["params"] * dense_rows_read(e["layers"], i) / (ms * 1e-3) / 1e9
                    pct = f"{100 * gbs / m['read_gbs']:.0f}% bw" if m.get("read_gbs") else "-"
                else:
                    pct = f"{100 * gf / m['peak_gflops']:.0f}%" if m.get("peak_gflops") else "-"
                row += [fmt_ms(ms), f"{gf:.1f}", pct]
            elif e["layers"][i].get("fused_into"):  # its time is that layer's
                row += ["in " + e["layers"][i]["fused_into"], "", ""]
            else:
                row += [fmt_ms(ms), "", ""]
        rows.append(row)
    row = ["sum of layers", "", f"{sum(L['macs'] for L in layers) / 1e6:.0f}"]
    for T, e in per_t:
        row += [fmt_ms(totals[T]), "", ""]
    rows.append(row)
    row = ["whole run (median)", "", ""]
    for T, e in per_t:
        row += [fmt_ms(e["median_ms"]), "", ""]
    rows.append(row)
    return table(headers, rows, ["l", "l"] + ["r"] * (len(headers) - 2))


# ---- main ----

def main():
    ap = argparse.ArgumentParser(description="rectify vs PyTorch vs Darknet, batch 1 (issue 4)")
    ap.add_argument("--nets", default=None,
                    help=f"comma-separated, from {','.join(NETS)} (default: all; --quick: "
                         f"{','.join(QUICK_NETS)})")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="minimum timed runs per engine (default 5; --quick 5)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="time budget of timed runs per engine and torch variant: runs go on "
                         "until both --repeats and this are reached (default 1.5; --quick 0.3)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                    help="before each measurement wait up to S seconds for a second in which other "
                         "processes use < 10%% of the machine (default 0: do not wait)")
    ap.add_argument("--max-repeats", type=int, default=2000, help="cap on timed runs (default 2000)")
    ap.add_argument("--quick", action="store_true", help="small nets, short budgets, small peak buffer")
    ap.add_argument("--engines", default="rectify,torch,darknet")
    ap.add_argument("--torch-variants", default="eager,channels_last,script",
                    help="also possible: mkldnn (default eager,channels_last,script)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--no-build", action="store_true", help="use build/ as it is")
    ap.add_argument("--no-install", action="store_true",
                    help="do not apt-get install darknet when it is missing")
    ap.add_argument("--peak-json", help="reuse a bench/peak JSON instead of measuring")
    ap.add_argument("--keep", metavar="DIR", help="keep weights, inputs and outputs in DIR")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin the one-thread runs of every engine to one CPU, the last this "
                         "process may use (by default they are: a process that lands elsewhere or "
                         "migrates ran LeNet-5 1.6 to 3x slower)")
    ap.add_argument("--stats-cost", action="store_true",
                    help="also measure what the sparsity statistics cost: bench_rectify --stats-cost "
                         "(runs with them off and on, alternated in one process)")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"),
                    help="where to write the results (default bench/results/latest.json)")
    args = ap.parse_args()

    t_start = time.monotonic()
    nets = (args.nets.split(",") if args.nets else (QUICK_NETS if args.quick else list(NETS)))
    for n in nets:
        if n not in NETS:
            sys.exit(f"unknown net {n}: choose from {', '.join(NETS)}")
    threads = [int(t) for t in args.threads.split(",")]
    repeats = args.repeats or 5
    seconds = args.seconds if args.seconds is not None else (0.3 if args.quick else 1.5)
    engines = args.engines.split(",")
    pin_cpu = max(os.sched_getaffinity(0))

    rectify, bench, peak, darknet, darknet_why = build(
        args.build_dir, "darknet" in engines, args.no_build, not args.no_install)
    if "darknet" in engines and not darknet:
        log(f"[darknet] {darknet_why}")
    if "torch" in engines and not os.path.exists(TORCH_PYTHON):
        sys.exit(f"{TORCH_PYTHON} is missing (Debian python3-torch)")

    commit, dirty = git_commit()
    diff_sha = engine_diff_sha1()
    built = datetime.datetime.fromtimestamp(os.path.getmtime(bench)).astimezone()

    # the machine
    if args.peak_json:
        with open(args.peak_json) as f:
            peak_doc = json.load(f)
        peak_info = {"reused": args.peak_json}
    else:
        cmd = [peak, "--threads", ",".join(map(str, threads))]
        if args.quick:
            cmd += ["--size-mib", "256", "--reps", "3", "--fma-ms", "100"]
        log("[peak] " + " ".join(cmd))
        peak_doc, peak_info = run_json(cmd, "peak", quiet_wait=args.wait_quiet)
        if peak_doc is None:
            sys.exit(peak_info.get("error"))
    machine = peak_doc["summary"]
    log("[peak] " + "; ".join(f"T={t}: {m['peak_gflops']:.0f} GFLOP/s ({m['peak_isa']}), "
                              f"read {m['read_gbs']:.1f} GB/s, copy {m['copy_gbs']:.1f} GB/s"
                              for t, m in machine.items()))

    work = args.keep or tempfile.mkdtemp(prefix="rectify-bench-")
    os.makedirs(work, exist_ok=True)
    # Others may rebuild build/ while this runs: every measurement of this
    # run uses copies of the binaries as they are now (statically linked
    # with the engine).
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir, exist_ok=True)
    snap = {}
    for exe in (rectify, bench, darknet):
        if exe:
            snap[exe] = os.path.join(bindir, os.path.basename(exe))
            shutil.copy2(exe, snap[exe])
    rectify, bench = snap[rectify], snap[bench]
    darknet = snap.get(darknet) if darknet else None
    results = []
    try:
        import numpy as np
        for net in nets:
            folder = os.path.join(ROOT, NETS[net])
            spec = benchlib.load_spec(folder)
            summary = json.loads(subprocess.run([rectify, "summary", "--json", folder],
                                                stdout=subprocess.PIPE, check=True, text=True).stdout)
            macs = sum(L["macs"] for L in summary["layers"])
            wfile = os.path.join(work, f"{net}.safetensors")
            log(f"[{net}] rectify init -> {wfile}")
            subprocess.run([rectify, "init", folder, "-o", wfile, "--seed", "1"], check=True,
                           stdout=subprocess.DEVNULL)
            wbytes = os.path.getsize(wfile)
            pfile = os.path.join(work, f"{net}.rxpack")
            if "rectify" in engines:
                # the same weights packed for this CPU: the load that maps
                # instead of packing (`rectify pack`), measured beside
                log(f"[{net}] rectify pack -> {pfile}")
                subprocess.run([rectify, "pack", folder, "--weights", wfile, "-o", pfile], check=True,
                               stdout=subprocess.DEVNULL)
            C, H, W = spec["input"]["shape"]
            inp = os.path.join(work, f"{net}.input.f32")
            np.random.default_rng(0).uniform(-1, 1, C * H * W).astype(np.float32).tofile(inp)

            dk_cfg = dk_weights = None
            dk_why = darknet_why
            if darknet and 1 in threads:
                try:
                    cfg, order = benchlib.darknet_cfg(spec)
                    dk_cfg = os.path.join(work, f"{net}.cfg")
                    dk_weights = os.path.join(work, f"{net}.weights")
                    with open(dk_cfg, "w") as f:
                        f.write(cfg + "\n")
                    benchlib.write_darknet_weights(order, benchlib.read_safetensors(wfile), dk_weights)
                except ValueError as e:
                    dk_cfg = None
                    dk_why = f"cannot express {net} in darknet: {e}"
                    log(f"[{net}] {dk_why}")

            budget = ["--repeats", str(repeats), "--min-seconds", str(seconds),
                      "--max-repeats", str(args.max_repeats)]
            qw = args.wait_quiet
            torch_doc, torch_info = None, {}
            torch_ref = os.path.join(work, f"{net}.torch")
            if "torch" in engines:
                # one process for every thread count: the weights are read
                # and each variant prepared (traced, frozen) once
                log(f"[{net} T={','.join(map(str, threads))}] torch ({args.torch_variants})")
                cmd = [TORCH_PYTHON, os.path.join(HERE, "torch_bench.py"), folder,
                       "--weights", wfile, "--threads", ",".join(map(str, threads)),
                       "--input", inp, "--variants", args.torch_variants, "--warmup", "2",
                       "--dump", torch_ref] + budget + ([] if args.no_pin else ["--pin-one", str(pin_cpu)])
                torch_doc, torch_info = run_json(cmd, "torch", quiet_wait=qw)
            for T in threads:
                res = {"net": net, "threads": T, "macs": macs, "weight_file_bytes": wbytes,
                       "engines": {}}
                pin = [] if args.no_pin or T > 1 else ["taskset", "-c", str(pin_cpu)]
                base = os.path.join(work, f"{net}.t{T}")
                if "torch" in engines:
                    e = dict(torch_info)
                    if torch_doc:
                        e.update(torch_doc["by_threads"][str(T)])
                        for k in ("load_ms", "torch_version", "cpu_capability", "blas_libraries",
                                  "mkldnn_enabled", "peak_rss_bytes"):
                            e[k] = torch_doc.get(k)
                    res["engines"]["torch"] = e
                if "rectify" in engines:
                    log(f"[{net} T={T}] rectify")
                    cmd = pin + [bench, folder, "--weights", wfile, "--threads", str(T), "--input", inp,
                                 "--warmup", "2", "--dump", base + ".rectify"] + budget
                    doc, info = run_json(cmd, "rectify", quiet_wait=qw)
                    e = dict(doc or {}, **info)
                    e["weight_file_bytes"] = wbytes
                    if doc and torch_doc:
                        e["diff_vs_torch"] = compare(base + ".rectify", torch_ref)
                    # load and first run from the packed file (a few runs:
                    # the steady state is the same kernels on the same layouts)
                    cmd = pin + [bench, folder, "--weights", pfile, "--threads", str(T), "--input", inp,
                                 "--warmup", "1", "--repeats", "3", "--min-seconds", "0"]
                    pdoc, pinfo = run_json(cmd, "rectify packed", quiet_wait=qw)
                    e["packed"] = {k: (pdoc or {}).get(k) for k in
                                   ("load_ms", "first_run_ms", "median_ms", "peak_rss_bytes")}
                    e["packed"].update(pinfo, file_bytes=os.path.getsize(pfile))
                    if T > 1:
                        # the speed-up as the goal reads it, from runs on one
                        # thread and on T alternated in one process: the
                        # separate processes above are minutes apart, and a
                        # slow stretch of this VM's second vCPU falls on one
                        # with at least SPEEDUP_PAIRS pairs: the time budget
                        # alone gave VGG-16 9 pairs, whose median moved by
                        # 0.1x from one harness run to the next
                        # Its threads bound to the CPUs (OpenMP's places),
                        # as the one-thread processes are pinned: unbound,
                        # the one-thread half wanders between the vCPUs:
                        # 80.5-104.5 ms on VGG-16 in eight processes, bound
                        # 78.6-85.3 in fourteen (the two-thread half about
                        # the same either way): up to 0.2x of flattery.
                        cmd = [bench, folder, "--weights", pfile, "--threads", str(T), "--input", inp,
                               "--warmup", "2", "--speedup", "--repeats", str(max(repeats, SPEEDUP_PAIRS))] + budget[2:]
                        bind = None if args.no_pin else dict(os.environ, OMP_PROC_BIND="true", OMP_PLACES="cores")
                        udoc, uinfo = run_json(cmd, "rectify speed-up", env=bind, quiet_wait=qw)
                        e["speedup"] = dict((udoc or {}).get("speedup") or {}, **uinfo)
                    if args.stats_cost:
                        # at least STATS_COST_PAIRS pairs, as for the
                        # speed-up: the time budget alone gave VGG-16 8,
                        # whose median pair ratio read 1.021 in one run
                        # and 1.010 or less in the others
                        cmd = pin + [
                            bench, folder, "--weights", pfile, "--threads", str(T), "--input", inp,
                            "--warmup", "2", "--stats-cost",
                            "--repeats", str(max(repeats, STATS_COST_PAIRS))] + budget[2:]
                        sdoc, sinfo = run_json(cmd, "rectify stats cost", quiet_wait=qw)
                        e["stats_cost"] = dict((sdoc or {}).get("stats_cost") or {}, **sinfo)
                    res["engines"]["rectify"] = e
                if "darknet" in engines and T == 1 and darknet and dk_cfg:
                    log(f"[{net} T={T}] darknet")
                    # Darknet is 10x off the others: at least 3 timed runs, not 5
                    dk_budget = ["--repeats", str(min(repeats, 3))] + budget[2:]
                    cmd = pin + [darknet, dk_cfg, dk_weights, "--input", inp, "--warmup", "1",
                           "--dump", base + ".darknet"] + dk_budget
                    doc, info = run_json(cmd, "darknet", quiet_wait=qw)
                    e = dict(doc or {}, **info)
                    if doc and torch_doc:
                        e["diff_vs_torch"] = compare(base + ".darknet", torch_ref)
                    res["engines"]["darknet"] = e
                elif "darknet" in engines and T == 1:
                    res["engines"]["darknet_skipped"] = dk_why
                for k, e in res["engines"].items():
                    if isinstance(e, dict) and e.get("error"):
                        log(f"[{net} T={T}] {k}: {e['error']}")
                results.append(res)
            if not args.keep:
                for f in os.listdir(work):
                    if f.startswith(net + "."):
                        os.remove(os.path.join(work, f))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    # The read bandwidth once more, after the nets: this host's moved by a
    # quarter from one harness run to the next (55.9 to 72.3 GB/s on two
    # threads in one evening), and the dense layers' share of it is taken
    # against the higher of the two readings, the stricter.
    if not args.peak_json:
        cmd = [peak, "--threads", ",".join(map(str, threads)), "--no-fma"]
        if args.quick:
            cmd += ["--size-mib", "256", "--reps", "3"]
        log("[peak] " + " ".join(cmd))
        end_doc, peak_info["after_the_nets"] = run_json(cmd, "peak (bandwidth, after the nets)", quiet_wait=args.wait_quiet)
        if end_doc is None:
            log(f"[peak] {peak_info['after_the_nets'].get('error')}: the dense layers' share is of the first "
                "reading only")
        else:
            for t, m in end_doc["summary"].items():
                if t in machine and m.get("read_gbs"):
                    first = machine[t]["read_gbs"]
                    machine[t].update(read_gbs_first=first, read_gbs_after=m["read_gbs"],
                                      read_gbs=max(first, m["read_gbs"]))

    elapsed = time.monotonic() - t_start
    now = datetime.datetime.now().astimezone()
    head = (f"rectify {commit}{f' (engine/ modified, diff {diff_sha})' if dirty else ''}"
            f"{' (BUILD FAILED: earlier binaries)' if build_failed else ''}, {now:%Y-%m-%d %H:%M %Z}, "
            f"{peak_doc.get('cpu', '?')} x{peak_doc.get('cores', '?')}; batch 1; "
            f"repeats >= {repeats}, >= {seconds:g} s per engine; took {elapsed:.0f} s")
    def read(m):
        if "read_gbs_after" not in m:
            return f"read {m['read_gbs']:.1f} GB/s"
        return f"read {m['read_gbs']:.1f} GB/s (before / after the nets {m['read_gbs_first']:.1f} / {m['read_gbs_after']:.1f})"
    machine_lines = ["machine: " + "; ".join(
        f"T={t}: FMA peak {m['peak_gflops']:.0f} GFLOP/s ({m['peak_isa']}), {read(m)}, "
        f"copy {m['copy_gbs']:.1f} GB/s" for t, m in machine.items())]
    out = [head] + machine_lines + ["", main_table(results, machine)]
    if any(r["engines"].get("torch") for r in results):
        out += ["", "PyTorch variants (median ms):", "", torch_table(results)]
    if any(r["engines"].get("rectify") for r in results):
        out += ["", "rectify details:", "", rectify_table(results)]
    sc = [r for r in results if r["engines"].get("rectify", {}).get("stats_cost")]
    if sc:
        rows = [[r["net"], r["threads"], r["engines"]["rectify"]["stats_cost"].get("pairs"),
                 fmt_ms(r["engines"]["rectify"]["stats_cost"].get("median_on_ms")),
                 fmt_ms(r["engines"]["rectify"]["stats_cost"].get("median_off_ms")),
                 f"{r['engines']['rectify']['stats_cost'].get('ratio', 0):.4f}",
                 f"{r['engines']['rectify']['stats_cost'].get('median_pair_ratio', 0):.4f}"] for r in sc]
        out += ["", "What the statistics cost (bench_rectify --stats-cost: runs with them off and on, "
                "alternated in one process):", "",
                table(["net", "T", "pairs", "on ms", "off ms", "on / off", "median pair ratio"], rows)]
    lt = layer_table(results, machine)
    if lt:
        out += ["", "VGG-16 per layer in rectify (median of the per-layer times of the timed runs; "
                "GFLOP/s count the direct convolution's MACs, so a Winograd layer can pass 100% of "
                "peak; dense layers: the weight bytes of the rows the kernel reads, those of the input's non-zeros, / time against the read bandwidth):", "", lt]
    if darknet_why:
        out += ["", f"darknet: {darknet_why}"]
    loads = [peak_info.get("other_load", 0)] + [
        e.get("other_load", 0) for r in results for e in r["engines"].values() if isinstance(e, dict)]
    worst = max(loads) if loads else 0
    if worst > 0.10:
        out += ["", f"WARNING: other processes used up to {100 * worst:.0f}% of the machine during "
                    f"a measurement (peak run: {100 * peak_info.get('other_load', 0):.0f}%); "
                    f"see the 'other load' column: those numbers are noisy."]
    print("\n".join(out))

    doc = {"date": now.isoformat(timespec="seconds"), "commit": commit, "engine_modified": dirty,
           "build_failed": build_failed, "engine_diff_sha1": diff_sha,
           "bench_rectify_built": built.isoformat(timespec="seconds"),
           "elapsed_s": round(elapsed, 1), "args": vars(args), "nets": nets, "threads": threads,
           "repeats": repeats, "seconds": seconds, "machine": peak_doc, "machine_run": peak_info,
           "results": results, "text": "\n".join(out)}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    log(f"[done] {elapsed:.0f} s; results in {os.path.relpath(args.json, os.getcwd())}")


if __name__ == "__main__":
    main()
