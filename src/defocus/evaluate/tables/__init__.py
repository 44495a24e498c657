"""Result tables from evaluation summaries, written as CSV, Markdown and LaTeX.

``table1`` is the headline comparison (the content of DeFusionNet's Table 1: F-measure and
MAE per method and dataset), with bootstrap 95% CIs. ``runtime_table`` mirrors the runtime
columns the papers report, ``ablation_table`` collects the ``base@key=value`` variants of
one method, ``continuous_table`` the MSE/MAE of physical defocus maps (DMENet's RTF table).
Every caption ends with the evaluation protocol that was actually run
(:func:`protocol_of`, from the summaries' own ``protocol``), never with a constant.

Provenance columns (table1 and the runtime table) say what each row is:
``implementation`` (faithful | substitute | reconstruction | reference | external, the
method class's ``fidelity``), ``weights`` (trained here | authors' release | external maps |
none), ``backbone_init`` (imagenet | random | authors' release | n/a, what was loaded) and
``training`` (iterations and training images used against the paper's). The CSV keeps
``faithful_at_paper_scale``; Markdown and LaTeX mark every other row with a dagger and say
so in a legend. Each table of the tables rule also gets a JSON sidecar (``stem.json``) with
its caption, protocol, legend and the package versions and git commit
(:func:`defocus.provenance.provenance`).

Package layout: :mod:`~defocus.evaluate.tables.rows` (the table builders: one row per method
and dataset from the evaluation summaries, their provenance columns and the protocol they
share), :mod:`~.writers` (Markdown, LaTeX, CSV and the JSON sidecar, the dagger legend and the
tables' README) and :mod:`~.ranking` (``table_protocols``: every method under every preset,
ranks and Kendall's tau). Every name is importable from this package.
"""

from defocus.evaluate.tables.ranking import (
    PROTOCOL_SCALARS,
    PROTOCOLS_COLUMNS,
    protocol_record,
    protocols_table,
    protocols_view,
    write_protocols_table,
)
from defocus.evaluate.tables.rows import (
    FAITHFUL_COLUMN,
    PROVENANCE_COLUMNS,
    RUNTIME_COLUMNS,
    TABLE1_COLUMNS,
    ablation_table,
    continuous_table,
    is_external,
    is_reference,
    methods_listing,
    protocol_of,
    runtime_table,
    summary_provenance,
    table1,
)
from defocus.evaluate.tables.writers import (
    DAGGER,
    DAGGER_LEGEND,
    display_frame,
    latex_escape,
    to_latex,
    to_markdown,
    versions_text,
    write_table,
    write_tables_readme,
)

__all__ = [
    "DAGGER",
    "DAGGER_LEGEND",
    "FAITHFUL_COLUMN",
    "PROTOCOLS_COLUMNS",
    "PROTOCOL_SCALARS",
    "PROVENANCE_COLUMNS",
    "RUNTIME_COLUMNS",
    "TABLE1_COLUMNS",
    "ablation_table",
    "continuous_table",
    "display_frame",
    "is_external",
    "is_reference",
    "latex_escape",
    "methods_listing",
    "protocol_of",
    "protocol_record",
    "protocols_table",
    "protocols_view",
    "runtime_table",
    "summary_provenance",
    "table1",
    "to_latex",
    "to_markdown",
    "versions_text",
    "write_protocols_table",
    "write_table",
    "write_tables_readme",
]
