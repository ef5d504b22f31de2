# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The one place that validates and quotes database identifiers for PostgreSQL, MySQL and MariaDB.
# Names the server would truncate or cannot store are rejected here, before any SQL is built:
# a silently shortened user name is a different user than the one the IAM policy names.

from ansible_collections.rdsiam.auth.plugins.module_utils._common import DB_USER_NAME_LIMITS, RdsIamError, db_user_name_length

# PostgreSQL keeps NAMEDATALEN - 1 = 63 bytes and truncates longer identifiers with only a NOTICE.
PG_MAX_NAME_BYTES = DB_USER_NAME_LIMITS['postgres'][0]
# User names: see DB_USER_NAME_LIMITS in _common (MySQL 8: 32, MariaDB: 80 characters). Host is CHAR(255) on both.
MYSQL_MAX_USER_CHARS = {engine: DB_USER_NAME_LIMITS[engine][0] for engine in ('mysql', 'mariadb')}
MYSQL_MAX_HOST_CHARS = 255
# With the engine unknown, the loosest limit applies.
_LOOSEST_ENGINE = max(DB_USER_NAME_LIMITS, key=lambda engine: DB_USER_NAME_LIMITS[engine][0])
# Database and table names: 64 characters on both.
MYSQL_MAX_IDENT_CHARS = 64
# Role names PostgreSQL refuses to create (pg_* is reserved for built-in roles).
PG_RESERVED_ROLE_NAMES = frozenset(('public', 'none', 'current_user', 'session_user', 'current_role'))


class IdentifierError(RdsIamError):
    """A database object name cannot be used as given."""


def _describe(what, name):
    return "%s %s" % (what, ascii(name) if isinstance(name, str) else repr(name))


def _check_text(name, what):
    if not isinstance(name, str) or name == '':
        raise IdentifierError('%s: the name must be a non-empty string' % _describe(what, name))
    if '\x00' in name:
        raise IdentifierError('%s contains a NUL byte, which no database can store: remove it' % _describe(what, name))


def check_pg_name(name, what='role'):
    """Raise IdentifierError unless PostgreSQL stores name exactly as given."""
    _check_text(name, what)
    size = len(name.encode('utf-8'))
    if size > PG_MAX_NAME_BYTES:
        raise IdentifierError('%s is %d bytes long; PostgreSQL would silently truncate it to %d bytes: use a shorter name'
                              % (_describe(what, name), size, PG_MAX_NAME_BYTES))
    return name


def check_db_user_name(name, engine=None, what='db user', iam=True):
    """Raise IdentifierError unless name can be a database user on engine exactly as given; engine None: on some RDS engine.

    The one check of a user name that the token lookup, the policies, the login check, the onboarding inputs and the
    user modules share: a name the server would truncate is refused everywhere alike. iam: also refuse what an IAM token
    or an rds-db:connect ARN cannot carry (control characters); the user modules store any name the server keeps.
    """
    if not isinstance(name, str) or not name:
        raise IdentifierError('%s is not set: the name must be a non-empty string' % what)
    if '\x00' in name:
        raise IdentifierError('%s contains a NUL character, which no database user name can hold: remove it' % _describe(what, name))
    if iam and any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise IdentifierError('%s contains a control character (tab, newline, ...), which an IAM login would not carry intact: '
                              'fix the name' % _describe(what, name))
    length, limit, unit = db_user_name_length(name, engine if engine in DB_USER_NAME_LIMITS else _LOOSEST_ENGINE)
    if length > limit:
        raise IdentifierError('%s is %d %s long, more than the %d %s a user name can have %s: use a shorter name%s' % (
            _describe(what, name), length, unit, limit, unit, 'on %s' % engine if engine else 'on any RDS engine',
            ' (PostgreSQL would silently truncate it)' if engine == 'postgres' else ''))
    if engine in MYSQL_MAX_USER_CHARS:
        _check_mysql_text(name, what, MYSQL_MAX_USER_CHARS[engine])
    return name


def check_pg_new_role_name(name, what='user'):
    """check_db_user_name plus the names PostgreSQL reserves for itself, for roles this module would create."""
    check_db_user_name(name, 'postgres', what, iam=False)
    if name.startswith('pg_') or name.lower() in PG_RESERVED_ROLE_NAMES:
        raise IdentifierError('%s is reserved by PostgreSQL (pg_* and %s): choose another name'
                              % (_describe(what, name), ', '.join(sorted(PG_RESERVED_ROLE_NAMES))))
    return name


def quote_pg_ident(name, what='role'):
    """A PostgreSQL identifier in double quotes, checked first; the only way names enter PostgreSQL SQL text."""
    check_pg_name(name, what)
    return '"%s"' % name.replace('"', '""')


def _check_mysql_text(name, what, limit):
    _check_text(name, what)
    if any(ord(char) > 0xFFFF for char in name):
        # The grant tables use utf8mb3, which has no room for characters outside the Basic Multilingual Plane.
        raise IdentifierError('%s contains a character outside the Basic Multilingual Plane (such as an emoji), '
                              'which the MySQL/MariaDB grant tables cannot store: remove it' % _describe(what, name))
    if name != name.rstrip(' '):
        # CHAR columns and identifiers drop trailing spaces: 'bob ' would become 'bob'.
        raise IdentifierError('%s ends with a space, which MySQL/MariaDB would silently drop: remove it' % _describe(what, name))
    if len(name) > limit:
        raise IdentifierError('%s is %d characters long; the limit here is %d: use a shorter name' % (_describe(what, name), len(name), limit))
    return name


def check_mysql_user(name, engine, what='user'):
    """Raise IdentifierError unless the user (or role) name fits mysql.user on this engine."""
    return check_db_user_name(name, engine, what, iam=False)


def check_mysql_host(host, what='host'):
    """The host part of an account: at most 255 characters, no trailing space, no NUL."""
    return _check_mysql_text(host, what, MYSQL_MAX_HOST_CHARS)


def quote_mysql_ident(name, what='database'):
    """A MySQL/MariaDB identifier in backticks, checked first."""
    _check_mysql_text(name, what, MYSQL_MAX_IDENT_CHARS)
    return '`%s`' % name.replace('`', '``')


def escape_mysql_db_pattern(name):
    """A database name as a literal in GRANT ... ON `db`.*, where _ and % are otherwise wildcards."""
    return name.replace('\\', '\\\\').replace('_', '\\_').replace('%', '\\%')


def unescape_mysql_db_pattern(pattern):
    """The database name a db-level grant pattern stands for, or None when it holds an unescaped wildcard."""
    name, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == '\\' and index + 1 < len(pattern):
            name.append(pattern[index + 1])
            index += 2
            continue
        if char in '_%':
            return None
        name.append(char)
        index += 1
    return ''.join(name)
