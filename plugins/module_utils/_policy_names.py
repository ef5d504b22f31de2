# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# The name of the IAM policy that lets principals connect as one database user, derived in one
# place so that offboarding finds every policy onboarding wrote. Databases accept user names IAM
# names cannot hold (o'brien, ab"c, names in any script), and a long name plus a prefix can pass
# IAM's 128 characters. A name IAM accepts as it is stays as it is, so policies written before keep
# their names; any other becomes its valid characters plus a digest of the exact user name, so two
# users never share a policy. No AWS call happens here.

import hashlib
import json
import re

from ansible_collections.rdsiam.auth.plugins.module_utils._common import RdsIamError
from ansible_collections.rdsiam.auth.plugins.module_utils._iam_policy import POLICY_NAME_CHARS, POLICY_NAME_MAX

_VALID_NAME = re.compile(r'[%s]*\Z' % POLICY_NAME_CHARS, re.ASCII)
_INVALID_RUN = re.compile(r'[^%s]+' % POLICY_NAME_CHARS, re.ASCII)
DIGEST_CHARS = 8
# Every derived name ends with '--' and the digest. A name that already ends like that is derived too, so a name kept
# as it is can never equal a derived one (otherwise user "o-brien--<digest>" would take o'brien's policy).
_DERIVED_TAIL = re.compile(r'--[0-9a-f]{%d}\Z' % DIGEST_CHARS)
# rds_iam_policy names the parts of a policy it has to split NAME-1, NAME-2, ...: a derived name leaves room for that.
_PART_ROOM = 4
_DERIVED_ROOM = POLICY_NAME_MAX - _PART_ROOM - len('--') - DIGEST_CHARS


class PolicyNameError(RdsIamError):
    """No policy name can be derived: the prefix is not usable."""


def check_prefix(prefix):
    """Raise PolicyNameError unless every user's policy name can start with prefix."""
    if not isinstance(prefix, str) or not _VALID_NAME.match(prefix):
        raise PolicyNameError('policy prefix %s is not a valid IAM policy name start: use letters, digits and +=,.@_-'
                              % ascii(prefix))
    if len(prefix) >= _DERIVED_ROOM:
        raise PolicyNameError('policy prefix %s is %d characters long, so it is not a valid IAM policy name start: '
                              'IAM names have at most %d characters and the user name needs room; use at most %d'
                              % (ascii(prefix), len(prefix), POLICY_NAME_MAX, _DERIVED_ROOM - 1))
    return prefix


def is_kept(db_user, prefix):
    """Whether prefix + db_user is the policy name as it is (a valid IAM name that cannot be mistaken for a derived one)."""
    name = prefix + db_user
    return bool(db_user) and len(name) <= POLICY_NAME_MAX and bool(_VALID_NAME.match(name)) and not _DERIVED_TAIL.search(name)


# The prefix of the policies the onboarding roles write, unless told otherwise.
DEFAULT_POLICY_PREFIX = 'rdsiam-'


def policy_name(db_user, prefix=DEFAULT_POLICY_PREFIX):
    """The IAM policy name for db_user: prefix + db_user when IAM accepts that, else prefix + the valid characters of
    db_user (each run of others as one '-', cut to fit) + '--' + the first DIGEST_CHARS hex digits of its SHA-256."""
    check_prefix(prefix)
    if not isinstance(db_user, str) or not db_user:
        raise PolicyNameError('a database user name must be a non-empty string, got %r' % (db_user,))
    if is_kept(db_user, prefix):
        return prefix + db_user
    kept = _INVALID_RUN.sub('-', db_user).strip('-')[:_DERIVED_ROOM - len(prefix)].rstrip('-')
    return '%s%s--%s' % (prefix, kept, hashlib.sha256(db_user.encode('utf-8')).hexdigest()[:DIGEST_CHARS])


def policy_description(db_user, prefix=DEFAULT_POLICY_PREFIX):
    """The description of a derived policy, naming the exact user (IAM descriptions take ASCII); None for a kept name,
    whose name says it (and whose existing policies, created without one, stay as they are)."""
    if is_kept(db_user, prefix):
        return None
    return 'rds-db:connect as database user %s (rdsiam.auth)' % json.dumps(db_user)
