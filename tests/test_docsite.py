"The site's own processors on real `show_doc` outputs, in this process (tests/test_site.py checks the built pages)."
import re

import yaml
from conftest import ROOT
from fastcore.basics import AttrDict
from fastcore.nbio import read_nb
from nbdev.frontmatter import FrontmatterProc
from nbdev.process import NBProcessor
from nbdev.showdoc import show_doc

from cora_gnn import api, cli, config, docsite, predlog
from cora_gnn.docsite import ParametersOnce, clean_signatures
from cora_gnn.train import fit


def processed(obj) -> str:
    "What a page shows for `obj`: its `show_doc` output (markdown and plain text) after the site's processor."
    doc = show_doc(obj)
    cell = AttrDict(outputs=[dict(data={"text/markdown": [doc._repr_markdown_()], "text/plain": [repr(doc)]})])
    clean_signatures(cell)
    return "\n".join(cell.outputs[0]["data"][k] for k in ("text/markdown", "text/plain"))


def test_every_command_is_documented_by_its_help():
    for info in cli.app.registered_commands:
        page = processed(info.callback)
        assert "```text\nUsage: cora-gnn " in page and "--help" in page and "Info object" not in page, page
    assert "```python\ndef fit(" in processed(fit)  # a function of another module keeps its signature


def test_api_models_are_documented_by_their_fields():
    page = processed(api.PaperRequest)
    assert "**data" not in page and "| field | type | required | description |" in page
    for name, field in api.PaperRequest.model_fields.items():
        assert f"| {name} |" in page and (field.description or "").split("\n")[0][:40] in page, name
    for model in (api.NodeRequest, api.Prediction, api.DriftJob, api.ExplainRequest):  # types as a reader writes them
        page = processed(model)
        assert not any(raw in page for raw in ("NoneType", "Annotated", "FieldInfo", "typing.")), page


def test_signatures_lose_module_prefixes_and_nonetype():
    for obj in (config.setting, predlog.log_row, docsite.readable):
        page = processed(obj)
        assert "NoneType" not in page and "cora_gnn." not in page.split("```python", 1)[1], page


def test_a_papermill_page_keeps_one_parameters_cell():
    page = AttrDict(cells=[AttrDict(source="a = 1", metadata=dict(tags=["parameters"])),
                           AttrDict(source="a = 2", metadata=dict(tags=["injected-parameters"]))])
    proc = ParametersOnce(page)
    for c in page.cells: proc(c)
    assert ["source" in c for c in page.cells] == [False, True]


def test_every_page_has_front_matter_quarto_can_parse():
    "Each .qmd's front matter, and the one nbdev's processor makes of each notebook's title cell, is YAML with a title and a description."
    nbs = ROOT / "nbs"
    for qmd in nbs.glob("*.qmd"):
        head, sep, _ = qmd.read_text().removeprefix("---\n").partition("\n---\n")
        fm = yaml.safe_load(head)
        assert sep and isinstance(fm, dict) and fm.get("title") and fm.get("description"), qmd.name
    books = [*nbs.glob("*.ipynb"), *nbs.glob("pipelines/*.ipynb"), *nbs.glob("_pages/*.ipynb")]
    for path in books:
        book = read_nb(path)
        book.path_ = str(path)
        NBProcessor(nb=book, procs=[FrontmatterProc]).process()
        fm = yaml.safe_load(book.cells[0].source.strip().strip("-"))
        assert book.cells[0].cell_type == "raw" and fm.get("title") and fm.get("description"), path.name
    assert len(books) > 30


def test_measurements_open_with_a_summary_and_hold_no_lab_notes():
    "A reader's page: the summary table first, and no temporary paths, commit hashes or issue numbers."
    page = (ROOT / "nbs" / "measurements.qmd").read_text()
    sections = re.findall(r"^## (.+)$", page, re.M)
    assert sections[0] == "At a glance" and len(sections) > 8, sections
    glance = page.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    assert glance.count("\n| [") >= len(sections) - 2  # about a row for each section
    hashes = [h for h in re.findall(r"\b[0-9a-f]{7,40}\b", page) if re.search(r"[a-f]", h) and re.search(r"\d", h)]
    assert "/tmp" not in page and not hashes and not re.search(r"\bissues? \d+", page), hashes


def test_figures_are_sized_to_the_column():
    "The site's stylesheet shrinks a figure wider than the column to fit it (five figures of Plots were cut at its edge)."
    css = (ROOT / "nbs" / "styles.css").read_text()
    rule = re.search(r"\.cell-output-display img\s*\{([^}]*)\}", css)
    assert rule and "max-width: 100%" in rule[1] and "height: auto" in rule[1], css
