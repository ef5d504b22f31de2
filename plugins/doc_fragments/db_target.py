# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the modules that log in to a database take their target from rds_iam_fleet_info in one value.

    DOCUMENTATION = r"""
options:
  target:
    description:
      - The instance, cluster or proxy as M(rdsiam.auth.rds_iam_fleet_info) returns it in
        RV(rdsiam.auth.rds_iam_fleet_info#module:targets).
      - It supplies what is not set otherwise - O(endpoint) from its C(endpoint), O(endpoint_port) from its C(port),
        the engine from its C(dialect) when O(engine=auto), and O(region) from its C(region).
      - A module that logs in as an admin uses the target's RDS-managed master user secret (C(master_user_secret_arn)) as
        its C(login_secret) when no admin login option is set.
    type: dict
  login_override:
    description:
      - Where to open the TCP connection when it is not the endpoint, for example an SSH tunnel or a bastion's forwarded port,
        as one value per target.
      - O(login_host) and O(login_port), when set, win over it.
    type: dict
    suboptions:
      login_host:
        description: The host to connect to instead of the endpoint.
        type: str
      login_port:
        description: The port to connect to instead of the endpoint's.
        type: int
"""
