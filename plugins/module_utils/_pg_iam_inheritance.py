# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# This is a private helper of the rdsiam.auth collection, for internal use only.
# Its names and behaviour may change without notice; do not import it from other collections.
#
# Who is forced onto IAM authentication by inheriting rds_iam on PostgreSQL. On RDS every role
# that holds rds_iam through a membership that conveys it, directly or through any chain of
# roles, must log in with a token: its password stops working. A GRANT to one role therefore
# changes how all of that role's members (recursively) log in. Pure functions over the
# membership edges read once; the planner asks them before it writes anything.
#
# Which memberships convey rds_iam: before PostgreSQL 16 every membership does (pg_hba's
# +rds_iam counts them all). From 16 a grant carries INHERIT and SET options, and a
# CREATEROLE creator holds ADMIN on the roles it creates with neither; RDS's own rds_superuser
# holds rds_iam that way. Such ADMIN-only grants convey nothing and are skipped; a grant with
# INHERIT or SET counts, since either lets the member act as the role.

import collections

IAM_ROLE = 'rds_iam'

# One membership edge: `member` belongs to `role`; conveys says whether the grant passes the role on.
Membership = collections.namedtuple('Membership', 'role member conveys')


class MembershipGraph:
    """The conveying memberships of a server, as member -> the roles it holds through them."""

    def __init__(self, memberships=()):
        self.holds = collections.defaultdict(set)
        for edge in memberships:
            if edge.conveys:
                self.holds[edge.member].add(edge.role)

    def copy(self):
        graph = MembershipGraph()
        for member, held in self.holds.items():
            graph.holds[member] = set(held)
        return graph

    def grant(self, role, member):
        self.holds[member].add(role)

    def revoke(self, role, member):
        self.holds[member].discard(role)

    def drop(self, name):
        self.holds.pop(name, None)
        for held in self.holds.values():
            held.discard(name)

    def chain_to(self, start, role=IAM_ROLE):
        """The shortest chain [start, ..., role] of conveying memberships, or None when start does not hold role."""
        if start == role:
            return [start]
        previous = {start: None}
        queue = collections.deque([start])
        while queue:
            current = queue.popleft()
            for held in sorted(self.holds.get(current, ())):
                if held in previous:
                    continue
                previous[held] = current
                if held == role:
                    chain = [held]
                    while previous[chain[-1]] is not None:
                        chain.append(previous[chain[-1]])
                    return list(reversed(chain))
                queue.append(held)
        return None

    def holders(self, role=IAM_ROLE):
        """Every role that holds role through conveying memberships (role itself excluded)."""
        members_of = collections.defaultdict(set)
        for member, held in self.holds.items():
            for name in held:
                members_of[name].add(member)
        found, queue = set(), collections.deque([role])
        while queue:
            for member in members_of.get(queue.popleft(), ()):
                if member not in found and member != role:
                    found.add(member)
                    queue.append(member)
        return found


def format_chain(chain):
    return ' \u2192 '.join(chain)


def newly_forced_onto_iam(before, after):
    """{role: chain} for every role that holds rds_iam after the changes and did not before."""
    return dict((name, after.chain_to(name)) for name in sorted(after.holders() - before.holders()))
