"""The one quoting and validation helper for PostgreSQL, MySQL and MariaDB names."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import (
    IdentifierError,
    check_mysql_host,
    check_mysql_user,
    check_pg_name,
    check_pg_new_role_name,
    escape_mysql_db_pattern,
    quote_mysql_ident,
    quote_pg_ident,
    unescape_mysql_db_pattern,
)


@pytest.mark.parametrize("name, quoted", [
    ("alice", '"alice"'),
    ('dq"uote', '"dq""uote"'),
    ('rds_iam"; DROP ROLE x; --', '"rds_iam""; DROP ROLE x; --"'),
    ("Ünï cødé", '"Ünï cødé"'),
    (" lead", '" lead"'),
])
def test_pg_identifiers_are_double_quoted_with_quotes_doubled(name, quoted):
    assert quote_pg_ident(name) == quoted


def test_pg_names_are_limited_to_63_bytes_not_characters():
    assert check_pg_name("a" * 63) == "a" * 63
    assert check_pg_name("é" * 31 + "a") == "é" * 31 + "a"
    with pytest.raises(IdentifierError, match="64 bytes long; PostgreSQL would silently truncate it to 63 bytes"):
        check_pg_name("é" * 32)
    with pytest.raises(IdentifierError, match="64 bytes"):
        quote_pg_ident("x" * 64)


@pytest.mark.parametrize("bad, message", [
    ("", "non-empty string"),
    (None, "non-empty string"),
    (5, "non-empty string"),
    ("nul\x00byte", "NUL byte"),
])
def test_pg_names_that_cannot_be_stored_are_refused(bad, message):
    with pytest.raises(IdentifierError, match=message):
        quote_pg_ident(bad)


@pytest.mark.parametrize("name", ["pg_monitor", "pg_x", "public", "PUBLIC", "none", "current_user", "session_user", "current_role"])
def test_pg_reserved_names_cannot_be_new_roles(name):
    with pytest.raises(IdentifierError, match="reserved by PostgreSQL"):
        check_pg_new_role_name(name)
    check_pg_name(name)  # still fine as a role to grant or read


def test_error_messages_escape_control_characters():
    with pytest.raises(IdentifierError) as failed:
        check_pg_name("tab\there\x00")
    assert "\t" not in str(failed.value) and "\\t" in str(failed.value)


def test_mysql_user_limits_differ_by_engine():
    assert check_mysql_user("u" * 32, "mysql") == "u" * 32
    with pytest.raises(IdentifierError, match="33 characters long, more than the 32 characters a user name can have on mysql"):
        check_mysql_user("u" * 33, "mysql")
    assert check_mysql_user("ü" * 80, "mariadb") == "ü" * 80  # characters, not bytes
    with pytest.raises(IdentifierError, match="81 characters long, more than the 80 characters a user name can have on mariadb"):
        check_mysql_user("u" * 81, "mariadb")


@pytest.mark.parametrize("bad, message", [
    ("bob ", "ends with a space"),
    ("emoji\U0001F600", "Basic Multilingual Plane"),
    ("nul\x00", "NUL character"),
    ("", "non-empty"),
])
def test_mysql_user_names_the_grant_tables_would_change_are_refused(bad, message):
    with pytest.raises(IdentifierError, match=message):
        check_mysql_user(bad, "mariadb")


def test_mysql_names_may_lead_with_spaces_and_hold_quotes():
    for name in (" lead", "o'brien", "back`tick", "semi;colon", "per%cent"):
        assert check_mysql_user(name, "mysql") == name


def test_mysql_host_part_is_limited_to_255_characters():
    assert check_mysql_host("h" * 255) == "h" * 255
    with pytest.raises(IdentifierError, match="256 characters long; the limit here is 255"):
        check_mysql_host("h" * 256)


def test_mysql_identifiers_are_backticked_with_backticks_doubled():
    assert quote_mysql_ident("app") == "`app`"
    assert quote_mysql_ident("we`ird; DROP") == "`we``ird; DROP`"
    with pytest.raises(IdentifierError, match="65 characters"):
        quote_mysql_ident("d" * 65)


@pytest.mark.parametrize("name, pattern", [
    ("app", "app"),
    ("app_x", "app\\_x"),
    ("100%", "100\\%"),
    ("back\\slash", "back\\\\slash"),
])
def test_db_names_become_literal_grant_patterns_and_back(name, pattern):
    assert escape_mysql_db_pattern(name) == pattern
    assert unescape_mysql_db_pattern(pattern) == name


def test_a_grant_pattern_with_a_real_wildcard_names_no_single_database():
    assert unescape_mysql_db_pattern("app_%") is None
    assert unescape_mysql_db_pattern("app\\_%") is None
