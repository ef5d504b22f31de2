/*
 * rds.restrict_password_commands for the sandbox's PostgreSQL servers.
 *
 * RDS for PostgreSQL has a static parameter that, once the instance restarts with it on, lets
 * only members of rds_password set or change a role's password or its expiry. This library,
 * loaded through shared_preload_libraries, does the same: a ProcessUtility_hook looks at
 * CREATE ROLE / CREATE USER / ALTER ROLE / ALTER USER (what psql's \password sends too) and
 * refuses a `password` (also ENCRYPTED PASSWORD and PASSWORD NULL) or `validUntil` option from
 * a current user that is not a member of rds_password, with RDS's message.
 *
 * Membership is is_member_of_role(): it follows every grant whatever its INHERIT and SET flags,
 * because from PostgreSQL 16 the RDS master reaches rds_password only through rds_superuser's
 * ADMIN-only grant, and RDS lets the master manage passwords. Superusers (rdsadmin) pass too.
 * The GUC is PGC_POSTMASTER, so, as on RDS, it changes only with a restart.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);

static bool restrict_password_commands = false;
static ProcessUtility_hook_type previous_utility_hook = NULL;

/* Whether a role statement's options set a password or its expiry. */
static bool
sets_password(List *options)
{
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *option = (DefElem *) lfirst(cell);

		if (strcmp(option->defname, "password") == 0 || strcmp(option->defname, "validUntil") == 0)
			return true;
	}
	return false;
}

static void
check_password_command(Node *statement)
{
	List	   *options;
	Oid			password_role;

	if (statement == NULL)
		return;
	if (IsA(statement, CreateRoleStmt))
		options = ((CreateRoleStmt *) statement)->options;
	else if (IsA(statement, AlterRoleStmt))
		options = ((AlterRoleStmt *) statement)->options;
	else
		return;
	if (!sets_password(options))
		return;
	password_role = get_role_oid("rds_password", true);
	if (OidIsValid(password_role) ? is_member_of_role(GetUserId(), password_role) : superuser())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("must be a member of rds_password to alter passwords")));
}

static void
restrict_password_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						  ProcessUtilityContext context, ParamListInfo params,
						  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (restrict_password_commands)
		check_password_command(pstmt->utilityStmt);
	if (previous_utility_hook)
		previous_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errmsg("rds_password_commands must be loaded through shared_preload_libraries")));
	DefineCustomBoolVariable("rds.restrict_password_commands",
							 "Only members of rds_password may set or change passwords and their expiry.",
							 NULL,
							 &restrict_password_commands,
							 false,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);
	previous_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = restrict_password_utility;
}
