"""Data preparation: ImageNet from the official archives, integrity checks, subsets, and the
small embedded dataset (scikit-learn's handwritten digits) that the workshop trains on by default.

Every command writes under temporary names and renames when complete, so an interrupted run
never leaves something that looks finished. Run ``python -m data_prep --help``.
"""
