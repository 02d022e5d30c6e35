"""Postal: BCCI shipments, pickups from citizens' homes and results delivered by post."""
