"""Faces across frames: detect, track, smooth landmarks, align, paste back."""
