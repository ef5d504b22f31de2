"""A throwaway certificate authority and server certificates for the sandbox databases.

Server certificates carry the RDS-style endpoint names of their targets and 127.0.0.1, so a
client can verify the hostname against the real endpoint name or the loopback address.
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=7)


def _name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rdsiam.auth sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class CertificateAuthority:
    def __init__(self, key, cert):
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, directory):
        """Make a CA and write its certificate to directory/ca.pem (the key stays in memory)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("rdsiam.auth sandbox CA"))
            .issuer_name(_name("rdsiam.auth sandbox CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write(os.path.join(directory, "ca.pem"), cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert)

    def issue_server_cert(self, directory, dns_names, ip_addresses=("127.0.0.1",)):
        """Write server.crt / server.key (0600) for the given names into directory."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names = [x509.DNSName(name) for name in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(dns_names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path = os.path.join(directory, "server.crt")
        key_path = os.path.join(directory, "server.key")
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        _write(key_path, _key_pem(key), mode=0o600)
        return cert_path, key_path
