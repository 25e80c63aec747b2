"""Restore on a Ray cluster: one long video's segments, or a library's files and segments, in parallel.

``session`` starts or joins Ray (loopback only when it starts Ray here) and checks that every
node sees the files; ``plan`` resolves the settings once on the driver; ``worker`` is the
actor that keeps the weights loaded and restores one unit at a time; ``schedule`` keeps the
workers busy, retries lost units and cleans up on a stop; ``restore`` is one video.
"""
