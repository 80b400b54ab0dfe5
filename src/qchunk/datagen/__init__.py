"""Dataset generation: runs environments with scripted policies and writes dataset files in the official
layouts, so tests and a first run need no download.

- :func:`qchunk.datagen.ogbench.generate_ogbench`: an OGBench ``play`` dataset from OGBench's plan oracles.
- :func:`qchunk.datagen.robomimic.generate_robomimic`: a small robomimic lift dataset from a scripted policy.

This package sits above :mod:`qchunk.data` (the formats it writes are the ones the loaders read) and
:mod:`qchunk.envs` (the robomimic environment); those two do not import each other. Importing it loads
nothing heavy: each generator is imported from its module.
"""
