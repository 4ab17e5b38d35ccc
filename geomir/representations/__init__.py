"""Hierarchy embeddings (Nickel & Kiela 2017, 2018): data, training and evaluation.

docs/representations.md describes the data sets, the training and the metrics.
"""

from .hierarchy import Hierarchy, HierarchyError, generated_tree
from .metrics import (EvaluationError, Reconstruction, euclidean_distance, lorentz_distance, make_distance,
                      poincare_distance, reconstruction, reconstruction_from_distances)
from .wordnet import mammal_closure, noun_closure, read_nouns, wordnet_available
