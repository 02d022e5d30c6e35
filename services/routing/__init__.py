"""Routing: each dossier's workflow across agencies and levels."""
