"""GPEN and the registry of its weights."""
