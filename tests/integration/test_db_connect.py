"""The shared DB connectors against the sandbox's real PostgreSQL and MariaDB servers."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils import _db
from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError


def _aws_options(sandbox):
    env = sandbox.aws_env()
    return {"endpoint_url": env["AWS_ENDPOINT_URL"], "access_key": env["AWS_ACCESS_KEY_ID"],
            "secret_key": env["AWS_SECRET_ACCESS_KEY"], "region": env["AWS_REGION"]}


def _options(sandbox, target, **overrides):
    options = {"login_host": target["login_host"], "login_port": target["login_port"], "endpoint": target["endpoint"],
               "login_secret": target["secret_arn"], "ca_cert": sandbox.ca_cert}
    options.update(overrides)
    return options


def _engine(target):
    return "postgres" if "postgres" in target["engine"] else "mysql"


def _whoami(conn, engine):
    with conn.cursor() as cur:
        if engine == "postgres":
            cur.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            user, tls = cur.fetchone()
        else:
            cur.execute("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1), VARIABLE_VALUE <> '' FROM "
                        "information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'")
            user, tls = cur.fetchone()
    return user, bool(tls)


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-aurora-pg", "sbx-mariadb", "sbx-mysql"])
def test_master_secret_login_over_verified_tls_to_every_target(sandbox, identifier):
    target = sandbox.target(identifier)
    login = _db.resolve_db_login(_options(sandbox, target), _engine(target), _aws_options(sandbox))
    assert (login.user, login.auth, login.ssl_mode) == (target["master_username"], "secret", "verify-full")
    assert target["master_password"] not in repr(login)
    conn = _db.connect_db(login)
    try:
        assert _whoami(conn, login.engine) == (target["master_username"], True)
    finally:
        conn.close()


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-mariadb"])
def test_certificate_checked_against_the_endpoint_not_the_tunnel_address(sandbox, identifier):
    target = sandbox.target(identifier)
    wrong_name = target["endpoint"].replace(identifier, "some-other-db")
    login = _db.resolve_db_login(_options(sandbox, target, endpoint=wrong_name), _engine(target), _aws_options(sandbox))
    with pytest.raises(_db.DbConnectError) as failed:
        _db.connect_db(login)
    message = str(failed.value)
    assert target["login_host"] in message and str(target["login_port"]) in message and login.user in message
    assert target["master_password"] not in message


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-mysql"])
def test_a_foreign_ca_is_refused(sandbox, identifier, tmp_path):
    from sandbox.db.tls import CertificateAuthority

    CertificateAuthority.create(str(tmp_path))
    target = sandbox.target(identifier)
    login = _db.resolve_db_login(_options(sandbox, target, ca_cert=str(tmp_path / "ca.pem")), _engine(target),
                                 _aws_options(sandbox))
    with pytest.raises(_db.DbConnectError) as failed:
        _db.connect_db(login)
    assert f"check that ca_cert '{tmp_path / 'ca.pem'}' holds the CA that signed the server certificate" in str(failed.value)
    assert target["master_password"] not in str(failed.value)


def test_postgres_plaintext_is_refused_with_host_port_and_user(sandbox):
    target = sandbox.target("sbx-postgres")
    login = _db.resolve_db_login(_options(sandbox, target, ssl_mode="disable"), "postgres", _aws_options(sandbox))
    assert "ssl_mode" in _db.tls_warning(login)
    with pytest.raises(_db.DbConnectError, match="no encryption") as failed:
        _db.connect_postgres(login)
    assert f"{target['login_host']}:{target['login_port']}" in str(failed.value) or str(target["login_port"]) in str(failed.value)


@pytest.mark.parametrize("identifier", ["sbx-postgres", "sbx-mariadb"])
def test_bad_password_message_names_the_user_never_the_password(sandbox, identifier):
    target = sandbox.target(identifier)
    bad = "Wrong-Pass-0xDEADBEEF"
    options = _options(sandbox, target, login_secret=None, login_user=target["master_username"], login_password=bad)
    login = _db.resolve_db_login(options, _engine(target))
    with pytest.raises(_db.DbConnectError) as failed:
        _db.connect_db(login)
    message = str(failed.value)
    assert target["master_username"] in message and str(target["login_port"]) in message
    assert bad not in message


def test_closed_port_is_reported_with_where_it_tried(sandbox):
    from sandbox.network import free_port

    target = sandbox.target("sbx-postgres")
    port = free_port("127.0.0.1")
    options = _options(sandbox, target, login_port=port, login_secret=None, login_user="postgres", login_password="x" * 12,
                       connect_timeout=2)
    with pytest.raises(_db.DbConnectError) as failed:
        _db.connect_postgres(_db.resolve_db_login(options, "postgres"))
    assert str(port) in str(failed.value) and "x" * 12 not in str(failed.value)


def test_unknown_secret_is_a_clear_error(sandbox):
    target = sandbox.target("sbx-postgres")
    missing = target["secret_arn"].rsplit(":", 1)[0] + ":rds!db-does-not-exist-AbCdEf"
    with pytest.raises(RdsIamError) as failed:
        _db.resolve_db_login(_options(sandbox, target, login_secret=missing), "postgres", _aws_options(sandbox))
    assert "ResourceNotFoundException" in str(failed.value) and "does-not-exist" in str(failed.value)
