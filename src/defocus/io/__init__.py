"""File formats: images, depth maps, HDF5 prediction files, manifests, atomic writes."""
