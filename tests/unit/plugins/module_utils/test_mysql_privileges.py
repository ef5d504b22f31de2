"""The MySQL/MariaDB privilege grammar: community.mysql's privilege strings and dicts, names normalised, levels quoted."""
import pytest

from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import UserSyncError
from ansible_collections.rdsiam.auth.plugins.module_utils._mysql_privileges import (
    ALL,
    GLOBAL,
    GRANT_OPTION,
    Level,
    level_text,
    parse_privileges,
)


# ---- privilege strings ----

def test_community_mysql_privilege_strings_are_parsed_and_normalised():
    assert parse_privileges("app.orders:select, Insert/app.*:ALL/*.*:PROCESS,GRANT", "mariadb") == {
        Level("app", "orders"): {"SELECT", "INSERT"}, Level("app", None): {ALL}, GLOBAL: {"PROCESS", GRANT_OPTION}}


def test_dict_form_and_backticks_for_names_with_dots():
    parsed = parse_privileges({"`my.db`.`t.1`": ["select"], "`we``ird`.*": "usage,  create   view"}, "mysql")
    assert parsed == {Level("my.db", "t.1"): {"SELECT"}, Level("we`ird", None): {"CREATE VIEW"}}


def test_wildcards_in_database_names_are_escaped_to_literals():
    level = next(iter(parse_privileges("app_x.*:SELECT", "mariadb")))
    assert level == Level("app\\_x", None) and level_text(level) == "app_x.*"


@pytest.mark.parametrize("value, message", [
    ("app.*:SELECT (id)", "column privileges"),
    ("app.*:FLY", "'FLY' is not a MariaDB privilege"),
    ("app.*:BACKUP_ADMIN", "not a MariaDB privilege"),
    ("*.*:ALL", "ALL on \\*.\\* is not supported"),
    ("*.orders:SELECT", "a table needs a database"),
    ("app:SELECT", "is not db.table"),
    ("app.*", "has no ':'"),
    ("`app.*:SELECT", "is not db.table"),
    (42, "must be a string"),
    ("a" * 65 + ".*:SELECT", "65 characters"),
])
def test_bad_privilege_strings_are_refused_with_the_reason(value, message):
    with pytest.raises(UserSyncError, match=message):
        parse_privileges(value, "mariadb")


def test_mysql_8_dynamic_privileges_are_accepted_on_mysql():
    assert parse_privileges("*.*:BACKUP_ADMIN", "mysql") == {GLOBAL: {"BACKUP_ADMIN"}}
