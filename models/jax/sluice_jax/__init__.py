"""sluice_jax: a standalone JAX trainer for sluice's scoring networks (see ../CONTRACT.md)."""

__version__ = '0.1.0'
