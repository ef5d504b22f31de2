# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# What every other helper shares: the error base class, lazy imports of optional libraries,
# and the collection's version as AWS and the databases see it.

import importlib

from ansible.module_utils.basic import missing_required_lib

# Sent in the User-Agent of every AWS call, so CloudTrail shows which tool acted.
# Keep in step with the version in galaxy.yml.
COLLECTION_VERSION = '0.1.0'
USER_AGENT_EXTRA = 'rdsiam.auth/%s' % COLLECTION_VERSION

# The longest database user name each engine keeps as given, and the unit it counts in. PostgreSQL silently
# truncates identifiers past NAMEDATALEN - 1 = 63 bytes; MySQL 8 refuses user names past 32 characters; MariaDB
# keeps 80 characters up to 10.5 (128 from 10.6), so 80 holds on every MariaDB RDS runs. One table for the
# token lookup, the IAM policies and the database users, so all three refuse the same names.
DB_USER_NAME_LIMITS = {'postgres': (63, 'bytes'), 'mysql': (32, 'characters'), 'mariadb': (80, 'characters')}


def db_user_name_length(name, engine):
    """(length, limit, unit): name measured the way engine counts it, and that engine's limit."""
    limit, unit = DB_USER_NAME_LIMITS[engine]
    return (len(name.encode('utf-8')) if unit == 'bytes' else len(name)), limit, unit


class RdsIamError(Exception):
    """Base of every error the rdsiam.auth helpers raise; str(exc) is ready for fail_json(msg=...).

    code and operation, when set, are AWS's error code and the API operation that returned it; result holds
    return values worth keeping on failure (the target as it stands, per-user verdicts). The module skeleton
    passes all three to fail_json.
    """

    def __init__(self, message, code=None, operation=None, result=None):
        super().__init__(message)
        self.code = code
        self.operation = operation
        self.result = result or {}


class MissingLibraryError(RdsIamError):
    """A required Python library cannot be imported; ``import_error`` keeps the original exception."""

    def __init__(self, message, import_error=None):
        super().__init__(message)
        self.import_error = import_error


def import_library(module_name, package_name=None, reason=None):
    """Import an optional library on first use, or raise MissingLibraryError with Ansible's usual text."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        message = missing_required_lib(package_name or module_name, reason=reason)
        raise MissingLibraryError(message, import_error=exc) from exc
