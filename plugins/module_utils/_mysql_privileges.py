# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The MySQL/MariaDB privilege grammar, apart from user planning: community.mysql's
# "db.table:PRIV1,PRIV2/db2.*:ALL" strings and their dict form parsed into grant levels, privilege
# names normalised (aliases, MySQL 8 dynamic privileges), levels quoted for GRANT/REVOKE, and the
# privileges to grant or revoke at one level. The onboarding filters check privileges with the same
# parser the module applies them with, so a typo fails before any change. No SQL runs here.

import collections
import re

from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import UserSyncError
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import (
    IdentifierError,
    escape_mysql_db_pattern,
    quote_mysql_ident,
    unescape_mysql_db_pattern,
)

# A grant level: db is None for *.*; table is None for db.*. For db.* the db is the pattern as the
# grant tables store it (_ and % escaped), for db.table the plain name.
Level = collections.namedtuple('Level', 'db table')
GLOBAL = Level(None, None)

ALL = 'ALL PRIVILEGES'
GRANT_OPTION = 'GRANT OPTION'
# What GRANT ALL gives at each level on both MySQL 8 and MariaDB 10.x (newer servers add more,
# which only makes the held set larger); ALL counts as held when all of these are.
TABLE_ALL = frozenset(('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'REFERENCES', 'INDEX', 'ALTER',
                       'CREATE VIEW', 'SHOW VIEW', 'TRIGGER'))
SCHEMA_ALL = TABLE_ALL | frozenset(('CREATE TEMPORARY TABLES', 'LOCK TABLES', 'EXECUTE', 'CREATE ROUTINE',
                                    'ALTER ROUTINE', 'EVENT'))
STATIC_PRIVILEGES = SCHEMA_ALL | frozenset((
    'RELOAD', 'SHUTDOWN', 'PROCESS', 'FILE', 'SHOW DATABASES', 'SUPER', 'REPLICATION SLAVE', 'REPLICATION CLIENT',
    'CREATE USER', 'CREATE TABLESPACE', 'CREATE ROLE', 'DROP ROLE', 'DELETE HISTORY', 'BINLOG ADMIN', 'BINLOG MONITOR',
    'BINLOG REPLAY', 'CONNECTION ADMIN', 'FEDERATED ADMIN', 'READ_ONLY ADMIN', 'REPLICATION MASTER ADMIN',
    'REPLICATION SLAVE ADMIN', 'REPLICA MONITOR', 'SLAVE MONITOR', 'SET USER', 'SHOW CREATE ROUTINE',
))
# MySQL 8 dynamic privileges (BACKUP_ADMIN, ...) are single upper-case words joined by underscores.
_DYNAMIC_PRIVILEGE = re.compile(r'^[A-Z]+(?:_[A-Z]+)+$')
_ALIASES = {'ALL': ALL, 'GRANT': GRANT_OPTION, 'REPLICA': 'REPLICATION SLAVE'}


# ---- privileges: parsing and normalisation ----

def _split_object(text):
    """'db.table' -> (db, table). Backticks quote names holding dots (`` is a backtick); unquoted parts are stripped."""
    parts, current, quoted, was_quoted, index = [], [], False, False, 0
    text = text.strip()
    while index < len(text):
        char = text[index]
        if char == '`' and quoted and text[index + 1:index + 2] == '`':
            current.append('`')
            index += 2
            continue
        if char == '`':
            quoted, was_quoted = not quoted, True
        elif char == '.' and not quoted:
            parts.append(''.join(current) if was_quoted else ''.join(current).strip())
            current, was_quoted = [], False
        else:
            current.append(char)
        index += 1
    parts.append(''.join(current) if was_quoted else ''.join(current).strip())
    if quoted or len(parts) != 2 or not all(parts):
        raise UserSyncError("privileges: '%s' is not db.table, db.* or *.*: quote names holding dots with backticks" % text)
    return parts[0], parts[1]


def _level(text):
    db, table = _split_object(text)
    if db == '*':
        if table != '*':
            raise UserSyncError("privileges: '%s' is not valid: a table needs a database (db.table)" % text)
        return GLOBAL
    try:
        quote_mysql_ident(db, 'database')
        if table != '*':
            quote_mysql_ident(table, 'table')
    except IdentifierError as exc:
        raise UserSyncError('privileges: %s' % exc) from None
    return Level(escape_mysql_db_pattern(db), None) if table == '*' else Level(db, table)


def normalise_privilege(name, engine):
    """Upper case, single spaces, aliases resolved; UserSyncError for anything that is not a privilege name."""
    text = ' '.join(str(name).upper().split())
    text = _ALIASES.get(text, text)
    if '(' in text:
        raise UserSyncError("privileges: column privileges such as '%s' are not supported: grant on the table or "
                            'through a role' % name)
    if text in STATIC_PRIVILEGES or text in (ALL, GRANT_OPTION, 'USAGE'):
        return text
    if engine == 'mysql' and _DYNAMIC_PRIVILEGE.match(text):
        return text
    raise UserSyncError("privileges: '%s' is not a %s privilege: check the spelling" % (name, 'MySQL' if engine == 'mysql' else 'MariaDB'))


def _privilege_list(value, engine, level_text):
    items = value.split(',') if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise UserSyncError("privileges for '%s' must be a comma-separated string or a list" % level_text)
    privileges = set(normalise_privilege(item, engine) for item in items if str(item).strip())
    privileges.discard('USAGE')  # USAGE means "no privilege"
    return privileges


def parse_privileges(value, engine):
    """{Level: set of privilege names} from 'db.table:P1,P2/db2.*:ALL' or a dict {'db.table': 'P1,P2' or [..]}."""
    if value in (None, '', {}):
        return {}
    if isinstance(value, str):
        pairs = []
        for entry in value.split('/'):
            if not entry.strip():
                continue
            if ':' not in entry:
                raise UserSyncError("privileges: '%s' has no ':' between the object and its privileges (db.table:PRIV1,PRIV2)" % entry)
            obj, privs = entry.rsplit(':', 1)
            pairs.append((obj, privs))
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise UserSyncError('privileges must be a string (db.table:PRIV1,PRIV2/db2.*:ALL) or a dict of db.table to privileges')
    parsed = {}
    for obj, privs in pairs:
        level = _level(str(obj))
        privileges = _privilege_list(privs, engine, obj)
        if ALL in privileges and level == GLOBAL:
            raise UserSyncError('privileges: ALL on *.* is not supported: the RDS master user cannot grant it; list the '
                                'global privileges needed')
        parsed.setdefault(level, set()).update(privileges)
    return parsed


def level_text(level):
    """db.table as people write it (the name, not the stored pattern)."""
    if level == GLOBAL:
        return '*.*'
    if level.table is None:
        name = unescape_mysql_db_pattern(level.db)
        return '%s.*' % (level.db if name is None else name)
    return '%s.%s' % (level.db, level.table)


def on_clause(level):
    """ON target for GRANT/REVOKE, ready for a DB-API template (% doubled)."""
    if level == GLOBAL:
        text = '*.*'
    elif level.table is None:
        text = '`%s`.*' % level.db.replace('`', '``')
    else:
        text = '%s.%s' % (quote_mysql_ident(level.db, 'database'), quote_mysql_ident(level.table, 'table'))
    return text.replace('%', '%%')


def privilege_changes(level, wanted, held, exact):
    """(privileges to grant, whether to add GRANT OPTION, privileges to revoke) to go from held to wanted at one level.

    ALL counts as held when everything GRANT ALL gives at that level is; nothing is revoked unless exact.
    """
    all_set = TABLE_ALL if level.table else SCHEMA_ALL
    if ALL in wanted:
        grant = [] if all_set <= held else [ALL]
    else:
        grant = sorted(wanted - held - {GRANT_OPTION})
    with_grant = GRANT_OPTION in wanted and GRANT_OPTION not in held
    revoke = set()
    if exact:
        revoke = set() if ALL in wanted else held - wanted
        if GRANT_OPTION in held and GRANT_OPTION not in wanted:
            revoke.add(GRANT_OPTION)
    return grant, with_grant, revoke
