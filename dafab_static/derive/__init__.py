"""Pure transforms from raster facts to STAC fields: footprint, statistics, sensors, names.

Nothing here opens a file, reads the clock or the environment; ``ingest/`` does the I/O.
"""
