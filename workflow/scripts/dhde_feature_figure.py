"""Rule dhde_feature_figure: paper Figure 3, mean hand-crafted features, sharp vs blurry."""

from defocus.logs import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from defocus.features.patches import SIGMAS, class_mean_features
    from defocus.io.atomic import atomic_path

    titles = {"fD": "DCT feature", "fG": "gradient feature", "fS": "SVD feature"}
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.5))
    for row, (scale, name) in enumerate([(1, "27x27 (weak edges)"), (0, "15x15 (strong edges)")]):
        means = class_mean_features(list(sm.input.patches), scale=scale)
        for ax, (feat, curves) in zip(axes[row], means.items(), strict=True):
            for lab, style in ((0, ":"), (len(SIGMAS) - 1, "-")):
                kind = "sharp" if lab == 0 else "blurry"
                ax.plot(curves[lab], style, label=f"{kind} (sigma {SIGMAS[lab]:.2f})")
            ax.set_title(f"{titles[feat]}, {name}", fontsize=9)
            ax.set_xlabel("bin")
            ax.legend(fontsize=7)
    fig.suptitle("Average hand-crafted features of sharp and blurry patches (Park et al. Fig. 3)")
    fig.tight_layout()
    with atomic_path(sm.output.png) as tmp:
        fig.savefig(tmp, dpi=120)
