# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Every module of the collection is in the rdsiam action group (meta/runtime.yml).

    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/rdsiam.auth.rdsiam) in C(module_defaults) to set the AWS and connection options once.
    support: full
    membership: [rdsiam.auth.rdsiam]
"""
