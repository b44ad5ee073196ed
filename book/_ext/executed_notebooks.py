"""Offer every notebook page's executed notebook, with its outputs, for download.

The notebooks in ``book/`` are committed without outputs, so the ``.ipynb`` behind the
theme's download button (a copy of the source, from ``_sources/``) shows no figure
and no number. myst-nb executes each notebook while it reads it (through
jupyter-cache, ``execute_notebooks: cache``) and writes a copy to
``<outdir>/../jupyter_execute/<docname>.ipynb`` (``_build/jupyter_execute/...`` for
``_build/html``; see ``myst_nb.sphinx_.Parser.parse``). That copy has the outputs
only when the notebook was executed during this read: when myst-nb takes the outputs
from the cache, it renders the page from a merged copy but writes the notebook it
read, without outputs (myst-nb 1.4.0). This extension therefore

- completes myst-nb's copy with the cached outputs right after the page is read (the
  cached notebook that matches the source, which is what the page shows),
- adds a link, "Download this chapter with its outputs (.ipynb)", under the title of
  every page built from a notebook (HTML builders only), and
- writes each executed notebook to ``<outdir>/_downloads_executed/<docname>.ipynb``
  when the build finishes, where that link points (from myst-nb's copy, or from the
  cache for a copy written before this extension was installed).

A notebook page without an executed notebook (execution off or excluded, cache
cleared, myst-nb's copy missing) gets no link, and the extension logs a warning that
names the page, the files it looked at and the reason. A ``-W`` build (``make book``)
therefore fails rather than publish a chapter without its executed notebook or with a
link to a file that is not there. To accept such a page knowingly, add
``executed_notebooks.not_executed`` to Sphinx's ``suppress_warnings``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from nbformat import NotebookNode
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

#: Folder of the HTML output that receives the executed notebooks.
DOWNLOAD_FOLDER = "_downloads_executed"
#: Text of the link on each notebook page.
LINK_TEXT = "Download this chapter with its outputs (.ipynb)"
#: Class of the paragraph that holds the link (for styling and for the tests).
LINK_CLASS = "executed-notebook-download"
#: Warning type, for ``suppress_warnings`` (``executed_notebooks.not_executed``).
WARNING_TYPE = "executed_notebooks"
#: Builders whose pages get the link (one page per document, downloads supported).
BUILDERS = frozenset({"html", "dirhtml"})

logger = logging.getLogger(__name__)


def executed_folder(app: Sphinx) -> Path:
    """The folder where myst-nb writes the executed notebooks.

    Parameters
    ----------
    app : Sphinx
        The running application.

    Returns
    -------
    Path
        myst-nb's ``output_folder`` when myst-nb is configured, else the folder it
        uses by default: ``jupyter_execute`` beside the builder's output folder.
    """
    config = getattr(app.env, "mystnb_config", None)
    folder = getattr(config, "output_folder", "") if config is not None else ""
    return Path(folder) if folder else Path(app.outdir).parent / "jupyter_execute"


def executed_copy(app: Sphinx, docname: str) -> Path:
    """The executed notebook that myst-nb wrote for ``docname``.

    Parameters
    ----------
    app : Sphinx
        The running application.
    docname : str
        A Sphinx document name, such as ``"book/01_bottleneck"``.

    Returns
    -------
    Path
        ``<executed folder>/<docname>.ipynb`` (which may not exist).
    """
    *folders, name = docname.split("/")
    return executed_folder(app).joinpath(*folders, f"{name}.ipynb")


def download_target(docname: str) -> str:
    """Where the executed notebook of ``docname`` goes, relative to the HTML output.

    Parameters
    ----------
    docname : str
        A Sphinx document name, such as ``"book/01_bottleneck"``.

    Returns
    -------
    str
        A POSIX path such as ``"_downloads_executed/book/01_bottleneck.ipynb"``.
    """
    return f"{DOWNLOAD_FOLDER}/{docname}.ipynb"


def is_notebook_page(app: Sphinx, docname: str) -> bool:
    """Whether ``docname`` was built from a notebook (``.ipynb`` or a text notebook).

    myst-nb stores the notebook's ``kernelspec`` in the page metadata (the theme's
    launch buttons read it there); an ``.ipynb`` source counts in any case.

    Parameters
    ----------
    app : Sphinx
        The running application.
    docname : str
        A Sphinx document name.

    Returns
    -------
    bool
        True for notebook pages.
    """
    if "kernelspec" in app.env.metadata.get(docname, {}):
        return True
    return str(app.env.doc2path(docname)).endswith(".ipynb")


def not_executed(notebook: NotebookNode) -> int | None:
    """The number of code cells if none of them was executed, else None.

    Parameters
    ----------
    notebook : NotebookNode
        A notebook (nbformat 4).

    Returns
    -------
    int or None
        None when some code cell has an execution count or outputs, or when there is
        no code cell (nothing to execute); otherwise the number of code cells.
    """
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if code and not any(
        cell.get("execution_count") is not None or cell.get("outputs") for cell in code
    ):
        return len(code)
    return None


def unexecuted_reason(path: Path) -> str | None:
    """Why the file ``path`` is not an executed notebook, or None if it is one.

    Parameters
    ----------
    path : Path
        A notebook file, such as myst-nb's copy in ``jupyter_execute``.

    Returns
    -------
    str or None
        None when ``path`` is a readable notebook that :func:`not_executed` accepts;
        otherwise a sentence that names the file and what is wrong with it.
    """
    if not path.is_file():
        return f"{path} does not exist"
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several types for unreadable files
        return f"{path} is not a readable notebook ({type(error).__name__}: {error})"
    count = not_executed(notebook)
    if count is not None:
        return f"{path} was not executed (none of its {count} code cells has an output)"
    return None


def from_cache(app: Sphinx, docname: str) -> tuple[NotebookNode | None, str]:
    """The executed notebook of ``docname`` from myst-nb's jupyter-cache.

    The source is read as myst-nb reads it (``.ipynb`` or a text notebook, with the
    kernel aliases of ``nb_kernel_rgx_aliases``) and matched against the cache, which
    keys executed notebooks on their code.

    Parameters
    ----------
    app : Sphinx
        The running application.
    docname : str
        A Sphinx document name.

    Returns
    -------
    tuple
        ``(notebook, "")`` with the cached outputs merged into the source, or
        ``(None, reason)`` when the cache is not used or has no executed match.
    """
    config = getattr(app.env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        mode = getattr(config, "execution_mode", None)
        return None, f"execution mode is {mode!r}, not 'cache'"
    cache_path = Path(config.execution_cache_path or "")
    if not cache_path.is_dir():
        return None, f"there is no jupyter-cache at {cache_path}"
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    source = Path(app.env.doc2path(docname))
    text = source.read_text(encoding="utf-8")
    reader = create_nb_reader(str(source), app.env.myst_config, config, text)
    if reader is None:
        return None, f"myst-nb does not read {source} as a notebook"
    notebook = reader.read(text)
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    for pattern, alias in (config.kernel_rgx_aliases or {}).items():
        if kernel is not None and re.fullmatch(pattern, kernel):
            notebook.metadata["kernelspec"]["name"] = alias
            break
    try:
        _, merged = get_cache(str(cache_path)).merge_match_into_notebook(notebook)
    except KeyError:
        return None, f"the jupyter-cache at {cache_path} holds no executed copy of {source}"
    count = not_executed(merged)
    if count is not None:
        return None, f"the cached copy of {source} has no output in its {count} code cells"
    return merged, ""


def executed_notebook(app: Sphinx, docname: str) -> tuple[NotebookNode | None, str]:
    """The executed notebook of a notebook page, or why there is none.

    Parameters
    ----------
    app : Sphinx
        The running application.
    docname : str
        A Sphinx document name.

    Returns
    -------
    tuple
        ``(notebook, "")``: myst-nb's copy when it was executed, else the cached
        notebook; or ``(None, reason)``, the reason naming every place looked at.
    """
    copy = executed_copy(app, docname)
    reason = unexecuted_reason(copy)
    if reason is None:
        return nbformat.read(copy, as_version=4), ""
    notebook, cache_reason = from_cache(app, docname)
    if notebook is not None:
        return notebook, ""
    mode = getattr(getattr(app.env, "mystnb_config", None), "execution_mode", None)
    if mode == "cache":
        hint = (
            "is the notebook excluded from execution, or was the cache cleared after "
            "the page was built? Remove the build folder (`jupyter-book clean --all .`) "
            "and build again"
        )
    else:
        hint = "set execute.execute_notebooks to 'cache' or 'force' in _config.yml"
    return None, f"{reason}, and {cache_reason} ({hint})"


def complete_executed_copy(app: Sphinx, doctree: nodes.document) -> None:
    """Give myst-nb's copy the cached outputs, right after a notebook is read.

    Runs on ``doctree-read``. When myst-nb took the outputs from the jupyter-cache, its
    copy in ``jupyter_execute`` has none; this writes the cached notebook (the one the
    page was rendered from) over it, so that the copy stays right for later builds that
    do not read the page again, even once the cache has been cleared.

    Parameters
    ----------
    app : Sphinx
        The running application.
    doctree : nodes.document
        The document just read (unused).
    """
    docname = app.env.docname
    if not is_notebook_page(app, docname):
        return
    copy = executed_copy(app, docname)
    if copy.is_file() and unexecuted_reason(copy) is not None:
        notebook, _ = from_cache(app, docname)
        if notebook is not None:
            nbformat.write(notebook, copy)


def _warn(docname: str, reason: str) -> None:
    logger.warning(
        f"no download of the executed notebook for this page: {reason}",
        type=WARNING_TYPE,
        subtype="not_executed",
        location=docname,
    )


def add_download_link(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Put the download link under the title of a notebook page (``doctree-resolved``).

    Parameters
    ----------
    app : Sphinx
        The running application.
    doctree : nodes.document
        The resolved document, about to be written.
    docname : str
        Its document name.
    """
    if app.builder.name not in BUILDERS or not is_notebook_page(app, docname):
        return
    notebook, reason = executed_notebook(app, docname)
    if notebook is None:
        _warned(app).add(docname)
        _warn(docname, reason)
        return
    uri = relative_uri(app.builder.get_target_uri(docname), download_target(docname))
    link = addnodes.download_reference("", "", nodes.Text(LINK_TEXT), refuri=uri)
    paragraph = nodes.paragraph("", "", link, classes=[LINK_CLASS])
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, paragraph)
    else:
        doctree.insert(0, paragraph)


def write_executed_notebooks(app: Sphinx, exception: BaseException | None) -> None:
    """Write every notebook page's executed notebook into the HTML output.

    Runs on ``build-finished``, for all notebook pages of the project, including
    pages that an incremental build did not rewrite (their links come from an
    earlier build). The download folder is emptied first, so it never keeps the
    notebook of a page that no longer exists.

    Parameters
    ----------
    app : Sphinx
        The running application.
    exception : BaseException or None
        The exception that ended the build, if any (then nothing is copied).
    """
    if exception is not None or app.builder.name not in BUILDERS:
        return
    destination = Path(app.outdir) / DOWNLOAD_FOLDER
    shutil.rmtree(destination, ignore_errors=True)
    warned = _warned(app)
    copied = 0
    for docname in sorted(app.env.all_docs):
        if not is_notebook_page(app, docname):
            continue
        notebook, reason = executed_notebook(app, docname)
        if notebook is None:
            if docname not in warned:  # a page written by an earlier build
                _warn(docname, reason)
            continue
        target = Path(app.outdir) / download_target(docname)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        copied += 1
    logger.info(f"executed_notebooks: wrote {copied} executed notebook(s) to {destination}")


def _warned(app: Sphinx) -> set[str]:
    """The pages warned about in this build (kept on the application, not the env)."""
    if not hasattr(app, "_executed_notebooks_warned"):
        app._executed_notebooks_warned = set()  # type: ignore[attr-defined]
    return app._executed_notebooks_warned  # type: ignore[attr-defined]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the event handlers.

    Parameters
    ----------
    app : Sphinx
        The application being set up.

    Returns
    -------
    dict
        Extension metadata: safe for parallel reading and writing (the handlers
        store nothing in the environment; ``doctree-read`` writes only the copy of
        the document being read).
    """
    app.connect("doctree-read", complete_executed_copy)
    app.connect("doctree-resolved", add_download_link)
    app.connect("build-finished", write_executed_notebooks)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
