"""Evaluation: metrics per image, curves, bootstrap CIs, tables and figures.

Modules
-------
metrics
    :class:`~defocus.evaluate.metrics.BinaryEvaluator` (per-image accumulator, all 256
    thresholds by histogram + cumsum), :func:`~defocus.evaluate.metrics.summarise` for the
    averaging modes ``image`` / ``image_maxf`` / ``pooled``, and
    :func:`~defocus.evaluate.metrics.describe_protocol` (the protocol in words;
    :data:`~defocus.evaluate.metrics.PROTOCOL_TEXT` is the default one).
continuous
    MSE / MAE of physical defocus maps (RTF normalisation of DMENet's evaluation).
protocols
    Named protocol presets (``declared`` and each paper's own scoring: DeFusionNet Table 1
    in two readings, HiFST, DHDE, DMENet, and the config's own), the named split files they
    score on, :func:`~defocus.evaluate.protocols.preset_protocol` (config -> protocol dict).
bootstrap
    Seeded percentile-bootstrap CIs over images for f_beta and MAE.
evaluate
    :func:`~defocus.evaluate.evaluate.evaluate_file` (prediction HDF5 + manifest ->
    per-image frame, curves, summary with the row's provenance) and
    :func:`~defocus.evaluate.evaluate.write_outputs`.
tables
    ``table1``, ``runtime_table`` (with the provenance columns), ``ablation_table``,
    ``continuous_table``, ``protocols_table`` (every method under every preset, ranks,
    Kendall's tau against declared), ``write_table`` (CSV + Markdown + LaTeX + JSON
    sidecar, captions from the protocol the summaries record: ``protocol_of``) and
    ``write_tables_readme``.
figures
    PR curves, F-vs-threshold curves, qualitative grids and the ranks of every method
    across the protocol presets (PNG + PDF, Agg).
"""

from defocus.evaluate.metrics import PROTOCOL_TEXT, BinaryEvaluator, Counts, summarise

__all__ = ["PROTOCOL_TEXT", "BinaryEvaluator", "Counts", "summarise"]
