"""The report site up to the render: scripts/site.sh with small sizes, in a copy of the repository (the build never
touches the working tree), then the processed pages in the copy's _proc/."""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy import stats
from conftest import ROOT, benchmark, unmeasured

from cora_gnn.drift import PERTURBATIONS
from cora_gnn.hparams import HPARAMS, models_taking
from cora_gnn.pipeline import INTERVAL_SEEDS
from cora_gnn.tracking import read_offline_run

pytestmark = pytest.mark.slow  # every test here starts a process (server, subprocess or papermill)
SITE = Path(tempfile.gettempdir()) / f"cora-gnn-site-{os.getpid()}"  # the build's copy of the repository
PROC, BUILT = SITE / "_proc", SITE / "nbs" / "results"
LIBRARY = sorted(p.name for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
RESULTS = {"train": "Training run", "sweep": "Hyperparameter sweep", "planetoid": "The Planetoid table", "drift": "Drift and robustness",
           "scaling": "Mini-batch training as graphs grow", "service": "Service", "report": "Report"}
PAGES = ["architecture.qmd", "scaling.qmd", "guide.qmd", "measurements.qmd"]


@pytest.fixture(scope="module")
def site(cli_env):
    "scripts/site.sh at small sizes in a copy of the repository's files (tracked, and untracked ones git does not ignore)."
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    shutil.rmtree(SITE, ignore_errors=True)
    for f in files:
        if (ROOT / f).is_file():
            (SITE / f).parent.mkdir(parents=True, exist_ok=True)
            if f.startswith("cora_gnn/") and f.endswith(".py") and f != "cora_gnn/_modidx.py":
                (SITE / f).symlink_to(ROOT / f)  # only read by the build: linked
            else: shutil.copy2(ROOT / f, SITE / f)  # the build rewrites cora_gnn/_modidx.py: its own copy
    executed = ROOT / "build" / "nbs-executed"  # the notebook tests' executed copies: site.sh reuses them if still current
    if executed.is_dir(): shutil.copytree(executed, SITE / "build" / "nbs-executed")
    # unmeasured: coverage's tracing slowed the build by about a fifth, and a kernel papermill stops can lose its data;
    # tests/test_pipelines.py and test_docsite.py cover the same functions in their own process
    env = {**unmeasured(cli_env), "SITE_QUICK": "1", "HOME": str(SITE / "home")}  # W&B's settings: under the build's home
    r = subprocess.run(["bash", "scripts/site.sh"], cwd=SITE, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    yield r.stdout + r.stderr
    shutil.rmtree(SITE, ignore_errors=True)


def cells(path):
    return json.loads(path.read_text())["cells"]


def pngs(nb_cells):
    return [o["data"]["image/png"] for c in nb_cells if c["cell_type"] == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]


def output_text(cell):
    "Everything a reader can see of a code cell's outputs, as text."
    texts = []
    for o in cell.get("outputs", []):
        texts.append("".join(o.get("text", "")))
        for kind in ("text/plain", "text/markdown", "text/html"): texts.append("".join(o.get("data", {}).get(kind, "")))
        texts.append("".join(o.get("traceback", [])))
    return "\n".join(texts)


EXECUTED = [PROC / "index.ipynb", *(PROC / n for n in LIBRARY), *(PROC / "results" / f"{r}.ipynb" for r in RESULTS)]


def front_matter(path):
    first = cells(path)[0]
    assert first["cell_type"] == "raw", path
    return yaml.safe_load("".join(first["source"]).strip().strip("-"))


def test_every_page_is_processed(site):
    for name in ["index.ipynb", *LIBRARY, *PAGES, "_quarto.yml", "styles.css", *(f"results/{r}.ipynb" for r in RESULTS)]:
        assert (PROC / name).is_file(), name
    quarto = (PROC / "_quarto.yml").read_text()
    for name in [*LIBRARY, *(f"results/{r}.ipynb" for r in RESULTS), *PAGES]:
        assert name in quarto, f"{name} missing from the sidebar"


def test_front_matter_titles(site):
    assert front_matter(PROC / "index.ipynb")["title"] == "cora-gnn"
    assert front_matter(PROC / "21_drift.ipynb")["title"] == "Drift"
    for stem, title in RESULTS.items():
        assert front_matter(PROC / "results" / f"{stem}.ipynb")["title"] == title


def _sources():
    "Each source notebook with its processed page."
    nbs = ROOT / "nbs"
    yield nbs / "index.ipynb", PROC / "index.ipynb"
    for name in LIBRARY: yield nbs / name, PROC / name
    for src in [*(nbs / "pipelines").glob("*.ipynb"), *(nbs / "_pages").glob("*.ipynb")]: yield src, PROC / "results" / src.name


def _plain_words(line, n=6):
    "The first `n` consecutive words of `line` that nbdev's processor leaves alone (no code, links or markup), if any."
    words = line.split()
    for i in range(len(words) - n + 1):
        run = words[i:i + n]
        if all(re.fullmatch(r"[A-Za-z0-9,.;:'()%-]+", w) for w in run): return " ".join(run)


def test_every_page_keeps_its_text(site):
    "The title cell holds only the title and description (the processor drops it), and every other text cell reaches the page."
    checked = 0
    for src, proc in _sources():
        md = [c for c in cells(src) if c["cell_type"] == "markdown"]
        title = [line for line in "".join(md[0]["source"]).splitlines() if line.strip()]
        assert title[0].startswith("# ") and all(line.startswith("> ") for line in title[1:]), (src.name, title)
        page = " ".join("".join(c["source"]) for c in cells(proc) if c["cell_type"] == "markdown")
        for c in md[1:]:
            words = next(filter(None, map(_plain_words, "".join(c["source"]).splitlines())), None)
            if words: checked += 1; assert words in page, (src.name, words)
    assert checked > 100, checked


def test_home_page_shows_what_the_project_is_a_figure_the_headline_results_and_the_way_in(site):
    readme = (ROOT / "README.md").read_text()
    description = readme.split("\n> ", 1)[1].split("\n", 1)[0]
    assert front_matter(PROC / "index.ipynb")["description"] == description
    home = cells(PROC / "index.ipynb")
    shown = "".join("".join(o.get("text", "")) for c in home for o in c.get("outputs", []))
    flow = readme[readme.index("| step | command"):readme.index("## Quick start")].strip()
    assert flow in shown and "## Use" not in shown  # the README's opening, not the whole README
    acc = json.loads((BUILT / "planetoid" / "planetoid.json").read_text())
    assert f"| {acc['rows'][0]['dataset']} | {acc['rows'][0]['model']} | {acc['rows'][0]['test_acc']:.1f} ± " in shown and "Smoke-test sizes" in shown
    assert len(pngs(home)) == 1
    way_in = "".join("".join(c["source"]) for c in home if c["cell_type"] == "markdown")
    for page in ["guide.qmd", "01_config.ipynb", "results/train.ipynb", "results/service.ipynb", "measurements.qmd", "results/report.ipynb"]:
        assert f"]({page})" in way_in, page


def test_no_directives_or_hidden_plumbing_on_pages(site):
    for nb in [*(PROC / n for n in LIBRARY), *(PROC / "results").glob("*.ipynb")]:
        for c in cells(nb):
            src = "".join(c["source"])
            if c["cell_type"] == "code":
                assert "#| export" not in src and "#| hide" not in src and "nbdev_export()" not in src, (nb.name, src[:200])


def test_executed_pipelines_carry_their_figures_and_parameters(site):
    for stem, least in (("train", 2), ("drift", 2), ("planetoid", 1)):
        nb = cells(PROC / "results" / f"{stem}.ipynb")
        assert len(pngs(nb)) >= least, stem  # one parameters cell each: test_executed_pipelines_show_one_parameters_cell_and_their_sizes
    service = json.dumps(cells(PROC / "results" / "service.ipynb"))
    assert "site-example-1" in service and "CREATE TABLE IF NOT EXISTS predictions" in service and "cora_gnn_requests_total" in service


def test_report_numbers_come_from_the_build(site):
    acc = json.loads((BUILT / "planetoid" / "planetoid.json").read_text())
    report = "\n".join(output_text(c) for c in cells(PROC / "results" / "report.ipynb"))
    assert f"{acc['rows'][0]['test_acc']:.2f}".rstrip("0") in report
    assert "Smoke-test sizes" in report and "Full sizes" not in report  # a quick build says so on the page
    code = [c for c in cells(PROC / "results" / "report.ipynb") if c["cell_type"] == "code" and "".join(c.get("source", "")).strip()
            and "injected-parameters" not in c["metadata"].get("tags", [])]
    assert code and all("".join(c["source"]).startswith("#| echo: false") for c in code)  # numbers, not the code loading them
    service = [c for c in cells(PROC / "results" / "service.ipynb") if "cora_gnn_requests_total" in output_text(c)]
    assert service and "# HELP" not in output_text(service[-1]) and "<table" in output_text(service[-1])  # a table, not raw text


def test_render_is_skipped_with_a_message_without_quarto(site):
    if shutil.which("quarto"): assert (SITE / "_docs" / "index.html").is_file()
    else: assert "quarto is not on PATH: skipping the render" in site


def test_signatures_carry_short_type_names_and_models_their_own_docstrings(site):
    for nb in (PROC / n for n in LIBRARY):
        for c in cells(nb):
            text = output_text(c)
            assert "__main__." not in text, (nb.name, text[:300])
            for block in re.findall(r"```python\n(.*?)\n```", text, re.S):  # the signatures a reader sees
                for raw in ("cora_gnn.", "OptionInfo", "ArgumentInfo", "NoneType", "**data:Any"): assert raw not in block, (nb.name, raw, block)
            assert "A base class for creating Pydantic models" not in text and "concepts/models.md" not in text, nb.name
    page = lambda module: "\n".join(output_text(c) for c in cells(PROC / next(n for n in LIBRARY if n.endswith(f"_{module}.ipynb"))))
    assert "def load_predictor(\n    config:ServeConfig\n)->Predictor:" in page("serve")  # as a reader sees it
    assert "the served checkpoint's SHA-256" in page("api")  # the table of Info's fields


def test_executed_pages_leak_nothing_from_the_build(site):
    leaks = re.compile(r"Warning|/tmp/|\.venv|\d+%\||it/s\]|s/it\]|Processing\.\.\.|__exit__")
    for nb in EXECUTED:
        for c in cells(nb):
            if c["cell_type"] != "code": continue
            assert not (m := leaks.search(output_text(c))), (nb.name, m and output_text(c)[max(0, m.start() - 200):m.end() + 100])
            assert "__exit__" not in "".join(c["source"]), nb.name


def test_each_figure_is_shown_once_and_library_pages_show_their_outputs(site):
    for nb in EXECUTED:
        nb_cells = cells(nb)
        for c in nb_cells: assert len(pngs([c])) <= 1, (nb.name, "".join(c["source"])[:200])
        assert len(set(pngs(nb_cells))) == len(pngs(nb_cells)), nb.name
    train = cells(PROC / "09_train.ipynb")
    assert len(pngs(train)) >= 1 and any("test_acc" in output_text(c) and "val_acc" in output_text(c) for c in train)
    assert len(pngs(cells(PROC / "12_plots.ipynb"))) >= 6
    assert len(pngs(cells(PROC / "14_profiling.ipynb"))) == 2 and len(pngs(cells(PROC / "13_scale.ipynb"))) == 1  # the flame charts; plot_scaling
    with_outputs = [n for n in LIBRARY if any(c.get("outputs") for c in cells(PROC / n) if "show_doc" not in "".join(c["source"]) and c["cell_type"] == "code")]
    assert len(with_outputs) >= len(LIBRARY) - 2, sorted(set(LIBRARY) - set(with_outputs))


def documented_entries(nb_cells) -> list[tuple[str, bool]]:
    "Each entry `show_doc` documents on a library page, and whether a code cell after it (before the next) shows an output."
    out = []
    for c in nb_cells:
        if c["cell_type"] != "code": continue
        doc = next((m[1] for o in c.get("outputs", []) if (m := re.search(r"^### (\S+)", "".join(o.get("data", {}).get("text/markdown", "")), re.M))), None)
        if doc and "show_doc" in "".join(c.get("source", "")): out.append([doc, False])
        elif out and c.get("outputs"): out[-1][1] = True
    return [tuple(e) for e in out]


def test_library_entries_show_their_examples(site):
    "The share of documented entries followed by an example with its output: the goal is 80%, as fastcore's pages."
    entries = {n: documented_entries(cells(PROC / n)) for n in LIBRARY}
    shown = [s for e in entries.values() for _, s in e]
    print({n: f"{sum(s for _, s in e)}/{len(e)}" for n, e in entries.items()}, f"{sum(shown)}/{len(shown)}")
    assert len(shown) > 200 and sum(shown) / len(shown) >= 0.3, f"{sum(shown)} of {len(shown)} entries show an output"


def test_executed_pipelines_show_one_parameters_cell_and_their_sizes(site):
    for stem in ("train", "sweep", "planetoid", "drift", "scaling"):
        nb = cells(PROC / "results" / f"{stem}.ipynb")
        tags = [t for c in nb for t in c["metadata"].get("tags", [])]
        assert tags.count("injected-parameters") == 1 and "parameters" not in tags, (stem, tags)
        shown = "".join(output_text(c) for c in nb)
        assert "**Ran with**" in shown, stem
        assert ("Smoke-test sizes" in shown) == (stem != "train"), stem  # the quick build trains at full size
    unexecuted = cells(PROC / "pipelines" / "sweep.ipynb")
    assert any("parameters" in c["metadata"].get("tags", []) for c in unexecuted)


def test_every_local_link_on_the_site_resolves(site):
    checked = 0
    for page in [*PROC.rglob("*.ipynb"), *PROC.rglob("*.qmd")]:
        if page.suffix == ".qmd": text = page.read_text()
        else: text = "\n".join("".join(c["source"]) if c["cell_type"] == "markdown" else output_text(c) for c in cells(page))
        for link in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
            if "://" in link or link.startswith("mailto:"): continue
            checked += 1
            assert (page.parent / link).exists(), (str(page.relative_to(PROC)), link)
    assert checked > 20, checked


# The site build runs every pipeline at smoke size; what those runs must produce is checked here, on the build's own
# outputs, rather than by running the same pipelines again (tests/test_pipelines.py keeps what needs other parameters),
# and so is the service load benchmark the build runs.
def ran_with(name) -> dict:
    "The parameters papermill injected into the site build's run of pipeline `name`."
    return json.loads((BUILT / f"{name}.ipynb").read_text())["metadata"]["papermill"]["parameters"]


def test_the_training_pipeline_writes_its_run_and_tracks_it_offline(site):
    "The pipeline's default tracking (offline): the W&B run is read back, every epoch and the summary."
    out, params = BUILT / "train", ran_with("train")
    record = json.loads((out / "run.json").read_text())
    assert record["params"]["model"] == params["model"] and record["pipeline"]["tracking"] == "offline"
    assert record["source"] == "pipeline" and record["dataset"]["fingerprint"] and record["versions"]["torch_geometric"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_acc"] > 0.7  # GCN on Cora at full size (the paper's 81.5)
    for f in ("history", "confusion", "embedding", "reliability"):
        assert (out / "figures" / f"{f}.png").stat().st_size > 10_000
    (wandb_run,) = (out / "wandb").glob("offline-run-*")
    back = read_offline_run(wandb_run)
    assert len([h for h in back["history"] if "val_acc" in h]) == metrics["epochs"]
    assert back["summary"]["test_acc"] == pytest.approx(metrics["test_acc"])


def test_the_sweep_pipeline_compares_the_best_setting_with_the_defaults(site):
    out, params = BUILT / "sweep", ran_with("sweep")
    rec = json.loads((out / "sweep.json").read_text())
    swept = {n for n, h in HPARAMS.items() if h.sweep is not None and params["model"] in models_taking(n)}
    assert rec["n_trials"] == params["n_trials"] and set(rec["best_params"]) == swept
    assert set(rec["summary"]) == {"best", "default"}


def test_the_service_load_benchmark_answers_every_request(site):
    "benchmarks/serve_load.py, which the build runs at the benchmark suite's smoke size (the suite's own test leaves it out)."
    assert (BUILT / "serve_load.json").is_file(), "no service load numbers: is wrk on PATH? (scripts/test.sh installs it)"
    load = json.loads((BUILT / "serve_load.json").read_text())
    assert all(row["ours"]["errors"] == 0 for row in load["rows"]) and len(load["fixed_rate"]) == 2
    rows = dict(benchmark("suite").summary({"serve_load": load}))
    for row in ["/api/v1/predict at 16 connections", "/api/v1/predict at 1000 req/s", "/api/v1/predict/paper at 200 req/s"]:
        assert row in rows, (row, rows)


def test_the_planetoid_pipeline_runs_every_model_on_cora_and_citeseer(site):
    from cora_gnn.models import MODELS
    out, params = BUILT / "planetoid", ran_with("planetoid")
    rec = json.loads((out / "planetoid.json").read_text())
    assert [(row["dataset"], row["model"]) for row in rec["rows"]] == [(d, m) for d in ("Cora", "CiteSeer") for m in MODELS]
    assert rec["seeds"] == params["seeds"] and rec["threads"] == 1 and "public split" in rec["protocol"]
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * params["seeds"] * len(MODELS)
    for row in rec["rows"]:
        acc = 100 * runs[(runs.dataset == row["dataset"]) & (runs.model == row["model"])].test_acc
        half = stats.t.ppf(0.975, len(acc) - 1) * acc.std(ddof=1) / len(acc) ** 0.5
        assert row["seeds"] == len(acc) == params["seeds"] and row["epochs"] == params["epochs"]
        assert row["test_acc"] == pytest.approx(acc.mean())
        if len(acc) < INTERVAL_SEEDS: assert row["ci95_low"] is row["ci95_high"] is None  # the quick build's 2 seeds: none
        else: assert row["ci95_high"] == pytest.approx(min(acc.mean() + half, 100), rel=1e-3) and 0 <= row["ci95_low"]
        paper = MODELS[row["model"]].reported.get(row["dataset"])
        assert row["paper"] == paper  # None (null) where the paper gives no number
        assert row["below_paper"] == (paper is not None and row["ci95_high"] is not None and row["ci95_high"] < paper)


def test_the_drift_pipeline_simulates_traffic_and_measures_robustness(site):
    out, params = BUILT / "drift", ran_with("drift")
    m = json.loads((out / "drift.json").read_text())
    assert m["simulated"] and m["model"] == ran_with("train")["model"] and m["rows"]["current"] == params["n_requests"]
    assert m["dataset_drift"] is False  # unperturbed simulated traffic
    sevs = params["severities"]
    assert sorted((x["kind"], x["severity"]) for x in m["robustness"]) == sorted((k, s) for k in PERTURBATIONS for s in sevs)
    rewired = {x["severity"]: x["accuracy"] for x in m["robustness"] if x["kind"] == "cites_rewired"}
    assert rewired[max(sevs)] < rewired[min(sevs)] - 0.2  # rewiring every citation costs accuracy
    for f in ("figures/features.png", "figures/robustness.png", "report.html", "summary.json", "robustness.csv"):
        assert (out / f).stat().st_size > 500, f


def test_the_scaling_pipeline_measures_each_size(site):
    out, sizes = BUILT / "scaling", ran_with("scaling")["sizes"]
    rows = json.loads((out / "scaling.json").read_text())
    assert [r["nodes"] for r in rows] == sizes and all(r["epoch_s"] > 0 and r["peak_gib"] > 0 for r in rows)
    per_node = [r["edges"] / r["nodes"] for r in rows]
    assert max(per_node) < 1.5 * min(per_node)  # the synthetic graphs keep their density as they grow
    assert (out / "scaling.png").stat().st_size > 10_000


STAND_IN_QUARTO = r'''#!/usr/bin/env bash
# A stand-in for `quarto render DIR --no-cache --output-dir OUT`: one page per .qmd, and Quarto's warning for each link
# to a page that does not exist (what Quarto prints on stderr, exiting 0)
set -eu
dir=$2; out=${@: -1}
mkdir -p "$out/site_libs/quarto-nav"
echo 'x.replace(/\/index\.html/, "/")' > "$out/site_libs/quarto-nav/quarto-nav.js"
for page in "$dir"/*.qmd; do
  touch "$out/$(basename "${page%.qmd}").html"
  for link in $(grep -o '](\([^)]*\.qmd\))' "$page" | sed 's/^](//; s/)$//'); do
    [ -f "$dir/$link" ] || echo "WARN: $(basename "$page"): Unable to resolve link target: $link" >&2
  done
done
'''


@pytest.mark.parametrize("link, fails", [("guide.qmd", False), ("nope.qmd", True)])
def test_the_render_fails_on_a_quarto_warning(tmp_path, cli_env, link, fails):
    "scripts/render.sh, with a stand-in `quarto` that warns as Quarto does: a warning reaches the log and fails the build."
    for f in ("scripts/render.sh", "scripts/env.sh"): (tmp_path / f).parent.mkdir(exist_ok=True); shutil.copy(ROOT / f, tmp_path / f)
    (tmp_path / "_proc").mkdir()
    (tmp_path / "_proc" / "_quarto.yml").write_text("project:\n  type: website\n")
    (tmp_path / "_proc" / "guide.qmd").write_text("---\ntitle: Guide\n---\n\nText.\n")
    (tmp_path / "_proc" / "index.qmd").write_text(f"---\ntitle: Home\n---\n\nSee [the guide]({link}).\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "quarto").write_text(STAND_IN_QUARTO)
    (tmp_path / "bin" / "quarto").chmod(0o755)
    env = {**cli_env, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{cli_env['PATH']}"}
    r = subprocess.run(["bash", "scripts/render.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "build" / "render.log").read_text()
    assert (r.returncode != 0) == fails and ("Unable to resolve link target: nope.qmd" in log) == fails, r.stdout + r.stderr
    assert ("Quarto warned" in r.stderr) == fails and (tmp_path / "_docs" / "index.html").is_file()
    nav = (tmp_path / "_docs" / "site_libs" / "quarto-nav" / "quarto-nav.js").read_text()
    assert "(?=[?#]|$)" in nav  # nbdev's fix of Quarto's nav script, applied
