"""The project's test PKI: a root standing in for the Government's specialised CA, an issuing
CA under it, certificates for officials (personal signatures) and agencies (the agency's
signature), and CRLs. Made with ``cryptography`` by ``lgsp pki`` (or ``TestPki.create``) from
nothing but a moment: nothing opaque is checked in.

Which kind a certificate is travels in its certificate policies: ``PERSON_POLICY`` or
``AGENCY_POLICY`` (project OIDs under an arc reserved for examples). A certificate names its
agency in ``organizationalUnitName``; an official's certificate also names the person.

Also here, for tests and tools: certificates that must be refused: one from a root nobody
trusts, one already expired, one revoked (listed in the issuing CA's CRL).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Example arc (2.999 is reserved for examples by ITU-T X.660): the platform's test policies.
PERSON_POLICY = "2.999.84.1.1"  # ký số cá nhân
AGENCY_POLICY = "2.999.84.1.2"  # ký số cơ quan
KINDS = {"person": PERSON_POLICY, "agency": AGENCY_POLICY}
# Where each CA says its CRL is published; receivers are given the CRLs (nothing is fetched).
CRL_URL = "http://pki.lgsp.example/{}.crl"


def _name(common: str, agency: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LGSP test PKI"),
    ]
    if agency:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, agency))
    # X.520 allows 64; cryptography counts UTF-8 bytes: long Vietnamese names are cut, never split mid-letter
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common.encode()[:64].decode("utf-8", "ignore")))
    return x509.Name(attrs)


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Credential:
    """A signing certificate, its key and the chain above it (PEM)."""

    cert_pem: bytes
    key_pem: bytes
    chain_pem: tuple[bytes, ...]


def _crl_point(name: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(CRL_URL.format(name))],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


class Authority:
    def __init__(self, name: x509.Name, key, cert: x509.Certificate, crl_name: str = "root") -> None:
        self.name, self.key, self.cert, self.crl_name = name, key, cert, crl_name

    @classmethod
    def root(cls, common: str, not_before: dt.datetime, not_after: dt.datetime) -> "Authority":
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, cert)

    def _builder(self, subject: x509.Name, public_key, not_before: dt.datetime, not_after: dt.datetime):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )

    def intermediate(self, common: str, not_before: dt.datetime, not_after: dt.datetime) -> "Authority":
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common)
        cert = (
            self._builder(name, key.public_key(), not_before, not_after)
            .add_extension(_crl_point("root"), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return Authority(name, key, cert, crl_name="issuing-ca")

    def signer(self, kind: str, agency: str, common: str, not_before: dt.datetime, not_after: dt.datetime):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            self._builder(_name(common, agency), key.public_key(), not_before, not_after)
            .add_extension(_crl_point(self.crl_name), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(KINDS[kind]), None)]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return key, cert

    def crl(self, revoked: list[x509.Certificate], this_update: dt.datetime, next_update: dt.datetime) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.name)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.CRLNumber(1), critical=False)
        )
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(this_update).build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class TestPki:
    """A test PKI on disk: ``root.pem`` (the trust anchor), ``issuing-ca.pem``, ``crls/*.crl``,
    and one folder per credential (``cert.pem``, ``key.pem``, ``chain.pem``)."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @classmethod
    def create(cls, directory: Path, moment: dt.datetime, agencies: dict[str, str]) -> "TestPki":
        """A PKI valid around ``moment``: for each agency (code -> name), the agency's own
        certificate and one official's; and the three certificates that must be refused."""
        directory.mkdir(parents=True, exist_ok=True)
        year = dt.timedelta(days=365)
        root = Authority.root(
            "LGSP Test Root CA (stands in for the Government specialised CA)", moment - 3 * year, moment + 10 * year
        )
        issuing = root.intermediate("LGSP Test Issuing CA", moment - 2 * year, moment + 8 * year)
        (directory / "root.pem").write_bytes(_pem(root.cert))
        (directory / "issuing-ca.pem").write_bytes(_pem(issuing.cert))
        chain = (_pem(issuing.cert), _pem(root.cert))
        written: dict[str, dict] = {}

        def keep(name: str, key, cert, chain_pems=chain) -> x509.Certificate:
            folder = directory / "credentials" / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cert.pem").write_bytes(_pem(cert))
            (folder / "key.pem").write_bytes(_pem_key(key))
            (folder / "chain.pem").write_bytes(b"".join(chain_pems))
            written[name] = {"subject": cert.subject.rfc4514_string(), "serial": str(cert.serial_number)}
            return cert

        for code, name in agencies.items():
            keep(f"agency-{code}", *issuing.signer("agency", code, name, moment - year, moment + 3 * year))
            keep(
                f"official-{code}", *issuing.signer("person", code, f"Cán bộ {name}", moment - year, moment + 3 * year)
            )
        some = next(iter(agencies))
        revoked = keep(
            "revoked-official",
            *issuing.signer("person", some, "Cán bộ có chứng thư bị thu hồi", moment - year, moment + 3 * year),
        )
        keep(
            "expired-official",
            *issuing.signer(
                "person", some, "Cán bộ có chứng thư hết hạn", moment - 2 * year, moment - dt.timedelta(days=30)
            ),
        )
        stranger = Authority.root("A CA nobody trusts", moment - year, moment + 5 * year)
        keep(
            "untrusted-agency",
            *stranger.signer("agency", some, "Cơ quan có chứng thư ngoài hệ thống", moment - year, moment + 3 * year),
            chain_pems=(_pem(stranger.cert),),
        )
        crls = directory / "crls"
        crls.mkdir(exist_ok=True)
        (crls / "issuing-ca.crl").write_bytes(issuing.crl([revoked], moment - dt.timedelta(days=1), moment + year))
        (crls / "root.crl").write_bytes(root.crl([], moment - dt.timedelta(days=1), moment + year))
        (directory / "index.json").write_text(
            json.dumps(
                {"moment": moment.isoformat(), "credentials": written, "agency_of_test_credentials": some},
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )
        return cls(directory)

    def credential(self, name: str) -> Credential:
        folder = self.directory / "credentials" / name
        if not folder.is_dir():
            raise KeyError(f"no credential {name!r} in {self.directory}")
        chain = (folder / "chain.pem").read_bytes()
        parts = tuple(b"-----BEGIN CERTIFICATE-----" + p for p in chain.split(b"-----BEGIN CERTIFICATE-----")[1:])
        return Credential((folder / "cert.pem").read_bytes(), (folder / "key.pem").read_bytes(), parts)

    def trust(self) -> tuple[bytes, list[bytes], list[bytes]]:
        """(root PEM, other CA PEMs, CRL DERs): what a receiver needs to validate."""
        return (
            (self.directory / "root.pem").read_bytes(),
            [(self.directory / "issuing-ca.pem").read_bytes()],
            [p.read_bytes() for p in sorted((self.directory / "crls").glob("*.crl"))],
        )
