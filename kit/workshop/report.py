"""The workshop's run report: ``runs/NAME/index.html``, one page anyone can open from the file system.

``kit workshop`` writes it after ``summary.json``: the summary (device, models, accuracies, times, the
loss-curve verdicts, the parameters), a link to every executed notebook rendered as HTML, and every figure.
All links are relative and every page is a plain file, so the folder can be zipped, copied to a laptop and
opened with a double click, with no server and no network. The notebook pages are nbconvert's, with the
outputs (figures included) inlined; widget state that the execution stored (``metadata.widgets``, written by
nbclient under papermill) is embedded too, so a live plot shows its last frame where the widget scripts can
be loaded. Each file is written atomically (:mod:`kit.core.atomic`): a reader never finds half a page.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from kit.core.atomic import atomic_write_text

__all__ = ["STYLE", "notebook_html_name", "render_notebook", "report_html", "write_report"]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: left; }
td.num { text-align: right; }
.pass { color: #176317; font-weight: bold; } .fail { color: #a31515; font-weight: bold; }
figure { display: inline-block; margin: 0 1rem 1.5rem 0; vertical-align: top; }
figure img { max-width: 34rem; border: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def notebook_html_name(notebook: str) -> str:
    return Path(notebook).with_suffix(".html").name


def render_notebook(executed: Path, target: Path) -> None:
    """One executed notebook as a self-contained HTML page (nbconvert's lab template), written atomically."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    atomic_write_text(target, body, what="the notebook's web page")


def _verdict(passed) -> str:
    if passed is None:
        return "n/a"
    return f'<span class="{"pass" if passed else "fail"}">{"pass" if passed else "fail"}</span>'


def _number(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _rows(cells: list[list[str]]) -> str:
    return "\n".join("<tr>" + "".join(row) + "</tr>" for row in cells)


def _models_table(summary: dict) -> str:
    rows = [[f"<td>{html.escape(str(m.get('model')))}</td>", f"<td>{html.escape(str(m.get('recipe')))}</td>",
             f'<td class="num">{_number(m.get("val_acc1"), ".2f")}</td>',
             f'<td class="num">{_number(m.get("train_seconds"), ".1f")}</td>'] for m in summary.get("models", [])]
    head = "<tr><th>model</th><th>recipe</th><th>val top-1 (%)</th><th>training time (s)</th></tr>"
    return f"<table>{head}\n{_rows(rows)}</table>"


def _validation_table(validation: dict) -> str:
    rows = []
    for item in validation.get("models", []):
        strict, legacy = item.get("strict", {}), item.get("legacy", {})
        rows.append([f"<td>{html.escape(str(item.get('model')))}</td>",
                     f'<td class="num">{_number(strict.get("mean_relative_error"), ".4f")}</td>',
                     f"<td>{_verdict(strict.get('passed'))}</td>", f"<td>{_verdict(legacy.get('passed'))}</td>",
                     f'<td class="num">{html.escape(str(item.get("n_points")))}</td>'])
    head = ("<tr><th>model</th><th>strict mean |relative error|</th><th>strict rule</th><th>ModelZoo rule</th>"
            "<th>points</th></tr>")
    verdict = f"<p>Loss curves against the shipped reference curves: {_verdict(validation.get('passed'))}</p>"
    note = f"<p>{html.escape(str(validation['note']))}</p>" if validation.get("note") else ""
    return f"{verdict}{note}<table>{head}\n{_rows(rows)}</table>"


def _notebooks_list(summary: dict, out: Path) -> str:
    items = []
    for entry in summary.get("notebooks", []):
        name = entry["notebook"]
        page = f"notebooks/{notebook_html_name(name)}"
        link = f'<a href="{html.escape(page)}">{html.escape(Path(name).stem)}</a>' if (out / page).exists() else ""
        items.append(f"<li>{link or html.escape(name)} — {entry['seconds']:.0f} s "
                     f'(<a href="notebooks/{html.escape(name)}">.ipynb</a>)</li>')
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def _figures(out: Path) -> str:
    blocks = [f'<figure><a href="figures/{html.escape(p.name)}"><img src="figures/{html.escape(p.name)}" '
              f'alt="{html.escape(p.stem)}"></a><figcaption>{html.escape(p.stem)}</figcaption></figure>'
              for p in sorted((out / "figures").glob("*.png"))]
    return "\n".join(blocks) or "<p>No figures.</p>"


def report_html(summary: dict, out: Path) -> str:
    """The text of index.html for ``summary`` (as summary.json) and the run folder ``out``."""
    facts = f"Device <code>{html.escape(str(summary.get('device')))}</code> · wall time {summary['wall_seconds']:.0f} s"
    facts += " · quick mode" if summary.get("quick") else ""
    parameters = html.escape(json.dumps(summary.get("parameters", {}), indent=1, default=str))
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Workshop report: {html.escape(out.name)}</title><style>{STYLE}</style></head>
<body>
<h1>Workshop report: {html.escape(out.name)}</h1>
<p>{facts}</p>
<h2>Models</h2>
{_models_table(summary)}
<h2>Loss-curve validation</h2>
{_validation_table(summary.get("validation", {}))}
<h2>Notebooks, as executed</h2>
{_notebooks_list(summary, out)}
<h2>Figures</h2>
{_figures(out)}
<h2>Parameters</h2>
<pre>{parameters}</pre>
<p>Also here: <a href="summary.json">summary.json</a>, <a href="summary.md">summary.md</a>; training runs in
<code>train/</code>.</p>
</body>
</html>
"""


def write_report(out: str | Path, summary: dict) -> Path:
    """Render every executed notebook to HTML, then write ``out/index.html``; returns its path."""
    out = Path(out)
    for entry in summary.get("notebooks", []):
        executed = out / "notebooks" / entry["notebook"]
        if executed.exists():
            render_notebook(executed, executed.with_suffix(".html"))
    path = out / "index.html"
    atomic_write_text(path, report_html(summary, out), what="the run report")
    return path
