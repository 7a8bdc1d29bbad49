"""The report site up to the render: scripts/site.sh with small sizes, then the processed pages in _proc/."""
import json
import re
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT
PROC = ROOT / "_proc"
LIBRARY = sorted(p.name for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
RESULTS = {"train": "Training run", "sweep": "Hyperparameter sweep", "drift": "Drift and robustness",
           "scaling": "Scaling mini-batch training", "service": "Service", "report": "Report"}
PAGES = ["architecture.qmd", "scaling.qmd", "guide.qmd", "measurements.qmd"]


@pytest.fixture(scope="module")
def site(cli_env):
    env = {**cli_env, "SITE_QUICK": "1"}
    r = subprocess.run(["bash", "scripts/site.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def cells(path):
    return json.loads(path.read_text())["cells"]


def front_matter(path):
    first = cells(path)[0]
    assert first["cell_type"] == "raw", path
    return yaml.safe_load("".join(first["source"]).strip().strip("-"))


def test_every_page_is_processed(site):
    for name in ["index.ipynb", *LIBRARY, *PAGES, "_quarto.yml", *(f"results/{r}.ipynb" for r in RESULTS)]:
        assert (PROC / name).is_file(), name
    quarto = (PROC / "_quarto.yml").read_text()
    for name in [*LIBRARY, *(f"results/{r}.ipynb" for r in RESULTS), *PAGES]:
        assert name in quarto, f"{name} missing from the sidebar"


def test_front_matter_titles(site):
    assert front_matter(PROC / "index.ipynb")["title"] == "cora-gnn"
    assert front_matter(PROC / "15_drift.ipynb")["title"] == "Drift"
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


def test_home_page_shows_the_readme_with_links_to_site_pages(site):
    readme = (ROOT / "README.md").read_text()
    description = readme.split("\n> ", 1)[1].split("\n", 1)[0]
    assert front_matter(PROC / "index.ipynb")["description"] == description
    shown = "".join("".join(o.get("text", "")) for c in cells(PROC / "index.ipynb") for o in c.get("outputs", []))
    quick = readme[readme.index("## Quick start"):readme.index("## Use")]
    assert quick in shown  # the README's sections, not a hand-kept copy
    links = re.findall(r"\]\(([^)#]+)", shown)
    local = [link for link in links if "://" not in link]
    assert "guide.qmd" in local and "measurements.qmd" in local and "cora-gnn.github.io" not in shown
    for link in local: assert (PROC / link).is_file(), link


def test_no_directives_or_hidden_plumbing_on_pages(site):
    for nb in [*(PROC / n for n in LIBRARY), *(PROC / "results").glob("*.ipynb")]:
        for c in cells(nb):
            src = "".join(c["source"])
            if c["cell_type"] == "code":
                assert "#| export" not in src and "#| hide" not in src and "nbdev_export()" not in src, (nb.name, src[:200])


def test_executed_pipelines_carry_their_figures_and_parameters(site):
    for stem in ("train", "drift"):
        nb = cells(PROC / "results" / f"{stem}.ipynb")
        assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb), stem
        pngs = [o for c in nb if c["cell_type"] == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(pngs) >= 2, stem
    service = json.dumps(cells(PROC / "results" / "service.ipynb"))
    assert "site-example-1" in service and "CREATE TABLE IF NOT EXISTS predictions" in service and "cora_gnn_requests_total" in service


def test_report_numbers_come_from_the_build(site):
    acc = json.loads((ROOT / "nbs" / "results" / "accuracy.json").read_text())
    report = json.dumps(cells(PROC / "results" / "report.ipynb"))
    assert f"{acc['rows'][0]['test_acc']:.2f}".rstrip("0") in report
    assert "smoke test" in report  # a quick build says so on the page


def test_render_is_skipped_with_a_message_without_quarto(site):
    if shutil.which("quarto"): assert (ROOT / "_docs" / "index.html").is_file()
    else: assert "quarto is not on PATH: skipping the render" in site
