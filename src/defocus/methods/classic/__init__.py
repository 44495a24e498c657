"""Classic hand-crafted blur detectors of the papers' tables.

``REGISTRY`` maps registry names to ``"module:Class"``; it is read by
:mod:`defocus.methods.registry`.
"""

REGISTRY: dict[str, str] = {
    "svd": "defocus.methods.classic.svd:SVDBlur",
    "lbp": "defocus.methods.classic.lbp:LBPBlur",
    "hifst": "defocus.methods.classic.hifst:HiFST",
    "zhuo_sim": "defocus.methods.classic.zhuo_sim:ZhuoSim",
    "ss": "defocus.methods.classic.ss:SpectralSpatial",
    "dbdf": "defocus.methods.classic.dbdf:DBDF",
    "jnb": "defocus.methods.classic.jnb:JNB",
    "asvb": "defocus.methods.classic.asvb:ASVB",
    "ksfv": "defocus.methods.classic.ksfv:KSFV",
}
