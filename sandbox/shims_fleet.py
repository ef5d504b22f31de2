"""moto shims for fleet discovery and IAM policies (rds_iam_fleet_info, rds_iam_policy)."""

SHIMS = ()
