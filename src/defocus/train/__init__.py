"""Shared training pieces: the resumable loop, torch.distributed glue, the entry point.

``python -m defocus.train`` (or ``torchrun --nproc_per_node N -m defocus.train``) trains one
registered learned method; the Snakemake rule ``train`` calls it.
"""
