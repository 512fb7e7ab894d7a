"""Latent operations (encode, generate, grids, interpolation, traversal) and 2-D maps of codes."""

from .maps import (MAP_METHODS, SPLITS, compute_map, kept_map, load_or_compute_tsne, pca_2d, pca_inverse, place_by_neighbours,
                   split_codes, tsne_2d, umap_2d)
from .operations import (Encoding, centroid_arithmetic, class_centroids, class_labels, corner_grid, encode_image, encode_means, generate,
                         interpolate, interpolation_at, interpolation_paths, manifold_grid, normal_quantiles, path_lengths, plane_grid,
                         reconstruction_rows,
                         sample_prior, traversal_frames, traverse, vamp_components)

__all__ = ["MAP_METHODS", "SPLITS", "compute_map", "kept_map", "split_codes", "umap_2d", "Encoding", "centroid_arithmetic", "class_centroids", "class_labels", "corner_grid", "encode_image", "encode_means", "generate",
           "interpolate", "interpolation_at", "interpolation_paths", "load_or_compute_tsne", "manifold_grid", "normal_quantiles", "path_lengths", "pca_2d",
           "pca_inverse", "place_by_neighbours", "plane_grid", "reconstruction_rows", "sample_prior", "traversal_frames",
           "traverse", "tsne_2d", "vamp_components"]
