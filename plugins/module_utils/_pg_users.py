# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# IAM database users on PostgreSQL (RDS and Aurora): read the state of every listed user in two
# queries, plan the statements that make it match, and run them in one transaction.
# An IAM user is a LOGIN role that is a member of rds_iam; its privileges come from roles.
# A locked user is the same role with NOLOGIN: it keeps its memberships and what it owns.

from ansible_collections.rdsiam.auth.plugins.module_utils._common import import_library
from ansible_collections.rdsiam.auth.plugins.module_utils._db_users import UserPlan, UserSyncError, execute_plan, new_user_result
from ansible_collections.rdsiam.auth.plugins.module_utils._identifiers import (
    IdentifierError,
    check_pg_name,
    check_pg_new_role_name,
    quote_pg_ident,
)
from ansible_collections.rdsiam.auth.plugins.module_utils._pg_iam_inheritance import (
    IAM_ROLE,
    Membership,
    MembershipGraph,
    format_chain,
    newly_forced_onto_iam,
)
# Roles RDS keeps for itself: the module never creates, converts or drops them.
RESERVED_ROLES = frozenset((
    'rdsadmin', 'rds_superuser', 'rds_iam', 'rds_password', 'rds_replication', 'rdsrepladmin', 'rdsproxyadmin',
    'rds_ad', 'rdstopmgr', 'rds_extension', 'rds_ad_admin', 'postgres_fdw_admin',
))

# Whether the membership row `a` passes its role on to the member. The INHERIT and SET options exist from
# PostgreSQL 16 only; to_jsonb reads them where they exist, and before 16 every membership conveys. From 16
# a CREATEROLE creator holds ADMIN on the roles it creates with neither option: such a row conveys nothing.
CONVEYS = ("COALESCE((pg_catalog.to_jsonb(a) ->> 'inherit_option')::boolean "
           "OR (pg_catalog.to_jsonb(a) ->> 'set_option')::boolean, true)")
# The login, the server's major version, every membership edge and which roles may log in, in one query.
SERVER_QUERY = (
    "SELECT current_user, session_user, pg_catalog.current_setting('server_version_num')::int, "
    'COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_array(g.rolname, m.rolname, ' + CONVEYS + ')) '
    'FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles g ON g.oid = a.roleid '
    "JOIN pg_catalog.pg_roles m ON m.oid = a.member), '[]'), "
    'ARRAY(SELECT rolname FROM pg_catalog.pg_roles WHERE rolcanlogin ORDER BY rolname)'
)
# One query for all listed users and every role they mention; pg_has_role(USAGE) tells whether the admin
# already has the privileges of the role, which REASSIGN OWNED and DROP OWNED need (from PostgreSQL 16 the
# creator's own ADMIN-only membership does not give them), and the session count whether a user that is
# already locked still has sessions for terminate_sessions to end (pid and usesysid are visible to every role).
ROLES_QUERY = (
    'SELECT r.rolname, r.rolcanlogin, r.rolconnlimit, r.rolsuper, '
    'ARRAY(SELECT DISTINCT g.rolname FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles g ON g.oid = a.roleid '
    'WHERE a.member = r.oid AND ' + CONVEYS + ' ORDER BY g.rolname) AS member_of, '
    "pg_catalog.pg_has_role(current_user, r.oid, 'USAGE') AS admin_has_privileges, r.oid, COALESCE(s.sessions, 0) AS sessions "
    'FROM pg_catalog.pg_roles r LEFT JOIN (SELECT usesysid, count(*) AS sessions FROM pg_catalog.pg_stat_activity '
    'WHERE pid <> pg_catalog.pg_backend_pid() GROUP BY usesysid) s ON s.usesysid = r.oid WHERE r.rolname = ANY(%s)'
)
# Run after the drops and locks are committed, so a failed one ends no session and no new login slips in between;
# by the role's oid, since pg_stat_activity no longer has a name for the sessions of a dropped role.
TERMINATE_QUERY = ('SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity '
                   'WHERE usesysid = %s AND pid <> pg_catalog.pg_backend_pid()')


def names_to_read(users, reassign_owned_to):
    """Every role name whose state the plan needs: the users, their roles, rds_iam and the reassign target."""
    names = [IAM_ROLE]
    for user in users:
        names.append(user['name'])
        names.extend(user['roles'])
    if reassign_owned_to:
        names.append(reassign_owned_to)
    return sorted(set(names))


class PgServer:
    """What the plan needs to know about the server besides the listed roles."""

    def __init__(self, version_num=150000, session_user=None, memberships=(), logins=()):
        self.version_num = version_num
        self.session_user = session_user
        self.memberships = [Membership(*edge) for edge in memberships]
        self.logins = frozenset(logins)

    @property
    def major(self):
        return self.version_num // 10000


def read_state(cursor, users, reassign_owned_to):
    """(admin user, {role name: attributes}, PgServer) in two queries, whatever the number of users."""
    cursor.execute(SERVER_QUERY)
    admin, session_user, version_num, memberships, logins = cursor.fetchone()
    server = PgServer(version_num, session_user, memberships, logins)
    cursor.execute(ROLES_QUERY, (names_to_read(users, reassign_owned_to or admin),))
    roles = {}
    for name, can_login, conn_limit, is_super, member_of, admin_has_privileges, oid, sessions in cursor.fetchall():
        roles[name] = dict(login=can_login, connection_limit=conn_limit, superuser=is_super, member_of=list(member_of),
                           admin_has_privileges=admin_has_privileges, oid=oid, sessions=sessions)
    return admin, roles, server


def _view(role):
    """A user as diff mode shows it."""
    if role is None:
        return dict(exists=False)
    return dict(exists=True, login=role['login'], iam=IAM_ROLE in role['member_of'], connection_limit=role['connection_limit'],
                roles=sorted(name for name in role['member_of'] if name != IAM_ROLE))


def validate_users(users, admin, roles, options):
    """Every problem with the request, as messages; an empty list means the plan is safe to run."""
    problems, to_convert = [], []
    for user in users:
        name = user['name']
        try:
            check_pg_new_role_name(name)
            for role in user['roles']:
                check_pg_name(role, 'role')
        except IdentifierError as exc:
            problems.append(str(exc))
            continue
        if user['privileges'] or user['host']:
            problems.append('user %s: privileges and host apply to MySQL/MariaDB only; on PostgreSQL grant privileges to '
                            'roles (such as app_ro) and list them in roles' % ascii(name))
        if name == admin or name in RESERVED_ROLES:
            reason = 'the user this module is logged in as' if name == admin else 'reserved by RDS'
            problems.append('user %s is %s: it is never converted to IAM, granted rds_iam, locked or dropped; '
                            'remove it from the list' % (ascii(name), reason))
            continue
        current = roles.get(name)
        if user['state'] == 'locked':
            if current and current['superuser']:
                problems.append('user %s is a superuser: the module does not manage superusers; remove it from the list' % ascii(name))
            continue  # a role without LOGIN (a group role, or a user locked before) is left as it is
        if current and not current['superuser'] and not current['login'] and IAM_ROLE not in current['member_of']:
            # Most likely a group role such as app_ro listed by mistake: giving it LOGIN would let anyone log in as it,
            # and dropping it would strip the privileges of every user that gets them through it.
            problems.append('user %s exists as a role without LOGIN outside rds_iam (a group role?): the module neither turns '
                            'group roles into users nor drops them; remove it from the list or choose another name' % ascii(name))
            continue
        if user['state'] == 'absent':
            continue
        if current and current['superuser']:
            problems.append('user %s is a superuser: the module does not manage superusers; remove it from the list' % ascii(name))
        elif current and current['login'] and IAM_ROLE not in current['member_of'] and not options['convert_password_users']:
            to_convert.append(name)
        if name in user['roles']:
            problems.append('user %s lists itself in roles: remove it' % ascii(name))
        missing = [role for role in user['roles'] if role not in roles]
        if missing:
            problems.append('user %s: role(s) %s do not exist: create them first (privileges live in roles such as app_ro) '
                            'or correct the names' % (ascii(name), ', '.join(ascii(role) for role in missing)))
    if to_convert:
        problems.append('user(s) %s already exist as LOGIN roles outside rds_iam (they log in with a password or another '
                        'method today); switching them to IAM breaks whatever logs in as them that way: set '
                        'convert_password_users to true to convert them'
                        % ', '.join(ascii(name) for name in to_convert))
    if any(user['state'] == 'absent' and user['name'] in roles for user in users):
        target = options['reassign_owned_to'] or admin
        if target not in roles:
            problems.append('reassign_owned_to role %s does not exist: name an existing role to receive the objects of '
                            'dropped users' % ascii(target))
    return problems


def _plan_present(plan, user, current, options, result):
    name = quote_pg_ident(user['name'])
    limit = user['connection_limit']
    if current is None:
        clause = '' if limit is None else ' CONNECTION LIMIT %d' % limit
        plan.add('CREATE ROLE %s LOGIN%s' % (name, clause))
        result['created'] = True
        member_of = []
    else:
        member_of = current['member_of']
        # NOLOGIN here is an IAM user that was locked (state=locked or by hand): present lifts the lock.
        changes = [] if current['login'] else ['LOGIN']
        result['unlocked'] = not current['login']
        if limit is not None and limit != current['connection_limit']:
            changes.append('CONNECTION LIMIT %d' % limit)
        if changes:
            plan.add('ALTER ROLE %s %s' % (name, ' '.join(changes)))
        result['converted'] = bool(current['login'] and IAM_ROLE not in member_of)
    grant = [role for role in [IAM_ROLE] + user['roles'] if role not in member_of]
    if grant:
        plan.add('GRANT %s TO %s' % (', '.join(quote_pg_ident(role) for role in grant), name))
        result['roles_granted'] = [role for role in grant if role != IAM_ROLE]
    revoke = []
    if options['grant_mode'] == 'exact':
        revoke = [role for role in member_of if role not in user['roles'] and role != IAM_ROLE]
        if revoke:
            plan.add('REVOKE %s FROM %s' % (', '.join(quote_pg_ident(role) for role in revoke), name))
            result['roles_revoked'] = revoke
    return [('grant', role, user['name']) for role in grant] + [('revoke', role, user['name']) for role in revoke]


def _plan_locked(plan, user, current, options, result):
    """NOLOGIN, leaving memberships and owned objects alone; True when its sessions are to be ended."""
    if current['login']:
        plan.add('ALTER ROLE %s NOLOGIN' % quote_pg_ident(user['name']))
        result['locked'] = True
    # A user locked earlier may still have sessions open (a lock only gates new logins): end those too.
    return options['terminate_sessions'] and (current['login'] or current['sessions'] > 0)


def _borrow(role, admin, server):
    """GRANT that gives the admin the privileges of role for this transaction only.

    From PostgreSQL 16 a membership grants privileges only WITH INHERIT; the creator's own ADMIN-only
    membership does not, so the grant is explicit. The admin is the grantor, so REVOKE (or DROP ROLE)
    removes exactly this grant and leaves the creator's membership as it was.
    """
    options = ' WITH INHERIT TRUE' if server.major >= 16 else ''
    return 'GRANT %s TO %s%s' % (quote_pg_ident(role), quote_pg_ident(admin), options)


def _plan_absent(plan, user, current, admin, roles, options, result, server):
    name = quote_pg_ident(user['name'])
    target = options['reassign_owned_to'] or admin
    # REASSIGN OWNED and DROP OWNED need the privileges of the role (and of the target); the admin's ADMIN
    # option (CREATEROLE, or being the creator) lets it grant them to itself. DROP ROLE takes that grant away.
    if not current['admin_has_privileges']:
        plan.add(_borrow(user['name'], admin, server))
    borrowed_target = target != admin and not roles[target]['admin_has_privileges']
    if borrowed_target:
        plan.add(_borrow(target, admin, server))
    plan.add('REASSIGN OWNED BY %s TO %s' % (name, quote_pg_ident(target)))
    plan.add('DROP OWNED BY %s' % name)
    plan.add('DROP ROLE %s' % name)
    if borrowed_target:
        plan.add('REVOKE %s FROM %s' % (quote_pg_ident(target), quote_pg_ident(admin)))
    result['dropped'] = True


def check_no_lockout(users, admin, server, membership_changes):
    """Problems for every login the planned memberships would force onto IAM authentication by inheritance.

    membership_changes: (verb, role, member) with verb grant, revoke or drop (member None for drop). The
    module's own login is never put there; another login only when it is listed to be converted itself.
    """
    before = MembershipGraph(server.memberships)
    after = before.copy()
    for verb, role, member in membership_changes:
        if verb == 'grant':
            after.grant(role, member)
        elif verb == 'revoke':
            after.revoke(role, member)
        else:
            after.drop(role)
    converted = set(user['name'] for user in users if user['state'] == 'present')
    own_logins = set(name for name in (admin, server.session_user) if name)
    problems, others = [], []
    for name, chain in newly_forced_onto_iam(before, after).items():
        if name in own_logins:
            problems.append('the planned grants would put %s, the login this module uses, into rds_iam by inheritance (%s): '
                            'its password would stop working. Revoke that membership first (REVOKE %s FROM %s) or choose '
                            'another user'
                            % (ascii(name), format_chain(chain), quote_pg_ident(chain[1]), quote_pg_ident(name)))
        elif name not in converted and name in server.logins:
            others.append((name, chain))
    if others:
        problems.append('the planned grants would put login role(s) %s into rds_iam by inheritance (%s): they could no '
                        'longer log in with a password. List each of them in users (with convert_password_users: true) '
                        'to convert them too, or revoke their membership first'
                        % (', '.join(ascii(name) for name, _chain in others),
                           '; '.join(format_chain(chain) for _name, chain in others)))
    return problems


def plan_pg_user_changes(users, admin, roles, options, server=None):
    """A UserPlan that makes every listed user match; raises UserSyncError (nothing planned) on any problem."""
    server = server or PgServer()
    # rds_iam is always granted and never revoked: listing it changes nothing.
    users = [dict(user, roles=[role for role in user['roles'] if role != IAM_ROLE]) for user in users]
    problems = validate_users(users, admin, roles, options)
    if problems:
        raise UserSyncError('; '.join(problems) + '. Nothing was changed.')
    plan = UserPlan()
    terminate, membership_changes = [], []
    for user in users:
        current = roles.get(user['name'])
        exists = user['state'] == 'present' or (user['state'] == 'locked' and current is not None)
        result = new_user_result(user['name'], exists=exists)  # a user to lock that is not there: exists false, no change
        before = len(plan.statements)
        if user['state'] == 'present':
            membership_changes.extend(_plan_present(plan, user, current, options, result))
        elif current is None:
            pass
        elif user['state'] == 'locked':
            if _plan_locked(plan, user, current, options, result):
                terminate.append(current['oid'])
        else:
            _plan_absent(plan, user, current, admin, roles, options, result, server)
            membership_changes.append(('drop', user['name'], None))
            if options['terminate_sessions']:
                terminate.append(current['oid'])
        # Ending its sessions changes a user too, although those statements come after everything else.
        result['changed'] = len(plan.statements) > before or bool(current and current['oid'] in terminate)
        plan.users.append(result)
        plan.before[user['name']] = _view(current)
        plan.after[user['name']] = _expected_view(user, current, options)
    problems = check_no_lockout(users, admin, server, membership_changes)
    if problems:
        raise UserSyncError('; '.join(problems) + '. Nothing was changed.')
    for oid in terminate:
        plan.add(TERMINATE_QUERY, (oid,))
    return plan


def _expected_view(user, current, options):
    if user['state'] == 'absent' or (current is None and user['state'] == 'locked'):
        return dict(exists=False)
    if user['state'] == 'locked':
        return dict(_view(current), login=False)
    kept = []
    if current and options['grant_mode'] == 'append':
        kept = [role for role in current['member_of'] if role != IAM_ROLE]
    limit = user['connection_limit']
    if limit is None:
        limit = current['connection_limit'] if current else -1
    return dict(exists=True, login=True, iam=True, connection_limit=limit, roles=sorted(set(kept + user['roles'])))


def check_names(users, options):
    """Refuse names PostgreSQL cannot store before they reach a query (psycopg2 cannot even send a NUL byte)."""
    problems = []
    for user in users:
        try:
            check_pg_new_role_name(user['name'])
            for role in user['roles']:
                check_pg_name(role, 'role')
        except IdentifierError as exc:
            problems.append(str(exc))
    if options.get('reassign_owned_to'):
        try:
            check_pg_name(options['reassign_owned_to'], 'reassign_owned_to role')
        except IdentifierError as exc:
            problems.append(str(exc))
    if problems:
        raise UserSyncError('; '.join(problems) + '. Nothing was changed.')


def _failure_note(statement):
    if statement.sql == TERMINATE_QUERY:
        return ('The users were dropped or locked (committed); ending their live sessions failed: the login needs pg_signal_backend '
                '(rds_superuser has it), or end them with pg_terminate_backend.')
    note = 'The transaction was rolled back: nothing was changed.'
    if statement.sql.startswith('DROP ROLE'):
        note += (' REASSIGN OWNED and DROP OWNED act only in the database connected to (login_db) and on shared objects: '
                 'reassign or drop what the user owns or holds in the databases the server names, then run again.')
    return note


def _split_terminations(plan):
    """(the plan's transaction, the session terminations that follow its commit): two plans of the same statements."""
    transaction, after_commit = UserPlan(), UserPlan()
    for statement in plan.statements:
        (after_commit if statement.sql == TERMINATE_QUERY else transaction).statements.append(statement)
    return transaction, after_commit


def sync_pg_users(conn, users, options, check_mode):
    """Read, plan and apply in one transaction (rolled back in check mode or on any error); returns (plan, queries)."""
    psycopg2 = import_library('psycopg2', 'psycopg2-binary', reason='to manage PostgreSQL users')
    check_names(users, options)
    try:
        with conn.cursor() as cursor:
            admin, roles, server = read_state(cursor, users, options['reassign_owned_to'])
            plan = plan_pg_user_changes(users, admin, roles, options, server)
            transaction, after_commit = _split_terminations(plan)
            queries = execute_plan(cursor, transaction, check_mode, psycopg2.Error,
                                   lambda index: _failure_note(transaction.statements[index]))
            if check_mode or not transaction.statements:
                conn.rollback()
            else:
                conn.commit()
            if after_commit.statements:
                queries += execute_plan(cursor, after_commit, check_mode, psycopg2.Error,
                                        lambda index: _failure_note(after_commit.statements[index]))
                conn.rollback()  # only SELECTs ran; pg_terminate_backend is not transactional
    except psycopg2.Error as exc:
        conn.rollback()
        raise UserSyncError('reading or committing PostgreSQL users failed: %s. Nothing was changed.' % str(exc).strip()) from None
    except UserSyncError:
        conn.rollback()
        raise
    return plan, queries
