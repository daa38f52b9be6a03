"""``python -m bench report``: docs/benchmarks.md and docs/img/*.png from the latest results.

For each suite the newest full result is used, else the newest ``--quick`` one
(marked as such). Every table a suite stored is rendered; the store suite also
gets recall-vs-latency curves and insert-throughput bars, the pipeline suite
images/s bars.

Example::

    write_report(Path("bench/results"), Path("docs"))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .common import fmt

SUITES = ["store", "pipeline", "cli", "server", "quality"]
COMMANDS = {
    "store": "python -m bench store            # 100k and 1M; add --sizes 100000 for a subset",
    "pipeline": "python -m bench pipeline",
    "cli": "python -m bench cli",
    "server": "python -m bench server",
    "quality": "python -m bench quality --model-path DIR [--class-folder DIR]",
}


def latest_results(out: Path) -> dict[str, dict[str, Any]]:
    """suite -> newest result (full runs win over quick runs of any date).

    The store suite is run in parts (100k with every system, 1M with a subset):
    its full result files are merged, the newest figures of each (size, system) winning.
    """
    found: dict[str, dict[str, Any]] = {}
    stores: list[dict[str, Any]] = []
    for p in sorted(out.glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if r.get("suite") not in SUITES:
            continue
        r["_file"] = p.name
        r["_files"] = [p.name]
        if r["suite"] == "store":
            stores.append(r)
        cur = found.get(r["suite"])
        key = (not r.get("quick"), r.get("started", ""))
        if cur is None or key > (not cur.get("quick"), cur.get("started", "")):
            found[r["suite"]] = r
    if stores:
        full = [r for r in stores if not r.get("quick")]
        found["store"] = merge_store(full or [found["store"]])
    return found


def merge_store(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One store result from several runs; tables rebuilt from the merged figures."""
    from .common import table
    from .store_suite import size_tables, targets, targets_table

    parts = sorted(parts, key=lambda r: r.get("started", ""))
    last = parts[-1]
    sizes: dict[str, dict[str, Any]] = {}
    systems: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    notes: list[str] = []
    for r in parts:  # oldest first: newer runs overwrite
        for n, per in r["figures"]["sizes"].items():
            sizes.setdefault(n, {}).update(per)
        systems.update(r["figures"].get("systems", {}))
        unavailable.update(r["figures"].get("unavailable", {}))
        notes += [f"{n} ({r['_file']})" for n in r.get("notes", [])]
    measured = {name for per in sizes.values() for name in per}
    unavailable = {k: v for k, v in unavailable.items() if k not in measured}
    sizes = dict(sorted(sizes.items(), key=lambda kv: int(kv[0])))
    figures = {"sizes": sizes, "systems": systems, "unavailable": unavailable}
    tables = []
    for n, per in sizes.items():
        tables += size_tables(int(n), per, systems)
    if unavailable:
        tables.append(table("Systems not measured", ["system", "reason"],
                            sorted(unavailable.items())))
    big = max(int(n) for n in sizes)
    figures["imgfind_targets"] = targets(figures, big)
    tables.append(targets_table(figures, big))
    return {**last, "figures": figures, "tables": tables, "notes": notes,
            "params": {**last["params"], "sizes": [int(n) for n in sizes],
                       "runs": [r["params"] for r in parts]},
            "_file": ", ".join(r["_file"] for r in parts), "_files": [r["_file"] for r in parts],
            "_contention": [r.get("cpu_contention") for r in parts],
            "duration_s": sum(r.get("duration_s", 0) for r in parts)}


def _commands(results: dict[str, dict[str, Any]]) -> list[str]:
    """The command lines that produced the results in this report."""
    out = []
    for s in SUITES:
        r = results.get(s)
        if not r:
            out.append(COMMANDS[s])
            continue
        quick = " --quick" if r.get("quick") else ""
        if s == "store":
            for p in r["params"].get("runs", [r["params"]]):
                out.append(f"python -m bench store{quick} --sizes "
                           f"{','.join(str(n) for n in p['sizes'])} --systems "
                           f"{','.join(p['systems'])} --queries {p['queries']}")
        elif s == "quality":
            out.append(f"python -m bench quality{quick}"
                       + ("" if r["params"].get("random_weights") else " --model-path DIR"))
        else:
            out.append(f"python -m bench {s}{quick}")
    return out


def _md_table(t: dict[str, Any]) -> str:
    lines = [f"**{t['title']}**", "", "| " + " | ".join(t["columns"]) + " |",
             "|" + "---|" * len(t["columns"])]
    for r in t["rows"]:
        lines.append("| " + " | ".join(fmt(v).replace("|", "\\|") for v in r) + " |")
    if t.get("note"):
        lines += ["", f"_{t['note']}_"]
    return "\n".join(lines) + "\n"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, img: Path, name: str) -> str:
    """Write ``fig`` as ``img/name`` (the same size and dpi for every plot) and free it."""
    fig.tight_layout()
    fig.savefig(img / name, dpi=110)
    _plt().close(fig)
    return name


#: one colour per system across every plot
COLORS = {"imgfind": "tab:blue", "faiss-flat": "tab:orange", "faiss-hnsw32": "tab:green",
          "lancedb": "tab:red", "chroma": "tab:purple", "milvus-lite": "tab:brown"}
#: imgfind's latency bar per curve (unfiltered: 2 ms, 1% filter: 20 ms)
LATENCY_TARGET_MS = {"all": 2.0, "bucket": 20.0}


def _store_plots(res: dict[str, Any], img: Path) -> list[str]:
    from .store_suite import default_setting

    plt = _plt()
    out = []
    for n, per in res["figures"]["sizes"].items():
        for key, label in (("all", "unfiltered"), ("bucket", "1% filter"),
                           ("group", "10% filter")):
            fig, ax = plt.subplots(figsize=(7.5, 4.8))
            for name, r in per.items():
                s = r.get("search")
                if not s:
                    continue
                xs = [st[key]["p50_ms"] for st in s["settings"]]
                ys = [st[key]["recall"] for st in s["settings"]]
                ax.plot(xs, ys, marker="o", label=name, color=COLORS.get(name))
                if name == "imgfind":
                    d = default_setting(s["settings"])
                    ax.plot([d[key]["p50_ms"]], [d[key]["recall"]], marker="*", ms=16,
                            color=COLORS["imgfind"], mec="black", ls="none",
                            label="imgfind default setting")
            ax.set_xscale("log")
            ax.set_xlabel("single-query latency p50 (ms, log)")
            ax.set_ylabel("recall@10 vs exact")
            ax.set_title(f"Recall vs latency, {label}, n={int(n):,}")
            ax.axhline(0.95, color="grey", lw=0.8, ls="--", label="recall 0.95")
            if key in LATENCY_TARGET_MS:
                ax.axvline(LATENCY_TARGET_MS[key], color="grey", lw=0.8, ls=":",
                           label=f"imgfind target p50 {LATENCY_TARGET_MS[key]:g} ms")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8, loc="best")
            out.append(_save(fig, img, f"store-recall-{key}-{n}.png"))
        names = [s for s, r in per.items() if r.get("build")]
        if names:
            fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(names) + 1.6))
            vals = [per[s]["build"]["total_per_s"] for s in names]
            bars = ax.barh(names, vals, color=[COLORS.get(s, "grey") for s in names])
            ax.bar_label(bars, labels=[f"{v:,.0f}" for v in vals], padding=3, fontsize=8)
            ax.invert_yaxis()
            ax.set_xscale("log")
            ax.set_xlim(min(vals) / 2, max(vals) * 8)
            ax.set_xlabel("vectors/s (insert + index build, log)")
            ax.set_title(f"Bulk load throughput, n={int(n):,}")
            ax.grid(alpha=0.3, axis="x")
            out.append(_save(fig, img, f"store-insert-{n}.png"))
    return out


def _pipeline_plot(res: dict[str, Any], img: Path) -> list[str]:
    plt = _plt()
    f = res["figures"]
    labels, vals = [], []
    for part, title in (("flickr", "photos"), ("12mp", "12 MP"), ("int8", "int8")):
        for way in ("imgfind", "naive", "model_only"):
            if isinstance(f.get(part), dict) and way in f[part]:
                labels.append(f"{title}: {way}")
                vals.append(f[part][way]["images_per_s"])
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(labels) + 1.6))
    bars = ax.barh(labels[::-1], vals[::-1],
                   color=[{"imgfind": "tab:blue", "naive": "tab:grey",
                           "model_only": "tab:orange"}[lb.split(": ")[1]] for lb in labels[::-1]])
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in vals[::-1]], padding=3, fontsize=8)
    ax.set_xlim(0, max(vals) * 1.15)
    ax.set_xlabel("images/s")
    ax.set_title("Indexing throughput")
    ax.grid(alpha=0.3, axis="x")
    return [_save(fig, img, "pipeline-throughput.png")]


def _layout_plot(results: dict[str, dict[str, Any]], img: Path) -> list[str]:
    """Cold CLI and warm REST text-search latency per model layout, against their bars."""
    cli = results.get("cli", {}).get("figures", {}).get("layouts")
    srv = results.get("server", {}).get("figures", {}).get("layouts")
    if not cli and not srv:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, data, val, target, xlabel, title in (
            (axes[0], cli, lambda f: f["median_s"], 1.0, "seconds (median)",
             "Cold `imgfind search` (10k items)"),
            (axes[1], srv, lambda f: f["latency"]["p50_ms"], 30.0, "ms (p50, 1 client)",
             "Warm REST text search (10k items)")):
        if not data:
            ax.set_visible(False)
            continue
        names = list(data)
        vals = [val(data[k]) for k in names]
        bars = ax.barh(names, vals, color=["tab:green" if v <= target else "tab:red"
                                           for v in vals])
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in vals], padding=3)
        ax.axvline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
        ax.set_xlim(0, max([*vals, target]) * 1.5)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle("Text query latency by model layout (ViT-B-32 shapes)", fontsize=11)
    return [_save(fig, img, "text-query-latency.png")]


def write_report(out: Path, docs: Path) -> Path:
    """Regenerate ``docs/benchmarks.md`` (and its plots) from the result files in ``out``."""
    results = latest_results(out)
    img = docs / "img"
    img.mkdir(parents=True, exist_ok=True)
    # plots of sizes no longer reported; only this report's own file names
    for pattern in ("store-*.png", "pipeline-*.png", "text-query-*.png"):
        for old in img.glob(pattern):
            old.unlink()
    md = ["# Benchmarks", "",
          ("<!-- Generated by `python -m bench report` from bench/results/*.json; "
          "do not edit by hand. -->"), "",
          ("_This file is generated by `python -m bench report` from the newest result file "
          "of each suite in `bench/results/`. Edit `bench/report.py`, not this file._"), ""]
    if not results:
        md.append("No results yet: run `python -m bench <suite>` first.")
    machine = next(iter(results.values()))["machine"] if results else None
    if machine:
        md += ["## Machine", "", f"- CPU: {machine['cpu']} ({machine['cores']} cores)",
               f"- RAM: {machine['ram_gib']} GiB", f"- OS: {machine['os']}",
               f"- Python: {machine['python']}", ""]
    md += ["## How to read these figures", "",
           ("- One machine, 2 CPU cores, no GPU; every latency is one query at a time unless "
            "stated. `other CPU` (below) shows whether anything else ran during a suite."),
           ("- Models are random-weight ONNX exports with the real ViT-B-32 shapes, so speed is "
            "the real model's and retrieval quality is meaningless (the quality suite skips "
            "its retrieval metrics for them). Two text-tower layouts are measured where text "
            "queries matter: **transformers.js** (dynamic sequence axis, as in public Optimum "
            "exports such as Xenova/clip-vit-base-patch32; imgfind trims a query's padding) "
            "and **immich** (fixed 77-token text tower)."),
           ("- Store figures use synthetic clustered 512-d vectors (see the store suite); "
            "peak RSS is each process's own high-water mark (VmHWM)."), ""]
    summary = targets_summary(results, latest_quick(out))
    if summary:
        md += ["## Targets", "", "| issue | target | measured | pass | command |",
               "|---|---|---|---|---|"]
        md += [f"| {i} | {t} | {m} | {'**pass**' if ok else '**FAIL**'} | `{c}` |"
               for i, t, m, ok, c in summary]
        md += ["", ("Store targets are judged at imgfind's default (self-tuned) setting; "
                    "see the store suite below for the whole recall/latency curve."), ""]
    md += ["## Results in this report", "",
           ("`other CPU` is the share of the machine's CPU time that processes other than the "
            "benchmark used during the run (0 = a quiet machine)."), "",
           "| suite | file | mode | date | duration | other CPU |",
           "|---|---|---|---|---|---|"]
    for s in SUITES:
        if s in results:
            r = results[s]
            files = ", ".join(f"`{f}`" for f in r["_files"])
            md.append(f"| {s} | {files} | {'quick' if r['quick'] else 'full'} | "
                      f"{r['date']} | {r.get('duration_s', 0):.0f} s | {_contention(r)} |")
    md.append("")
    if any(r["quick"] for r in results.values()):
        md += [("> Rows from **quick** runs use small sizes on a machine shared with other "
               "work; treat them as smoke figures, not as the product's numbers."), ""]
    for s in SUITES:
        r = results.get(s)
        if not r:
            continue
        md += [f"## Suite `{s}`", "", f"Parameters: `{json.dumps(_short_params(r['params']))}`",
               ""]
        if s == "store":
            md += [_store_intro(r), ""]
            plots = _store_plots(r, img)
            md += [f"![{p}](img/{p})" for p in plots] + [""]
        if s == "pipeline":
            md += [f"![throughput](img/{p})" for p in _pipeline_plot(r, img)] + [""]
        if s == "server":
            md += [f"![text query latency](img/{p})" for p in _layout_plot(results, img)]
            md += [""]
        for t in r["tables"]:
            md += [_md_table(t)]
        for n in r.get("notes", []):
            md += [f"> {n}", ""]
        md += ["<details><summary>library versions</summary>", "",
               ", ".join(f"{k} {v}" for k, v in r["versions"].items()), "", "</details>", ""]
    if "store" in results:
        from .projection import project

        md += project(results["store"])
    md += ["## How to reproduce", "", "```sh",
           ("pip install -e '.[bench]' -c <(pip freeze | grep -iE "
           "'^(numpy|onnxruntime|tokenizers|transformers|torch|fastapi|starlette|httpx|"
           "pillow|pydantic|pydantic_core)==')"),
           *_commands(results), "python -m bench report", "```", "",
           ("`--quick` on any suite runs small sizes in under 5 minutes on 2 cores. "
           "See `bench/README.md` for what each suite measures and how long full runs take."),
           ""]
    path = docs / "benchmarks.md"
    path.write_text("\n".join(md))
    return path


def targets_summary(results: dict[str, dict[str, Any]], quick: dict[str, dict[str, Any]]
                    ) -> list[list[Any]]:
    """Every issue target as [issue, target, measured, pass, command], from the results."""
    rows: list[list[Any]] = []
    p = results.get("pipeline")
    if p and not p.get("quick"):
        f = p["figures"]["flickr"]
        n = p["params"]["photos"]
        rows += [
            ["core", f"indexing {n} photos: imgfind >= 90% of model-only images/s",
             f"{f['imgfind']['images_per_s']:.1f} vs {f['model_only']['images_per_s']:.1f} "
             f"img/s = {100 * f['ratio_model']:.0f}%", f["ratio_model"] >= 0.9,
             "python -m bench pipeline"],
            ["core", f"indexing {n} photos: imgfind >= 2x a naive loop",
             f"{f['imgfind']['images_per_s']:.1f} vs {f['naive']['images_per_s']:.1f} img/s "
             f"= {f['ratio_naive']:.2f}x", f["ratio_naive"] >= 2.0, "python -m bench pipeline"]]
    st = results.get("store")
    if st:
        big = max(int(n) for n in st["figures"]["sizes"])
        cmd = next((c for c in _commands({"store": st}) if f"--sizes {big}" in c),
                   "python -m bench store")
        for t in st["figures"]["imgfind_targets"]:
            rows.append(["core", f"store n={big:,}: {t['target']}", t["measured"], t["pass"],
                         cmd])
    c = results.get("cli")
    if c and "layouts" in c["figures"]:
        for layout, f in c["figures"]["layouts"].items():
            rows.append(["core", f"cold `imgfind search \"text\"` on 10k items <= 1.0 s "
                         f"({layout} layout)", f"{f['median_s']:.2f} s median",
                         f["median_s"] <= 1.0, "python -m bench cli"])
    sv = results.get("server")
    if sv and "layouts" in sv["figures"]:
        for layout, f in sv["figures"]["layouts"].items():
            lat, thr = f["latency"], f["throughput"]
            rows += [
                ["server", f"warm REST text search p50 <= 30 ms ({layout} layout)",
                 f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms",
                 lat["p50_ms"] <= 30.0, "python -m bench server"],
                ["server", f">= 40 queries/s with 8 clients ({layout} layout)",
                 f"{thr['qps']:.1f} q/s, {thr['errors']} errors", thr["qps"] >= 40.0,
                 "python -m bench server"]]
    for s in ("store", "pipeline"):
        q = quick.get(s)
        if q:
            rows.append(["bench", f"`python -m bench {s} --quick` < 5 min",
                         f"{q.get('duration_s', 0):.0f} s", q.get("duration_s", 1e9) < 300,
                         f"time python -m bench {s} --quick"])
    return rows


def latest_quick(out: Path) -> dict[str, dict[str, Any]]:
    """suite -> newest --quick result."""
    found: dict[str, dict[str, Any]] = {}
    for p in sorted(out.glob("*.quick.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        cur = found.get(r.get("suite"))
        if cur is None or r.get("started", "") > cur.get("started", ""):
            found[r["suite"]] = r
    return found


def _contention(r: dict[str, Any]) -> str:
    shares = [c["other_cpu_share"] for c in r.get("_contention", [r.get("cpu_contention")])
              if c]
    return " / ".join(f"{100 * x:.0f}%" for x in shares) if shares else "not recorded"


def _short_params(p: dict[str, Any]) -> dict[str, Any]:
    # the data description has its own paragraph; merged store runs list their own params
    merged = isinstance(p.get("runs"), list)  # the cli suite's "runs" is a count
    out = {k: v for k, v in p.items() if k != "data" and not (merged and k in ("runs",
                                                                              "systems"))}
    if merged:
        out["runs"] = [{"sizes": r["sizes"], "systems": r["systems"]} for r in p["runs"]]
    return out


def _store_intro(r: dict[str, Any]) -> str:
    d = r["params"].get("data", {})
    modes = r["figures"].get("systems", {})
    lines = [
        (f"Data: {d.get('dim', 512)}-d unit vectors from a Gaussian mixture on the sphere: "
        f"{d.get('clusters')} cluster centres, uneven cluster sizes (Dirichlet), per-cluster "
        f"spread uniform in {d.get('spread')} (noise norm vs unit centre), "
        f"{100 * d.get('dup_frac', 0):.0f}% near-duplicates; {d.get('n_queries')} held-out "
        "queries from the same mixture. Filters: integer metadata `group` (10 values, 10% "
        "match) and `bucket` (100 values, 1% match). Recall@10 is against the exact top 10 "
        "(of the matching rows, for filters). Each system is built in one process and "
        "searched in a fresh one (cold open, its own peak RSS); latencies are one query at "
        "a time."), "", "How each system filters and deletes:", ""]
    lines += [f"- **{k}**: filter: {v['filter_mode']}; delete: {v['delete_mode']}"
              for k, v in modes.items()]
    return "\n".join(lines)
