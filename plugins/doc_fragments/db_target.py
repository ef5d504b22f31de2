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
  targets:
    description:
      - Many targets in one run instead of O(target), each as M(rdsiam.auth.rds_iam_fleet_info) returns it in
        RV(rdsiam.auth.rds_iam_fleet_info#module:targets). One module process serves them all, 4 targets at a time, with
        AWS credentials and clients resolved once per region.
      - The other options apply to every target; each target supplies its own endpoint, port, engine and region, and
        its master user secret as O(target) does. O(endpoint), O(endpoint_port), O(login_host), O(login_port) and
        O(login_override) cannot be given beside it.
      - The result then holds RV(results), one entry per target with its C(kind), C(identifier) and C(region) and what a
        run on that target alone returns; the run fails when any target fails, after all were tried.
    type: list
    elements: dict
  login_overrides:
    description:
      - With O(targets), where to open the TCP connection of each target whose connection does not go to its endpoint
        (a tunnel, a bastion's forwarded port), keyed by the target's C(identifier), each value like O(login_override).
    type: dict
"""
