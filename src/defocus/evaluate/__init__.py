"""Evaluation: metrics per image, curves, bootstrap CIs, tables and figures.

Modules
-------
metrics
    :class:`~defocus.evaluate.metrics.BinaryEvaluator` (per-image accumulator, all 256
    thresholds by histogram + cumsum), :func:`~defocus.evaluate.metrics.summarise` for the
    averaging modes ``image`` / ``image_maxf`` / ``pooled``, and the declared protocol
    :data:`~defocus.evaluate.metrics.PROTOCOL_TEXT`.
continuous
    MSE / MAE of physical defocus maps (RTF normalisation of DMENet's evaluation).
bootstrap
    Seeded percentile-bootstrap CIs over images for f_beta and MAE.
evaluate
    :func:`~defocus.evaluate.evaluate.evaluate_file` (prediction HDF5 + manifest ->
    per-image frame, curves, summary) and :func:`~defocus.evaluate.evaluate.write_outputs`.
tables
    ``table1``, ``runtime_table``, ``ablation_table``, ``continuous_table``, ``write_table``
    (CSV + Markdown + LaTeX) and ``write_tables_readme``.
figures
    PR curves, F-vs-threshold curves and qualitative grids (PNG + PDF, Agg).
"""

from defocus.evaluate.metrics import PROTOCOL_TEXT, BinaryEvaluator, Counts, summarise

__all__ = ["PROTOCOL_TEXT", "BinaryEvaluator", "Counts", "summarise"]
