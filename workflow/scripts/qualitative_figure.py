"""Rule qualitative_figure: input, GT and each method's map for the first test images."""

from pathlib import Path

from defocus.evaluate.figures import pick_diverse, qualitative_grid
from defocus.io.image import read_gray, read_image
from defocus.io.manifest import read_manifest
from defocus.io.predictions import read_map
from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    test = read_manifest(sm.input.manifest, split="test").set_index("id", drop=False)
    test = test.loc[pick_diverse(list(test["id"]), sm.params.n)]
    rows = []
    for r in test.itertuples():
        maps = {m: read_map(h5, r.id) for m, h5 in zip(sm.params.methods, sm.input.h5, strict=True)}
        rows.append((r.id, read_image(r.image), read_gray(r.gt), maps))
    qualitative_grid(rows, Path(sm.output.png).with_suffix(""))
