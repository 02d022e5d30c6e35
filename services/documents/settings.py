"""The documents service's own settings: its files, its trust, the national axis."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import Settings


class DocumentsSettings(Settings):
    documents_pki_dir: Path | None = Field(
        None,
        description="The receivers' trust: root.pem, issuing-ca.pem and "
        "crls/*.crl (`lgsp pki` makes a test one); default <state_dir>/pki",
    )
    documents_max_file_bytes: int = Field(
        20_000_000, ge=1, le=200_000_000, description="Largest document file accepted"
    )
    documents_agency_quota_bytes: int = Field(
        5_000_000_000, ge=1, le=10**13, description="Storage for the files an agency's officials upload, in bytes"
    )
    axis_url: str = Field("http://127.0.0.1:8094", description="The national document-exchange axis (other provinces)")
    axis_key: SecretStr | None = Field(None, description="Our key at the national document-exchange axis (secret)")


SETTINGS = DocumentsSettings
