# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the modules that change one RDS instance or cluster are told which.

    DOCUMENTATION = r"""
options:
  target:
    description:
      - The instance or cluster as M(rdsiam.auth.rds_iam_fleet_info) returns it in RV(rdsiam.auth.rds_iam_fleet_info#module:targets);
        its C(kind), C(identifier) and C(region) are used.
      - Its region applies when O(region) is not set.
      - Exactly one of O(target), O(targets), O(db_instance_identifier) and O(db_cluster_identifier) is required.
    type: dict
  targets:
    description:
      - Several instances and clusters as M(rdsiam.auth.rds_iam_fleet_info) returns them, acted on in one run, so that a
        play does this AWS-only step once rather than once per host.
      - The result then holds one entry per target in RV(results), in the same order, each with the keys a single-target
        run returns plus C(kind), C(identifier) and C(region); a target that failed has C(failed) and C(msg). The run fails after
        every target was tried when any of them failed.
    type: list
    elements: dict
  db_instance_identifier:
    description:
      - The DB instance, by identifier or ARN. An ARN is looked up in the region it names, whatever O(region) says.
    type: str
    aliases: [instance_id]
  db_cluster_identifier:
    description:
      - The DB cluster (Aurora or Multi-AZ DB cluster), by identifier or ARN (looked up in the region it names).
    type: str
    aliases: [cluster_id]
"""
