"""Intake: takes dossiers from portals and counters, gives them a code, emits dossier events."""
