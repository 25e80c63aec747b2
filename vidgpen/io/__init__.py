"""Video decode and encode over PyAV (and decord), streaming frame by frame."""
